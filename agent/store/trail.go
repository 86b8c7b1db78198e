package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/securefile"
)

// The audit trail is also kept outside the store, as JSON-lines files in <state>/audit/
// (audit-000001.jsonl, audit-000002.jsonl, ...): one JSON object per line, the API's audit
// entry fields plus seq, prevHash and hash: exactly the record the store holds (auditRecord). A new file starts when the current one would
// grow past DefaultAuditFileSize; no file is ever removed. The chain runs on across files.
//
// The store is the source of truth. After each commit the committer appends the entries the
// files do not have yet; when the process dies between the commit and the file write, the
// next Open catches the files up. A seq is never written twice: the files continue from
// their last complete line, and a partial last line (a write cut short by a crash) is cut
// off first. The files survive damage to the store (`certagent store rebuild` imports them)
// and feed log shippers. They are private like the store: the folder 0700 (a private access
// list on Windows, which the files inherit), each file 0600.
//
// The files are not fsynced on every write: the store is, and a file that lost its last
// lines in a power cut is caught up from the store at the next start.

// DefaultAuditFileSize is the size at which a new JSON-lines file is started.
const DefaultAuditFileSize = 10 << 20

// AuditDirOf returns the folder of the JSON-lines files of the store at path: <state>/audit.
func AuditDirOf(path string) string { return filepath.Join(filepath.Dir(path), "audit") }

var trailName = regexp.MustCompile(`^audit-(\d{6,})\.jsonl$`)

func trailFileName(n int) string { return fmt.Sprintf("audit-%06d.jsonl", n) }

// trailFile is one JSON-lines file of a folder.
type trailFile struct {
	n    int
	path string
}

// listTrail returns the JSON-lines files in dir, oldest first. A missing dir has none.
func listTrail(dir string) ([]trailFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []trailFile
	for _, e := range ents {
		m := trailName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		out = append(out, trailFile{n: n, path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(out, func(a, b trailFile) int { return a.n - b.n })
	return out, nil
}

// AuditFiles returns the audit trail's JSON-lines files in dir, oldest first (none when dir
// does not exist).
func AuditFiles(dir string) ([]string, error) {
	files, err := listTrail(dir)
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out, err
}

// trail writes the JSON-lines files of one store. Only the store's committer (holding its
// sem) uses it, so it needs no lock of its own.
type trail struct {
	dir     string
	maxSize int64
	log     *slog.Logger

	f     *os.File // the file being appended to
	index int      // its number
	size  int64    // its size
	dirty bool     // written to since it was opened (close syncs it)

	// lastSeq and lastHash are the newest entry in the files.
	lastSeq  uint64
	lastHash string

	// err, when set, stops the files for good (they disagree with the store); failing is
	// set while writes fail (a full disk), so that the failure is logged once.
	err     error
	failing bool

	// mu guards problem: what TrailError reports (err, or the last write failure while
	// writes fail), readable without waiting for a commit.
	mu      sync.Mutex
	problem error
}

func (t *trail) setProblem(err error) {
	t.mu.Lock()
	t.problem = err
	t.mu.Unlock()
}

// ErrAuditFilesDiverged is wrapped by TrailError when the JSON-lines files do not continue
// the store's audit log, so the store stopped writing them.
var ErrAuditFilesDiverged = errors.New("audit files do not match the store")

// openTrail prepares dir's files for s and catches them up with the store. A folder or file
// it cannot create or read is an error (Open fails, naming it); files that disagree with the
// store are not: the agent runs on from the store, stops writing the files, and reports it
// (TrailError, `certagent store check`).
func openTrail(s *Store, dir string, maxSize int64) (*trail, error) {
	t := &trail{dir: dir, maxSize: maxSize, log: s.log}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := securefile.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("creating the audit trail folder %s: %w", dir, err)
		}
	} else if err := securefile.Check(dir); err != nil {
		if rerr := securefile.Restrict(dir); rerr != nil {
			return nil, fmt.Errorf("the audit trail folder is not private (%v) and could not be repaired: %w", err, rerr)
		}
	}
	files, err := listTrail(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the audit trail folder %s: %w", dir, err)
	}
	t.index = 1
	for i := len(files) - 1; i >= 0; i-- {
		last, ok, err := lastLine(files[i].path, true)
		if err != nil {
			t.err = fmt.Errorf("%w: %s: %v", ErrAuditFilesDiverged, files[i].path, err)
			break
		}
		if ok {
			t.lastSeq, t.lastHash = last.Seq, last.Hash
			break
		}
	}
	if len(files) > 0 {
		t.index = files[len(files)-1].n
	}
	if t.err == nil {
		t.err = t.agree(s.db)
	}
	if t.err != nil {
		s.log.Error("not writing the audit trail files", "dir", dir, "err", t.err)
		t.setProblem(t.err)
		return t, nil
	}
	if err := t.open(); err != nil {
		return nil, err
	}
	t.catchUp(s.db)
	return t, nil
}

// agree checks that the files' newest entry is the store's entry with the same seq.
func (t *trail) agree(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAudit)
		var storeLast uint64
		if k, _ := ab.Cursor().Last(); k != nil {
			storeLast = binary.BigEndian.Uint64(k)
		}
		if t.lastSeq > storeLast {
			return fmt.Errorf("%w: the files in %s end at entry %d, the store at %d: the store is older than its audit trail (restored from a backup?); `certagent store check` tells more", ErrAuditFilesDiverged, t.dir, t.lastSeq, storeLast)
		}
		if t.lastSeq == 0 {
			return nil
		}
		v := ab.Get(seqKey(t.lastSeq))
		if v == nil {
			return nil // a gap a store rebuild left: the store goes on after it
		}
		rec, err := decodeAuditRecord(v)
		if err != nil || rec.Hash != t.lastHash {
			return fmt.Errorf("%w: entry %d in %s differs from the store's; `certagent audit verify` tells which is intact", ErrAuditFilesDiverged, t.lastSeq, t.dir)
		}
		return nil
	})
}

// open opens the newest file for appending, creating the first one.
func (t *trail) open() error {
	path := filepath.Join(t.dir, trailFileName(t.index))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the audit trail file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening the audit trail file %s: %w", path, err)
	}
	if err := securefile.Check(path); err != nil {
		if rerr := securefile.Restrict(path); rerr != nil {
			f.Close()
			return fmt.Errorf("the audit trail file is not private (%v) and could not be repaired: %w", err, rerr)
		}
	}
	t.f, t.size = f, fi.Size()
	return nil
}

// committed writes what the transaction just committed. When the files are not exactly
// one entry behind its first line (an earlier write failed, or it imported entries), they
// catch up from the store instead.
func (t *trail) committed(db *bolt.DB, tx *txAudit) {
	if tx.other || t.failing || (len(tx.lines) > 0 && tx.lines[0].seq != t.lastSeq+1) {
		t.catchUp(db)
		return
	}
	if len(tx.lines) == 0 || t.err != nil || t.f == nil {
		return
	}
	lines := make([][]byte, len(tx.lines))
	for i, l := range tx.lines {
		lines[i] = l.json
	}
	last := tx.lines[len(tx.lines)-1]
	t.wrote(t.write(lines), last.seq, last.hash)
}

// catchUp appends every store entry newer than the files' newest. Failures are logged; the
// next commit (or the next Open) tries again from the same entry.
func (t *trail) catchUp(db *bolt.DB) {
	if t.err != nil || t.f == nil {
		return
	}
	var lines [][]byte
	var lastSeq uint64
	var lastHash string
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var lastV []byte
		for k, v := c.Seek(seqKey(t.lastSeq + 1)); k != nil; k, v = c.Next() {
			// A value is its line (auditRecord's JSON); bbolt's memory is valid only inside
			// the transaction.
			lines = append(lines, bytes.Clone(v))
			lastSeq, lastV = binary.BigEndian.Uint64(k), v
		}
		if lastV == nil {
			return nil
		}
		rec, err := decodeAuditRecord(lastV)
		if err != nil || rec.Seq != lastSeq {
			return fmt.Errorf("the store's audit entry %d does not decode: %v", lastSeq, err)
		}
		lastHash = rec.Hash
		return nil
	})
	if err == nil && len(lines) > 0 {
		err = t.write(lines)
	}
	if len(lines) > 0 || err != nil {
		t.wrote(err, lastSeq, lastHash)
	}
}

// wrote records the outcome of a write of the entries up to seq.
func (t *trail) wrote(err error, seq uint64, hash string) {
	if err != nil {
		if !t.failing {
			t.log.Error("writing the audit trail file; retrying after the next commit", "dir", t.dir, "err", err)
		}
		t.failing = true
		if t.err != nil {
			err = t.err
		}
		t.setProblem(fmt.Errorf("writing the audit trail files in %s: %w", t.dir, err))
		return
	}
	if t.failing {
		t.log.Info("writing the audit trail file works again", "dir", t.dir)
		t.setProblem(nil)
	}
	t.failing = false
	t.lastSeq, t.lastHash = seq, hash
}

// write appends lines, starting a new file whenever the current one would grow past the
// size limit. A write that fails is cut off again, so that no partial line stays behind.
func (t *trail) write(lines [][]byte) error {
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		n, err := t.f.Write(buf.Bytes())
		if err != nil {
			if n > 0 {
				if terr := t.f.Truncate(t.size); terr != nil {
					t.err = fmt.Errorf("a write to %s failed (%v) and its partial line could not be removed: %w", t.f.Name(), err, terr)
				}
			}
			return err
		}
		t.size += int64(n)
		buf.Reset()
		return nil
	}
	for _, l := range lines {
		if t.size+int64(buf.Len()) > 0 && t.size+int64(buf.Len()+len(l)+1) > t.maxSize {
			if err := flush(); err != nil {
				return err
			}
			if err := t.next(); err != nil {
				return err
			}
		}
		buf.Write(l)
		buf.WriteByte('\n')
	}
	t.dirty = true
	return flush()
}

// next closes the current file (synced: it is complete) and starts the next one.
func (t *trail) next() error {
	if err := t.f.Sync(); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return err
	}
	t.f = nil
	t.index++
	return t.open()
}

func (t *trail) close() {
	if t.f != nil {
		if t.dirty {
			t.f.Sync()
		}
		t.f.Close()
		t.f = nil
	}
}

// TrailError returns why the store does not write the audit trail's JSON-lines files: they
// do not continue the store (it wraps ErrAuditFilesDiverged), or the last write failed (it
// is retried after each commit); nil when the files are written (or the store was opened
// without them). It does not wait for a commit under way.
func (s *Store) TrailError() error {
	if s.trail == nil {
		return nil
	}
	s.trail.mu.Lock()
	defer s.trail.mu.Unlock()
	return s.trail.problem
}

// lastLine returns the last complete line of the file at path, decoded. ok is false when the
// file holds no complete line. With repair, a partial last line (a write cut short) is cut
// off the file. A last line that does not decode is an error.
func lastLine(path string, repair bool) (auditRecord, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil && !repair {
		f, err = os.Open(path)
	}
	if err != nil {
		return auditRecord{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return auditRecord{}, false, err
	}
	size := fi.Size()
	// Read ever larger tails until one holds a whole line before the end.
	for window := int64(64 << 10); ; window *= 4 {
		start := max(size-window, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return auditRecord{}, false, err
		}
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 && start > 0 {
			continue
		}
		if end+1 < len(buf) && repair {
			// A partial line after the last newline: a write cut short.
			if err := f.Truncate(start + int64(end+1)); err != nil {
				return auditRecord{}, false, fmt.Errorf("cutting off a partial last line: %w", err)
			}
		}
		if end < 0 {
			return auditRecord{}, false, nil
		}
		begin := bytes.LastIndexByte(buf[:end], '\n') + 1
		if begin == 0 && start > 0 {
			continue
		}
		l, err := decodeAuditRecord(buf[begin:end])
		if err != nil || l.Seq == 0 {
			return auditRecord{}, false, fmt.Errorf("its last line is not an audit entry (%v)", err)
		}
		return l, true, nil
	}
}
