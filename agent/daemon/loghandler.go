package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/logevent"
)

// entry is one log record, flattened for a service manager's log: groups become dotted key
// prefixes, values are resolved and formatted.
type entry struct {
	Time  time.Time
	Level slog.Level
	Msg   string
	// Kind is the record's logevent kind, from the record or from the logger's attributes.
	Kind  logevent.Kind
	Attrs []field
}

type field struct{ Key, Value string }

// Text is the entry as one line: the message, then key=value pairs (values quoted when they
// need it), as slog's text handler writes them.
func (e entry) Text() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	for _, f := range e.Attrs {
		b.WriteString(" " + f.Key + "=" + quoteValue(f.Value))
	}
	return b.String()
}

func quoteValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\r\n\"=\\") || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return v
}

// recordHandler is an slog.Handler that flattens each enabled record into an entry and hands
// it to emit. The Event Log and journal handlers are made of it.
type recordHandler struct {
	enabled func(slog.Level) bool
	emit    func(entry) error
	attrs   []field
	kind    logevent.Kind
	prefix  string // the open groups, "a.b."
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return h.enabled(l) }

func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]field(nil), h.attrs...)
	for _, a := range as {
		if a.Key == logevent.Key { // in a group or not: a logger's group does not change what happened
			c.kind = logevent.Kind(a.Value.String())
			continue
		}
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *recordHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	e := entry{Time: r.Time, Level: r.Level, Msg: r.Message, Kind: h.kind, Attrs: append([]field(nil), h.attrs...)}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == logevent.Key {
			e.Kind = logevent.Kind(a.Value.String())
			return true
		}
		e.Attrs = appendAttr(e.Attrs, h.prefix, a)
		return true
	})
	return h.emit(e)
}

// appendAttr flattens a into fields: groups become key prefixes, empty attributes vanish.
func appendAttr(fs []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fs
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			fs = appendAttr(fs, p, g)
		}
		return fs
	}
	var v string
	switch a.Value.Kind() {
	case slog.KindTime:
		v = a.Value.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			v = err.Error()
		} else {
			v = fmt.Sprint(a.Value.Any())
		}
	default:
		v = a.Value.String()
	}
	return append(fs, field{prefix + a.Key, v})
}

// eventType is the Windows Event Log entry type.
type eventType int

const (
	eventInfo eventType = iota
	eventWarning
	eventError
)

// eventFor decides whether an entry goes to the Windows Event Log, with which ID and type:
// a record with a known logevent kind goes with its kind's ID; an error without one goes with
// logevent.OtherErrorID; everything else stays out (the Event Log is for what an
// administrator acts on; log.file has the rest).
func eventFor(e entry) (id uint32, typ eventType, ok bool) {
	switch {
	case e.Level >= slog.LevelError:
		typ = eventError
	case e.Level >= slog.LevelWarn:
		typ = eventWarning
	default:
		typ = eventInfo
	}
	if id := e.Kind.EventID(); id != 0 {
		return id, typ, true
	}
	if e.Level >= slog.LevelError {
		return logevent.OtherErrorID, eventError, true
	}
	return 0, 0, false
}

// ServiceLog returns the handler for the service manager's log, and a function that closes
// it: on Windows, the Event Log (only the records meant for an administrator: those with a
// logevent kind, with their stable event ID, and errors); on Linux under systemd, the journal
// with every record at level or above, each attribute a field. It returns a nil handler when
// there is no such log (on Linux outside systemd: write to standard error).
func ServiceLog(level slog.Leveler) (slog.Handler, func() error, error) { return serviceLog(level) }
