package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/securefile"
)

// SchemaVersion is the layout this package writes and reads (migrate.go lists them). A file
// with a higher version was written by a newer certagent and is refused; an older one is
// migrated by Open.
const SchemaVersion = 3

// DefaultLockTimeout is how long Open waits for another process to release the state file.
const DefaultLockTimeout = 2 * time.Second

// Bucket names and reserved meta keys: part of the on-disk format.
var (
	bucketRotations   = []byte("rotations")
	bucketThumbprints = []byte("thumbprints")
	bucketAudit       = []byte("audit")
	bucketMeta        = []byte("meta")

	allBuckets = [][]byte{bucketRotations, bucketThumbprints, bucketAudit, bucketMeta}

	keySchema = []byte("_schema")
)

// Errors returned by the store.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("state store is closed")
	// ErrNoMeta is returned by GetMeta when no value is stored under the key.
	ErrNoMeta = errors.New("no such meta key")
	// ErrInUse is wrapped by Open's error when another process holds the state file.
	ErrInUse = errors.New("state file in use")
	// ErrDamaged is wrapped by Open's error when the file is not a certagent store, or is
	// damaged.
	ErrDamaged = errors.New("state file damaged or not a certagent store")
	// ErrNewerSchema is wrapped by Open's error when the file was written by a newer
	// certagent.
	ErrNewerSchema = errors.New("state file written by a newer certagent")
	// ErrReadOnly is returned by every write to a store opened with OpenReadOnly.
	ErrReadOnly = errors.New("state store opened read-only")
)

// maxGroup caps how many writes share one transaction.
const maxGroup = 512

// Store is the bbolt-backed rotation.Store, plus the agent's key/value meta area. All
// methods are safe for concurrent use. Every write but AppendAsync is durable (fsynced) when
// it returns nil.
type Store struct {
	db       *bolt.DB
	path     string
	id       string // the store's identity (identity.go)
	schema   int    // the file's schema version when it was opened
	readOnly bool
	log      *slog.Logger

	// trail appends committed audit entries to the JSON-lines files (trail.go); nil when the
	// store does not write them (read-only, NoAuditFiles). Used by the committer only.
	trail *trail
	// tx is the committer's note of what the transaction under way wrote to the audit log.
	tx txAudit

	// sem is held by the goroutine committing a group of writes.
	sem chan struct{}

	// mu guards pending and closed, and sending on wake.
	mu      sync.Mutex
	pending []*op
	closed  bool

	// wake asks the flusher goroutine to commit what is queued (AppendAsync); flushed is
	// closed when the flusher has returned.
	wake    chan struct{}
	flushed chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ rotation.Store = (*Store)(nil)

// Option changes how Open opens the store.
type Option func(*options)

type options struct {
	lockTimeout time.Duration
	logger      *slog.Logger
	expect      string
	auditDir    string
	auditSize   int64
	noAudit     bool
}

// AuditDir sets the folder of the audit trail's JSON-lines files (default: AuditDirOf(path)).
func AuditDir(dir string) Option { return func(o *options) { o.auditDir = dir } }

// AuditFileSize sets the size at which a new JSON-lines file is started (default
// DefaultAuditFileSize); zero or negative keeps the default.
func AuditFileSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.auditSize = n
		}
	}
}

// NoAuditFiles keeps Open from reading and writing the JSON-lines files: `certagent store
// rebuild` imports the trail into a new store this way, then opens it again normally, which
// catches the files up.
func NoAuditFiles() Option { return func(o *options) { o.noAudit = true } }

// ExpectExisting tells Open that a store should already exist, and why the caller thinks so
// (for example "the API token file ... exists, so an agent has run with this state folder").
// A missing or empty store file then fails with ErrLost, as it does when the store's marker
// file is there.
func ExpectExisting(why string) Option {
	return func(o *options) { o.expect = why }
}

// LockTimeout sets how long Open waits for another process to release the file (default
// DefaultLockTimeout); zero or negative keeps the default.
func LockTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lockTimeout = d
		}
	}
}

// Logger sets the logger (default: discard).
func Logger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// Open opens the state file at path, creating it (mode 0600, and its directory with private
// permissions when the directory does not exist). It fails with a clear error, naming the
// file, when another process holds it (ErrInUse, after the lock timeout), when it is not a
// certagent store or is damaged (ErrDamaged), when a newer certagent wrote it
// (ErrNewerSchema), when the state folder had a store that is now missing or empty (ErrLost),
// or when the file is not the store the folder had (ErrReplaced). Open checks the whole
// file's consistency before it returns, migrates an older schema, and catches the audit
// trail's JSON-lines files up with the store (trail.go).
func Open(path string, opts ...Option) (*Store, error) {
	o := newOptions(opts)
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// securefile gives the directory 0700 on Unix and a private DACL on Windows, which
		// the state file inherits there (Windows ignores the 0600 below).
		if err := securefile.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
		}
	}
	if o.expect == "" && !o.noAudit {
		// Audit files beside it show that the folder had a store, like its marker does.
		if files, _ := listTrail(o.auditDirFor(path)); len(files) > 0 {
			if fi, err := os.Stat(files[0].path); err == nil && fi.Size() > 0 {
				o.expect = fmt.Sprintf("its audit trail files are in %s", o.auditDirFor(path))
			}
		}
	}
	if err := checkLost(path, o.expect); err != nil {
		return nil, err
	}
	if err := preflight(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, o.lockTimeout, false)
	if err != nil {
		return nil, err
	}
	s := newStore(db, path, o, false)
	if err := s.check(); err != nil {
		db.Close()
		return nil, err
	}
	schema, err := s.prepare()
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.adoptIdentity(); err != nil {
		db.Close()
		return nil, err
	}
	if !o.noAudit {
		if s.trail, err = openTrail(s, o.auditDirFor(path), o.auditSize); err != nil {
			db.Close()
			return nil, err
		}
	}
	go s.flusher()
	s.log.Debug("state store opened", "path", path, "schema", schema)
	return s, nil
}

// OpenReadOnly opens an existing state file for reading, without changing anything on disk:
// no file, folder or marker is created, an older schema is not migrated, the JSON-lines
// files are not touched. It shares the file with other readers but not with a running
// agent, which holds it exclusively: then it fails with ErrInUse after the lock timeout. A
// missing file fails with an error wrapping fs.ErrNotExist; an empty one, with ErrLost. It
// checks the file's consistency like Open. Every write returns ErrReadOnly.
func OpenReadOnly(path string, opts ...Option) (*Store, error) {
	o := newOptions(opts)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening state file %s: %w", path, err)
	}
	if fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, &openError{sentinel: ErrLost, msg: fmt.Sprintf("state file %s is empty (0 bytes)", path)}
	}
	if err := preflight(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, o.lockTimeout, true)
	if err != nil {
		return nil, err
	}
	s := newStore(db, path, o, true)
	if err := s.check(); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := s.prepare(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			s.id = string(meta.Get(keyStoreID))
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	go s.flusher()
	return s, nil
}

func newOptions(opts []Option) options {
	o := options{lockTimeout: DefaultLockTimeout, logger: slog.New(slog.DiscardHandler), auditSize: DefaultAuditFileSize}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o *options) auditDirFor(path string) string {
	if o.auditDir != "" {
		return o.auditDir
	}
	return AuditDirOf(path)
}

func newStore(db *bolt.DB, path string, o options, readOnly bool) *Store {
	return &Store{
		db: db, path: path, readOnly: readOnly, log: o.logger.With("component", "store"),
		sem: make(chan struct{}, 1), wake: make(chan struct{}, 1), flushed: make(chan struct{}),
	}
}

// openBolt opens the bbolt file, turning bbolt's errors (and panics on garbage input) into
// messages that name the file.
func openBolt(path string, lockTimeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &openError{sentinel: ErrInUse, msg: fmt.Sprintf("state file %s is in use by another certagent process (waited %s for it); stop that one first (the service: `certagent stop`)", path, lockTimeout)}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, damaged(path, err)
	}
	var pathErr *os.PathError
	var errno syscall.Errno
	if errors.As(err, &pathErr) || errors.As(err, &errno) {
		// The operating system refused: permissions, a directory, resources.
		return nil, fmt.Errorf("opening state file %s: %w", path, err)
	}
	// bbolt's own complaints about the content ("file size too small", "mmap too large").
	return nil, damaged(path, err)
}

// openError is a failure to open the state file: a message for people (naming the file and
// what to do) that matches its sentinel with errors.Is without printing it.
type openError struct {
	msg      string
	sentinel error
}

func (e *openError) Error() string        { return e.msg }
func (e *openError) Is(target error) bool { return target == e.sentinel }

func damaged(path string, cause error) error {
	return &openError{sentinel: ErrDamaged, msg: fmt.Sprintf("state file %s is damaged or is not a certagent state file (%v); `certagent store check` tells more, and `certagent store rebuild` moves it aside and rebuilds the state from the app and the audit trail", path, cause)}
}

// check runs bbolt's consistency check over the whole file.
func (s *Store) check() error {
	var problem error
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if problem == nil {
				problem = err
			}
		}
		return nil
	})
	if err == nil {
		err = problem
	}
	if err != nil {
		return damaged(s.path, err)
	}
	return nil
}

// prepare creates the buckets of a new file, or checks the schema of an existing one. It
// returns the schema version.
func (s *Store) prepare() (int, error) {
	var version int
	fresh := false
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return damaged(s.path, errors.New("it has no schema version"))
			}
			fresh = true
			return nil
		}
		v := meta.Get(keySchema)
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 {
			return damaged(s.path, fmt.Errorf("schema version %q", v))
		}
		version = n
		if n > SchemaVersion {
			return fmt.Errorf("state file %s has schema version %d, newer than this certagent understands (%d): run the certagent version that wrote it, or a later one: %w", s.path, n, SchemaVersion, ErrNewerSchema)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return damaged(s.path, fmt.Errorf("bucket %q is missing", name))
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, err
	case s.readOnly:
		s.schema = version
		return version, nil
	case !fresh && version < SchemaVersion:
		if err := s.migrate(version); err != nil {
			return 0, err
		}
		s.schema = SchemaVersion
		return SchemaVersion, nil
	case !fresh:
		s.schema = version
		return version, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return 0, fmt.Errorf("initialising state file %s: %w", s.path, err)
	}
	s.schema = SchemaVersion
	return SchemaVersion, nil
}

// Schema returns the file's schema version: SchemaVersion once Open migrated it; for a store
// opened read-only, the version found (0 for a bbolt file that holds nothing yet).
func (s *Store) Schema() int { return s.schema }

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Close waits for writes under way, commits writes already queued, and closes the file.
// Calls after the first return the first's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.wake)
		s.mu.Unlock()
		<-s.flushed
		s.sem <- struct{}{}
		for group := s.take(); len(group) > 0; group = s.take() {
			s.commit(group)
		}
		s.closeErr = s.db.Close()
		if s.trail != nil {
			s.trail.close()
		}
		<-s.sem
	})
	return s.closeErr
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// flusher commits writes queued by AppendAsync, for which no caller waits. It returns when
// Close closes s.wake.
func (s *Store) flusher() {
	defer close(s.flushed)
	for range s.wake {
		s.sem <- struct{}{}
		for group := s.take(); len(group) > 0; group = s.take() {
			s.commit(group)
		}
		<-s.sem
	}
}

// txAudit is what one transaction wrote to the audit log, for the JSON-lines files, and the
// chain's head as it goes. Only the committer uses it (holding s.sem); reset starts each
// transaction (a failed one is rolled back, and retried from scratch).
type txAudit struct {
	lines []committedLine
	// other is set when the transaction wrote audit entries without appendAudit (an
	// import): the files then catch up from the store.
	other     bool
	head      string
	headKnown bool
}

// committedLine is one audit entry a transaction wrote: its JSON is its line in the files.
type committedLine struct {
	seq  uint64
	hash string
	json []byte
}

func (t *txAudit) reset() {
	clear(t.lines)
	t.lines, t.other, t.head, t.headKnown = t.lines[:0], false, "", false
}

// op is one caller's write, waiting to be committed.
type op struct {
	// fn performs the write in tx. It may run more than once (in a shared transaction that
	// failed, then alone), so it must reset whatever results it records. A refusal return
	// means fn wrote nothing and the transaction may go on.
	fn   func(tx *bolt.Tx) error
	err  error
	done chan struct{}
	// async marks an AppendAsync write: nobody waits for it, so a failure is logged.
	async bool
}

func (o *op) finished() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// refusal is an op's expected failure (not found, invalid input): fn wrote nothing, the
// caller gets err, and the other writes of the group still commit.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// update runs fn in a write transaction, possibly shared with other callers' writes, and
// returns once it is committed (or failed). When ctx ends before the write was taken up, it
// is dropped and ctx's error returned; once taken up, it completes.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return ErrReadOnly
	}
	o := &op{fn: fn, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.pending = append(s.pending, o)
	s.mu.Unlock()

	select {
	case s.sem <- struct{}{}:
		// No commit under way: commit what is queued, in order, until this write is done
		// (the previous committer may have taken it already).
		for !o.finished() {
			s.commit(s.take())
		}
		<-s.sem
	case <-o.done:
	case <-ctx.Done():
		if s.drop(o) {
			return ctx.Err()
		}
		<-o.done
	}
	return o.err
}

// take removes and returns up to maxGroup queued writes.
func (s *Store) take() []*op {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(s.pending), maxGroup)
	group := s.pending[:n:n]
	s.pending = append([]*op(nil), s.pending[n:]...)
	return group
}

// drop removes o from the queue, reporting whether it was still there.
func (s *Store) drop(o *op) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.pending {
		if p == o {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return true
		}
	}
	return false
}

// commit runs a group of writes in one transaction. When the transaction fails and holds
// more than one write, each is run again alone, so that one write's failure stays its own.
// The caller holds s.sem.
func (s *Store) commit(group []*op) {
	if len(group) == 0 {
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		s.tx.reset()
		for _, o := range group {
			o.err = nil
			if err := o.fn(tx); err != nil {
				if r, ok := err.(refusal); ok {
					o.err = r
					continue
				}
				return err
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		s.log.Warn("shared write failed; retrying each write alone", "writes", len(group), "err", err)
		for _, o := range group {
			s.commit([]*op{o})
		}
		return
	}
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		group[0].err = err
	}
	if err == nil && s.trail != nil {
		// The store stays the source of truth: the files follow it after each commit, and
		// Open catches them up if the process died in between.
		s.trail.committed(s.db, &s.tx)
	}
	for _, o := range group {
		if o.async && o.err != nil {
			s.log.Error("writing queued audit entries", "path", s.path, "err", o.err)
		}
		close(o.done)
	}
}
