// Package intake watches the drop folder, waits until each file there has settled, hands its
// contents to a Handler, and files it into processed/ or rejected/ exactly once.
//
// File-system events are hints only: the folder is scanned at start, rescanned every
// Config.RescanInterval, and polled instead of watched when events are off (Config.Poll) or
// the watcher fails. One goroutine, the one running Run, does all the work, one file at a
// time, so a flood of files never holds more than one file's contents in memory.
package intake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Names of the folders inside the drop folder.
const (
	ProcessedDir = "processed"
	RejectedDir  = "rejected"
)

// ReasonSuffix ends the name of the note written beside each file in rejected/.
const ReasonSuffix = ".reason.txt"

// Defaults for the zero values of Config's durations.
const (
	DefaultSettle         = 2 * time.Second
	DefaultRescanInterval = 60 * time.Second
	DefaultPollInterval   = 5 * time.Second
)

// Config configures an Intake. Handler and Logger are required; Dir is required; zero
// durations take the defaults above.
type Config struct {
	// Dir is the drop folder. New creates it (0755 on Unix) and processed/ and rejected/
	// inside it when they are missing.
	Dir string
	// Settle is how long a file's size and modification time must stay the same before it is
	// read (default 2s).
	Settle time.Duration
	// RescanInterval is how often the whole folder is listed even when events work
	// (default 60s).
	RescanInterval time.Duration
	// Poll turns file-system events off: the folder is listed every PollInterval. Use it for
	// network shares, where change notifications often never come.
	Poll bool
	// PollInterval is the listing interval when polling (default 5s). It is also used when
	// the watcher cannot be created or stops working.
	PollInterval time.Duration
	// Handler judges and records each file. Required.
	Handler Handler
	// Logger receives state changes (file filed, file refused, watcher fallback). Required.
	Logger *slog.Logger
	// Now gives the wall-clock time for archive names and reason notes (default time.Now).
	// Settling is measured with the monotonic clock, not with Now.
	Now func() time.Time
	// SignatureWait is how long a certificate whose signature file (its name + ".sig") is
	// not in the folder waits for it, from when the certificate settled, before it is
	// handed to the Handler unsigned; 0 hands it over at once (signatures are optional).
	SignatureWait time.Duration
	// CertificateWait is how long a signature file waits for its certificate before it is
	// filed in rejected/ as certificate_missing (default DefaultCertificateWait).
	CertificateWait time.Duration
}

// Handler receives the drop folder's files. Its methods are called from the goroutine running
// Intake.Run, one call at a time.
type Handler interface {
	// HandleFile judges and records one settled file's contents (at most certs.MaxFileSize
	// bytes) and returns the decision. It must not keep f.Data after it returns: the buffer
	// may hold private key bytes and the intake zeroes it afterwards. When ctx is cancelled
	// it should return promptly with Retry set, unless it already recorded its decision.
	HandleFile(ctx context.Context, f File) Decision
	// Filed reports where a file went, for the audit log: archivedAs is the file's new name
	// inside processed/ (d.Accepted) or rejected/. It is also called for files the intake
	// refused by itself (a private-key or unknown extension, too large, not a regular file);
	// then HandleFile was never called and f.Data is nil. ctx is not cancelled by shutdown:
	// the move already happened and deserves its record.
	Filed(ctx context.Context, f File, d Decision, archivedAs string)
}

// File is one drop-folder file.
type File struct {
	// Name is the file's base name in the drop folder.
	Name string
	// Size and ModTime are as read, just before the contents.
	Size    int64
	ModTime time.Time
	// Data is the whole contents; nil in Filed.
	Data []byte
	// SignatureName is the name of the signature file that came with it (Name + ".sig"),
	// filed with it; "" when none came.
	SignatureName string
	// Signature is that file's contents (at most certs.MaxSignatureSize bytes); nil when
	// none came, and in Filed.
	Signature []byte
	// SignatureOf is, for a signature file filed with its certificate, the certificate's
	// name (reason notes say so); "" otherwise.
	SignatureOf string
}

// Decision is what the Handler made of a file.
type Decision struct {
	// Accepted sends the file to processed/.
	Accepted bool
	// Reason says why the file goes to rejected/ (when !Accepted). A nil Reason on a refused
	// file is a Handler bug; the intake then files it as unsupported_file and logs an error.
	Reason *certs.Reason
	// RotationID is the rotation the file started or matched, for the log and the reason note.
	RotationID string
	// Cert holds the certificate's facts when the file held one, for the reason note.
	Cert *certs.Certificate
	// Retry leaves the file where it is, to be read and handed over again later (with
	// backoff): the Handler could not record its decision (a store error, shutting down).
	Retry bool
}

// Stats are the intake's counters since New.
type Stats struct {
	// Seen counts candidate files found (a name that vanishes and comes back counts again).
	Seen int64
	// Processed and Rejected count files moved to processed/ and rejected/.
	Processed int64
	Rejected  int64
	// Waiting is how many candidates are in the folder but not yet filed: settling, held
	// open by another process, or waiting to be retried.
	Waiting int64
	// Errors counts failures worth a look: folder listing, reading or moving a file, watcher
	// errors other than an overflow.
	Errors int64
	// Watching reports whether file-system events are in use (false when polling).
	Watching bool
	// LastScan is when the folder was last listed in full (by Now); zero before the first.
	LastScan time.Time
}

// maxWatchErrors is how many watcher errors (other than overflows) make the intake give the
// watcher up and poll until a rescan manages to start a new one.
const maxWatchErrors = 3

// Intake watches one drop folder. Create it with New and start it with Run.
type Intake struct {
	cfg Config
	dir string // absolute, cleaned
	log *slog.Logger

	// newWatcher starts the file-system watcher, newComplete the watcher of complete files
	// (Linux), and rename moves a file into processed/ or rejected/; tests replace them
	// before Run.
	newWatcher  func(dir string) (watcher, error)
	newComplete func(dir string) (*completeWatcher, error)
	rename      func(from, to string) error

	scanReq chan struct{} // buffered 1: Scan requests, coalesced
	started atomic.Bool

	seen, processed, rejected, errs, waiting atomic.Int64
	watching                                 atomic.Bool
	lastScan                                 atomic.Int64 // UnixNano by cfg.Now; 0 = never

	// The fields below are owned by the goroutine running Run.
	files     map[string]*entry      // candidates not yet filed, by base name
	gen       uint64                 // scan generation, to forget files that vanished
	hidden    map[string]hiddenEntry // hidden files named like certificates, by name
	nextDue   time.Time              // no entry is due before this (may be early, never late)
	armed     time.Time              // what the timer is set for; zero when stopped
	buf       []byte                 // read buffer, zeroed after every use
	watchErrs int                    // watcher errors (not overflows) since the watcher started

	problems problemSet // what keeps the intake from working (health.go)
}

// New checks cfg, fills in defaults, and creates the drop folder with processed/ and
// rejected/ inside when they are missing.
func New(cfg Config) (*Intake, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("intake: Config.Dir is required")
	case cfg.Handler == nil:
		return nil, errors.New("intake: Config.Handler is required")
	case cfg.Logger == nil:
		return nil, errors.New("intake: Config.Logger is required")
	case cfg.Settle < 0, cfg.RescanInterval < 0, cfg.PollInterval < 0, cfg.SignatureWait < 0, cfg.CertificateWait < 0:
		return nil, errors.New("intake: Config durations must not be negative")
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.RescanInterval == 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CertificateWait == 0 {
		cfg.CertificateWait = DefaultCertificateWait
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving drop folder %s: %w", cfg.Dir, err)
	}
	in := &Intake{
		cfg:         cfg,
		dir:         dir,
		log:         cfg.Logger.With("component", "intake"),
		newWatcher:  newFSWatcher,
		newComplete: newCompleteWatcher,
		rename:      renameNoReplace,
		scanReq:     make(chan struct{}, 1),
		files:       make(map[string]*entry),
	}
	if err := in.ensureDirs(); err != nil {
		// Not fatal: the agent starts, says what is wrong in its status, and picks the
		// folder up once it can be made or read (a share that is not mounted yet).
		in.raiseProblem(ProblemDropFolderUnavailable, in.dir, err)
	}
	return in, nil
}

// Dir returns the drop folder's absolute path.
func (in *Intake) Dir() string { return in.dir }

// Scan asks for a full listing of the folder as soon as the intake is free: the API's
// POST /scan. It never blocks; requests made while one is pending are merged.
func (in *Intake) Scan() {
	select {
	case in.scanReq <- struct{}{}:
	default:
	}
}

// Stats returns the counters. It is safe for concurrent use.
func (in *Intake) Stats() Stats {
	s := Stats{
		Seen:      in.seen.Load(),
		Processed: in.processed.Load(),
		Rejected:  in.rejected.Load(),
		Waiting:   in.waiting.Load(),
		Errors:    in.errs.Load(),
		Watching:  in.watching.Load(),
	}
	if ns := in.lastScan.Load(); ns != 0 {
		s.LastScan = time.Unix(0, ns).UTC()
	}
	return s
}

// Run watches the folder until ctx is cancelled, then returns nil. A file being filed when
// ctx is cancelled is moved completely first; no new file is started. Everything Run starts
// (the watcher and its goroutine) has stopped when it returns. Run returns an error only when
// the drop folder cannot be made at start, or when called a second time.
func (in *Intake) Run(ctx context.Context) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("intake: Run called twice")
	}
	// The folder may have gone since New (a person tidying up): make it again. Failing is a
	// status problem, not the end: every scan tries again.
	if err := in.ensureDirs(); err != nil {
		in.raiseProblem(ProblemDropFolderUnavailable, in.dir, err)
	}
	in.removeStaleTemps()

	poll := time.NewTicker(in.cfg.PollInterval)
	defer poll.Stop()
	rescan := time.NewTicker(in.cfg.RescanInterval)
	defer rescan.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var (
		w         watcher
		events    <-chan fsEvent
		werrs     <-chan error
		cw        *completeWatcher
		completes <-chan string
	)
	startWatcher := func() error {
		nw, err := in.newWatcher(in.dir)
		if err != nil {
			return err
		}
		w, events, werrs = nw, nw.Events(), nw.Errors()
		in.watching.Store(true)
		in.watchErrs = 0
		// Where the kernel tells when a file is complete (Linux), a file need not wait the
		// whole settle window. Without it, the settle rule decides alone.
		if c, err := in.newComplete(in.dir); err == nil {
			cw, completes = c, c.Names()
		}
		return nil
	}
	stopWatcher := func() {
		if cw != nil {
			cw.Close()
			cw, completes = nil, nil
		}
		if w != nil {
			w.Close() // waits for the watcher's goroutine
			w, events, werrs = nil, nil, nil
			in.watching.Store(false)
		}
	}
	defer stopWatcher()
	// lose turns a dead watcher into polling; rescans keep trying to start a new one.
	lose := func(why error) {
		stopWatcher()
		in.log.Warn("drop folder events stopped; polling instead", "error", why, "poll_interval", in.cfg.PollInterval)
		poll.Reset(in.cfg.PollInterval)
		in.scan()
	}

	if in.cfg.Poll {
		in.log.Info("polling the drop folder", "dir", in.dir, "poll_interval", in.cfg.PollInterval)
	} else if err := startWatcher(); err != nil {
		// Network shares on Windows often refuse change notifications.
		in.log.Warn("drop folder events unavailable; polling instead", "dir", in.dir, "error", err, "poll_interval", in.cfg.PollInterval)
	} else {
		poll.Stop()
	}

	in.scan()
	for {
		in.armTimer(timer)
		select {
		case <-ctx.Done():
			return nil
		case <-in.scanReq:
			in.scan()
		case <-poll.C:
			in.scan()
		case <-rescan.C:
			if !in.cfg.Poll {
				if w == nil {
					if err := startWatcher(); err == nil {
						in.log.Info("drop folder events restored", "dir", in.dir)
						poll.Stop()
					}
				} else if !w.Watching() {
					lose(errors.New("the drop folder is no longer watched"))
					continue
				}
			}
			in.scan()
		case name, ok := <-completes:
			if !ok {
				completes = nil // the settle rule still applies
				continue
			}
			in.observeComplete(name)
		case ev, ok := <-events:
			if !ok {
				lose(errors.New("watcher closed"))
				continue
			}
			in.event(ev, lose)
		case err, ok := <-werrs:
			if !ok {
				lose(errors.New("watcher closed"))
				continue
			}
			if errors.Is(err, errOverflow) {
				// Events were dropped: the listing finds whatever they would have told.
				in.log.Debug("drop folder event queue overflowed; rescanning")
			} else {
				in.errs.Add(1)
				in.watchErrs++
				if in.watchErrs >= maxWatchErrors {
					// A watcher that keeps failing (a share that dropped its connection)
					// would have us rescan in a loop: poll instead, and try again later.
					lose(fmt.Errorf("%d watcher errors, the last: %w", in.watchErrs, err))
					continue
				}
				if in.watchErrs == 1 {
					in.log.Warn("drop folder watcher error; rescanning", "error", err)
				}
			}
			in.scan()
		case <-timer.C:
			in.armed = time.Time{}
			in.processDue(ctx)
		}
	}
}

// event handles one file-system event: a hint that a name in the folder changed.
func (in *Intake) event(ev fsEvent, lose func(error)) {
	name := filepath.Clean(ev.Name)
	if samePath(name, in.dir) {
		// The folder itself was removed or renamed away (or, on Windows, became unreadable):
		// its watch is gone.
		if ev.Op&(opRemove|opRename) != 0 {
			lose(errors.New("the drop folder was removed or renamed"))
		}
		return
	}
	if !samePath(filepath.Dir(name), in.dir) {
		return
	}
	in.observe(filepath.Base(eventName(name)), ev.Op&opWrite != 0)
}

// ensureDirs creates the drop folder and its processed/ and rejected/ folders (at start).
func (in *Intake) ensureDirs() error {
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		return fmt.Errorf("creating drop folder %s: %w", in.dir, err)
	}
	for _, d := range []string{in.dir, filepath.Join(in.dir, ProcessedDir), filepath.Join(in.dir, RejectedDir)} {
		if err := ensureDir(d); err != nil {
			return err
		}
	}
	return nil
}

// ensureDir makes the folder d inside an existing folder, unless it is there, and checks it
// is a folder.
func ensureDir(d string) error {
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating folder %s: %w", d, err)
	}
	fi, err := os.Stat(d)
	if err != nil {
		return fmt.Errorf("creating folder %s: %w", d, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder: %w", d, fs.ErrExist)
	}
	return nil
}

// armTimer sets timer for the earliest due entry, or stops it when nothing is tracked.
func (in *Intake) armTimer(timer *time.Timer) {
	in.waiting.Store(int64(len(in.files)))
	if len(in.files) == 0 {
		if !in.armed.IsZero() {
			timer.Stop()
			in.armed = time.Time{}
		}
		return
	}
	if in.armed.Equal(in.nextDue) {
		return
	}
	in.armed = in.nextDue
	timer.Reset(max(time.Until(in.nextDue), 0))
}
