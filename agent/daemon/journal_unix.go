//go:build !windows

package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// journalSocket is where journald takes native-protocol datagrams.
var journalSocket = "/run/systemd/journal/socket"

// serviceLog writes to the systemd journal with its native protocol when systemd connected
// standard error to the journal ($JOURNAL_STREAM names stderr's device and inode): every
// field stays a field, so that `journalctl -u certagent CERTAGENT_EVENT=rotation_failed` or
// `MESSAGE_ID=...` finds the events. Elsewhere it returns nil: standard error it is.
func serviceLog(level slog.Leveler) (slog.Handler, func() error, error) {
	if !stderrIsJournal() {
		return nil, nil, nil
	}
	h, c, err := newJournalHandler(journalSocket, level)
	if err != nil {
		return nil, nil, err
	}
	return h, c, nil
}

// stderrIsJournal reports whether $JOURNAL_STREAM is standard error's "device:inode".
func stderrIsJournal() bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(2, &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func newJournalHandler(socket string, level slog.Leveler) (slog.Handler, func() error, error) {
	j := &journal{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
	if err := j.dial(); err != nil {
		return nil, nil, fmt.Errorf("connecting to the journal at %s: %w", socket, err)
	}
	h := &recordHandler{
		enabled: func(l slog.Level) bool { return l >= level.Level() },
		emit:    j.send,
	}
	return h, j.close, nil
}

// journal is a datagram connection to journald, made again once when a send fails (journald
// restarted).
type journal struct {
	addr *net.UnixAddr
	mu   sync.Mutex
	conn *net.UnixConn
}

func (j *journal) dial() error {
	c, err := net.DialUnix("unixgram", nil, j.addr)
	if err != nil {
		return err
	}
	j.conn = c
	return nil
}

func (j *journal) send(e entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	msg := journalMessage(e, 0)
	for attempt := 0; ; attempt++ {
		_, err := j.conn.Write(msg)
		if errors.Is(err, syscall.EMSGSIZE) {
			msg = journalMessage(e, 16<<10)
			_, err = j.conn.Write(msg)
		}
		if err == nil || attempt > 0 {
			return err
		}
		j.conn.Close()
		if err := j.dial(); err != nil {
			return err
		}
	}
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.conn.Close()
}

// journalMessage encodes e in journald's native protocol: one field a line (KEY=value), or
// for a value with a newline the key, a newline, the length as 64-bit little-endian, the
// value and a newline. maxValue, when positive, cuts long values.
func journalMessage(e entry, maxValue int) []byte {
	var b bytes.Buffer
	put := func(key, value string) {
		if maxValue > 0 && len(value) > maxValue {
			value = value[:maxValue] + "..."
		}
		if !strings.Contains(value, "\n") {
			b.WriteString(key + "=" + value + "\n")
			return
		}
		b.WriteString(key + "\n")
		binary.Write(&b, binary.LittleEndian, uint64(len(value)))
		b.WriteString(value + "\n")
	}
	put("MESSAGE", e.Text())
	put("PRIORITY", strconv.Itoa(priority(e.Level)))
	put("SYSLOG_IDENTIFIER", "certagent")
	if e.Kind != "" {
		put("CERTAGENT_EVENT", string(e.Kind))
		if id := e.Kind.MessageID(); id != "" {
			put("MESSAGE_ID", id)
			put("CERTAGENT_EVENT_ID", strconv.Itoa(int(e.Kind.EventID())))
		}
	}
	for _, f := range e.Attrs {
		put("CERTAGENT_"+journalKey(f.Key), f.Value)
	}
	return b.Bytes()
}

// priority maps a level to syslog's: err 3, warning 4, info 6, debug 7.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// journalKey makes a journal field name: upper-case letters, digits and underscores.
func journalKey(k string) string {
	b := []byte(strings.ToUpper(k))
	for i, c := range b {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
