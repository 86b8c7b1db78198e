package intake

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// fakeHandler is a Handler made of function fields.
type fakeHandler struct {
	HandleFileFunc func(ctx context.Context, f File) Decision
	FiledFunc      func(ctx context.Context, f File, d Decision, archivedAs string)
}

func (h *fakeHandler) HandleFile(ctx context.Context, f File) Decision {
	return h.HandleFileFunc(ctx, f)
}

func (h *fakeHandler) Filed(ctx context.Context, f File, d Decision, archivedAs string) {
	h.FiledFunc(ctx, f, d, archivedAs)
}

// handled is one HandleFile call as a recorder saw it.
type handled struct {
	Name    string
	Data    string
	SigName string
	Sig     string
}

// filed is one Filed call.
type filed struct {
	Name       string
	Accepted   bool
	Code       certs.Code
	ArchivedAs string
	HadData    bool
	CtxErr     error
}

// recorder records the Handler's calls and decides by content (see decideByContent unless
// decide is set).
type recorder struct {
	mu      sync.Mutex
	handled []handled
	filed   []filed
	decide  func(ctx context.Context, f File) Decision // guarded by mu; nil = decideByContent
}

// decideByContent accepts contents starting with "good", asks to retry for "retry", and
// rejects anything else as not_a_certificate.
func decideByContent(_ context.Context, f File) Decision {
	switch s := string(f.Data); {
	case strings.HasPrefix(s, "good"):
		return Decision{Accepted: true, RotationID: "rot-" + f.Name}
	case strings.HasPrefix(s, "retry"):
		return Decision{Retry: true}
	}
	return Decision{Reason: &certs.Reason{Code: certs.NotACertificate, Message: "nothing in the file parses as a certificate"}}
}

func (r *recorder) handler() *fakeHandler {
	return &fakeHandler{
		HandleFileFunc: func(ctx context.Context, f File) Decision {
			r.mu.Lock()
			r.handled = append(r.handled, handled{f.Name, string(f.Data), f.SignatureName, string(f.Signature)})
			decide := r.decide
			r.mu.Unlock()
			if decide == nil {
				decide = decideByContent
			}
			return decide(ctx, f)
		},
		FiledFunc: func(ctx context.Context, f File, d Decision, archivedAs string) {
			fl := filed{Name: f.Name, Accepted: d.Accepted, ArchivedAs: archivedAs, HadData: f.Data != nil, CtxErr: ctx.Err()}
			if d.Reason != nil {
				fl.Code = d.Reason.Code
			}
			r.mu.Lock()
			r.filed = append(r.filed, fl)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) handledNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, h := range r.handled {
		names = append(names, h.Name)
	}
	return names
}

func (r *recorder) filedCalls() []filed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.filed)
}

func (r *recorder) filedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.filed)
}

// fakeWatcher is a watcher the test drives: it sends events and errors, or closes Events to
// kill it.
type fakeWatcher struct {
	events   chan fsEvent
	errs     chan error
	closed   chan struct{}
	once     sync.Once
	watching atomic.Bool
}

func (f *fakeWatcher) Events() <-chan fsEvent { return f.events }
func (f *fakeWatcher) Errors() <-chan error   { return f.errs }
func (f *fakeWatcher) Watching() bool         { return f.watching.Load() }
func (f *fakeWatcher) Close() error           { f.once.Do(func() { close(f.closed) }); return nil }

// fakeWatchers makes fakeWatchers for an Intake and remembers them.
type fakeWatchers struct {
	mu    sync.Mutex
	made  []*fakeWatcher
	fail  atomic.Bool // when set, creating a watcher fails
	tries atomic.Int32
}

func (fw *fakeWatchers) new(string) (watcher, error) {
	fw.tries.Add(1)
	if fw.fail.Load() {
		return nil, errors.New("change notifications not supported by this share")
	}
	w := &fakeWatcher{events: make(chan fsEvent), errs: make(chan error), closed: make(chan struct{})}
	w.watching.Store(true)
	fw.mu.Lock()
	fw.made = append(fw.made, w)
	fw.mu.Unlock()
	return w, nil
}

func (fw *fakeWatchers) last() *fakeWatcher {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(fw.made) == 0 {
		return nil
	}
	return fw.made[len(fw.made)-1]
}

// harness runs an Intake over a temporary drop folder.
type harness struct {
	t      *testing.T
	dir    string
	in     *Intake
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

// newHarness makes an Intake from cfg; empty Dir, Handler and Logger get a temporary folder,
// a recorder and the test's output. Call run to start it.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, rec: &recorder{}}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "drop")
	}
	if cfg.Handler == nil {
		cfg.Handler = h.rec.handler()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	in, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The kernel's complete-file events come from a real goroutine blocked on I/O, which a
	// synctest bubble cannot wait out: harness tests run without them (complete_test.go
	// tests them with real time).
	in.newComplete = func(string) (*completeWatcher, error) { return nil, errNoCompleteEvents }
	h.in, h.dir = in, in.Dir()
	return h
}

// run starts Run in a goroutine; the test's cleanup stops it and checks it returned nil.
func (h *harness) run() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.in.Run(ctx) }()
	h.t.Cleanup(h.stop)
	return h
}

// stop cancels Run and waits for it; safe to call twice.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Run = %v, want nil", err)
	}
}

func (h *harness) write(name, data string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(data), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) appendTo(name, data string) {
	h.t.Helper()
	f, err := os.OpenFile(filepath.Join(h.dir, name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		h.t.Fatal(err)
	}
}

// names lists a folder inside the drop folder ("" for the drop folder itself), without
// reason notes (finished or being written) and without folders.
func (h *harness) names(sub string) []string {
	h.t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.dir, sub))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() || strings.HasSuffix(e.Name(), ReasonSuffix) || strings.HasPrefix(e.Name(), notePrefix) {
			continue
		}
		names = append(names, e.Name())
	}
	return names
}

// notes lists the reason notes in rejected/.
func (h *harness) notes() []string {
	h.t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.dir, RejectedDir))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ReasonSuffix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func (h *harness) read(rel string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, rel))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(h.dir, rel))
	return !errors.Is(err, fs.ErrNotExist)
}

// filedCount is how many files sit in processed/ and rejected/.
func (h *harness) filedCount() int {
	return len(h.names(ProcessedDir)) + len(h.names(RejectedDir))
}

// waitFor polls cond until it holds, failing the test after limit. Under synctest the sleeps
// advance the fake clock, so limit there is fake time too.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// archivedOriginal strips the "<stamp>_" prefix and a "-N" clash counter from an archived
// name, giving back the original name.
func archivedOriginal(t *testing.T, archived string) string {
	t.Helper()
	stamp, rest, ok := strings.Cut(archived, "_")
	if !ok || len(stamp) != len(StampLayout) {
		t.Fatalf("archived name %q does not start with a time stamp", archived)
	}
	return rest
}
