package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/fsnotify/fsnotify"
)

// Most tests here run under testing/synctest with Poll set or a fake watcher: the clock is
// fake, so settling and backoff take no real time, and "nothing happened for ten minutes" is
// a sound assertion. The bubble also fails the test if Run leaves a goroutine behind.

const testSettle = 2 * time.Second

// pollCfg is a polling configuration with the default settle window.
func pollCfg() Config {
	return Config{Poll: true, Settle: testSettle, PollInterval: time.Second, RescanInterval: time.Hour}
}

// startPoll runs a polling Intake that must never create a watcher.
func startPoll(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.in.newWatcher = func(string) (watcher, error) {
		t.Error("Poll mode created a watcher")
		return nil, io.EOF
	}
	return h.run()
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{}
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		cfg  Config
		want string // part of the error; "" = no error
	}{
		{"ok", Config{Dir: filepath.Join(dir, "drop"), Handler: h, Logger: log}, ""},
		{"no dir", Config{Handler: h, Logger: log}, "Config.Dir is required"},
		{"no handler", Config{Dir: dir, Logger: log}, "Config.Handler is required"},
		{"no logger", Config{Dir: dir, Handler: h}, "Config.Logger is required"},
		{"negative settle", Config{Dir: dir, Handler: h, Logger: log, Settle: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New = %v, want nil", err)
				}
				for _, sub := range []string{"", ProcessedDir, RejectedDir} {
					if fi, err := os.Stat(filepath.Join(in.Dir(), sub)); err != nil || !fi.IsDir() {
						t.Errorf("folder %q not created: %v", sub, err)
					}
				}
				if in.cfg.Settle != DefaultSettle || in.cfg.RescanInterval != DefaultRescanInterval || in.cfg.PollInterval != DefaultPollInterval {
					t.Errorf("defaults = %v %v %v", in.cfg.Settle, in.cfg.RescanInterval, in.cfg.PollInterval)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestNewWithUnusableFolder: a drop folder that cannot be made is a status problem, not a
// failed start (a service must not crash-loop on a share that is not mounted yet).
func TestNewWithUnusableFolder(t *testing.T) {
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := New(Config{Dir: aFile, Handler: &fakeHandler{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New = %v, want a problem instead of an error", err)
	}
	ps := in.Problems()
	if len(ps) != 1 || ps[0].Code != ProblemDropFolderUnavailable || ps[0].Path != aFile {
		t.Fatalf("Problems() = %+v, want drop_folder_unavailable for %s", ps, aFile)
	}
	var ue *health.UnavailableError
	if err := in.Ready(); !errors.As(err, &ue) || !strings.Contains(err.Error(), aFile) {
		t.Errorf("Ready() = %v, want a *health.UnavailableError naming the folder", err)
	}
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		synctest.Wait()
		if err := h.in.Run(t.Context()); err == nil {
			t.Fatal("second Run = nil, want an error")
		}
	})
}

func TestSettleBeforeReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good one")
		time.Sleep(testSettle / 2)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 0 {
			t.Fatalf("handled %v before the file settled", got)
		}
		if got := h.in.Stats().Waiting; got != 1 {
			t.Errorf("Stats().Waiting = %d while settling, want 1", got)
		}
		time.Sleep(testSettle + 2*time.Second) // settle + a poll interval or two
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 || archivedOriginal(t, got[0]) != "a.cer" {
			t.Fatalf("processed/ = %v, want the one file", got)
		}
		if got := h.names(""); len(got) != 0 {
			t.Errorf("drop folder still holds %v", got)
		}
		st := h.in.Stats()
		if st.Seen != 1 || st.Processed != 1 || st.Rejected != 0 || st.Waiting != 0 || st.Errors != 0 {
			t.Errorf("Stats() = %+v, want 1 seen, 1 processed", st)
		}
	})
}

func TestWrittenInTwoHalves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good first half;")
		// A pause shorter than Settle, then the second half: the clock restarts.
		time.Sleep(testSettle * 3 / 4)
		synctest.Wait()
		h.appendTo("a.cer", " second half")
		time.Sleep(testSettle * 3 / 4)
		synctest.Wait()
		// More than Settle since the first half, less since the second.
		if got := h.rec.handledNames(); len(got) != 0 {
			t.Fatalf("handled %v less than Settle after the second half", got)
		}
		time.Sleep(2 * testSettle)
		synctest.Wait()
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		if len(h.rec.handled) != 1 || h.rec.handled[0].Data != "good first half; second half" {
			t.Fatalf("handled %+v, want one call with the whole file", h.rec.handled)
		}
	})
}

func TestTemporaryNamesLeftAlone(t *testing.T) {
	temps := []string{"a.part", "b.cer.partial", "c.tmp", "d.crdownload", ".e.cer", "~$f.cer", "G.PART"}
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		for _, n := range temps {
			h.write(n, "good")
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 0 {
			t.Fatalf("handled temporary files %v", got)
		}
		if got := h.filedCount(); got != 0 {
			t.Fatalf("filed %d temporary files", got)
		}
		if got := h.names(""); len(got) != len(temps) {
			t.Fatalf("drop folder = %v, want all of %v", got, temps)
		}
		// The copy finishes: the temporary name becomes the real one.
		if err := os.Rename(filepath.Join(h.dir, "a.part"), filepath.Join(h.dir, "a.cer")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 || archivedOriginal(t, got[0]) != "a.cer" {
			t.Fatalf("processed/ = %v, want a.cer", got)
		}
		if got := h.in.Stats().Seen; got != 1 {
			t.Errorf("Stats().Seen = %d, want 1 (temporary names are not candidates)", got)
		}
	})
}

func TestRefusedByName(t *testing.T) {
	tests := []struct {
		name string
		code certs.Code
	}{
		{"id.pfx", certs.ContainsPrivateKey},
		{"id.P12", certs.ContainsPrivateKey},
		{"server.key", certs.ContainsPrivateKey},
		{"readme.txt", certs.UnsupportedFile},
		{"cert.cer.zip", certs.UnsupportedFile},
		{"noextension", certs.UnsupportedFile},
	}
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		content := "good -----BEGIN PRIVATE KEY----- secret"
		for _, tt := range tests {
			h.write(tt.name, content)
		}
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 0 {
			t.Fatalf("HandleFile called for %v; files refused by name must not be read", got)
		}
		calls := h.rec.filedCalls()
		for _, tt := range tests {
			i := slices.IndexFunc(calls, func(f filed) bool { return f.Name == tt.name })
			if i < 0 {
				t.Errorf("%s: Filed not called", tt.name)
				continue
			}
			c := calls[i]
			if c.Accepted || c.Code != tt.code || c.HadData {
				t.Errorf("%s: Filed(%+v), want rejected with %s and no data", tt.name, c, tt.code)
			}
			if got := h.read(filepath.Join(RejectedDir, c.ArchivedAs)); got != content {
				t.Errorf("%s: archived contents changed: %q", tt.name, got)
			}
			note := h.read(filepath.Join(RejectedDir, c.ArchivedAs+ReasonSuffix))
			if !strings.Contains(note, string(tt.code)) || strings.Contains(note, "secret") {
				t.Errorf("%s: reason note lacks the code or holds file contents:\n%s", tt.name, note)
			}
			// A private key's note says the file was made private (TestRejectedPrivateKeyIsPrivate
			// checks the file); other notes say nothing of access.
			if made := strings.Contains(note, "Access:") && strings.Contains(note, "made this file readable"); made != (tt.code == certs.ContainsPrivateKey) {
				t.Errorf("%s: the note's access line does not fit a %s file:\n%s", tt.name, tt.code, note)
			}
		}
		if got, want := h.in.Stats().Rejected, int64(len(tests)); got != want {
			t.Errorf("Stats().Rejected = %d, want %d", got, want)
		}
	})
}

// TestRejectedPrivateKeyIsPrivate: a file refused for holding a private key is filed readable
// only by its owner (Windows: administrators, SYSTEM and the service), whatever access it came
// with; a file refused for another reason keeps its access.
func TestRejectedPrivateKeyIsPrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("id.pfx", "good -----BEGIN PRIVATE KEY----- secret")
		h.write("readme.txt", "not a certificate")
		time.Sleep(2 * testSettle)
		synctest.Wait()
		for _, c := range h.rec.filedCalls() {
			err := securefile.Check(filepath.Join(h.dir, RejectedDir, c.ArchivedAs))
			switch {
			case c.Name == "id.pfx" && err != nil:
				t.Errorf("the rejected private key file is not private: %v", err)
			case c.Name != "id.pfx" && err == nil:
				t.Errorf("%s, refused for %s, was made private", c.Name, c.Code)
			}
		}
		if n := len(h.rec.filedCalls()); n != 2 {
			t.Errorf("%d files filed, want 2", n)
		}
	})
}

func TestDirectoriesLeftAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		for _, d := range []string{"mine", "folder.cer"} {
			if err := os.Mkdir(filepath.Join(h.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.write(filepath.Join("mine", "inside.cer"), "good")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.rec.filedCount(); got != 0 {
			t.Fatalf("filed %d entries; folders must be left alone", got)
		}
		for _, d := range []string{"mine", "folder.cer", filepath.Join("mine", "inside.cer")} {
			if !h.exists(d) {
				t.Errorf("%s was moved", d)
			}
		}
		if st := h.in.Stats(); st.Seen != 0 || st.Waiting != 0 {
			t.Errorf("Stats() = %+v, want nothing seen", st)
		}
	})
}

func TestTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		handled bool
	}{
		{"limit.cer", certs.MaxFileSize, true},
		{"over.cer", certs.MaxFileSize + 1, false},
		{"huge.pem", 8 * certs.MaxFileSize, false},
	}
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		for _, tt := range tests {
			h.write(tt.name, "good"+strings.Repeat("x", tt.size-4))
		}
		time.Sleep(2 * testSettle)
		synctest.Wait()
		handledNames := h.rec.handledNames()
		calls := h.rec.filedCalls()
		for _, tt := range tests {
			if got := slices.Contains(handledNames, tt.name); got != tt.handled {
				t.Errorf("%s (%d bytes): handled = %v, want %v", tt.name, tt.size, got, tt.handled)
			}
			i := slices.IndexFunc(calls, func(f filed) bool { return f.Name == tt.name })
			if i < 0 {
				t.Fatalf("%s: not filed", tt.name)
			}
			if !tt.handled && calls[i].Code != certs.TooLarge {
				t.Errorf("%s: code %q, want too_large", tt.name, calls[i].Code)
			}
		}
	})
}

func TestNameClashKeepsBoth(t *testing.T) {
	fixed := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	synctest.Test(t, func(t *testing.T) {
		cfg := pollCfg()
		cfg.Now = func() time.Time { return fixed }
		h := newHarness(t, cfg)
		// A file a person put there under the name the first one would get.
		if err := os.WriteFile(filepath.Join(h.dir, ProcessedDir, "20261125T193000Z_a.cer"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		h.run()
		for i, data := range []string{"good 1", "good 2", "bad 1", "bad 2"} {
			name := "a.cer"
			if i >= 2 {
				name = "b.cer"
			}
			h.write(name, data)
			time.Sleep(2 * testSettle)
			synctest.Wait()
		}
		wantProcessed := map[string]string{
			"20261125T193000Z_a.cer":   "mine",
			"20261125T193000Z_a-2.cer": "good 1",
			"20261125T193000Z_a-3.cer": "good 2",
		}
		wantRejected := map[string]string{
			"20261125T193000Z_b.cer":   "bad 1",
			"20261125T193000Z_b-2.cer": "bad 2",
		}
		for sub, want := range map[string]map[string]string{ProcessedDir: wantProcessed, RejectedDir: wantRejected} {
			got := h.names(sub)
			if len(got) != len(want) {
				t.Errorf("%s/ = %v, want %d files", sub, got, len(want))
			}
			for name, data := range want {
				if got := h.read(filepath.Join(sub, name)); got != data {
					t.Errorf("%s/%s = %q, want %q", sub, name, got, data)
				}
			}
		}
		for name := range wantRejected {
			if !h.exists(filepath.Join(RejectedDir, name+ReasonSuffix)) {
				t.Errorf("no reason note for %s", name)
			}
		}
	})
}

func TestRetryLeavesFileThenFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, pollCfg())
		calls := 0
		h.rec.decide = func(ctx context.Context, f File) Decision {
			calls++ // called from Run's goroutine only
			if calls < 3 {
				return Decision{Retry: true}
			}
			return decideByContent(ctx, f)
		}
		h.write("a.cer", "good")
		h.run() // the first scan finds it at once: due after Settle
		time.Sleep(testSettle + retryMin/2)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 1 {
			t.Fatalf("handled %v, want one attempt so far", got)
		}
		if !h.exists("a.cer") || h.filedCount() != 0 {
			t.Fatal("a retried file was moved")
		}
		if got := h.in.Stats().Waiting; got != 1 {
			t.Errorf("Stats().Waiting = %d, want 1", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 3 {
			t.Fatalf("handled %v, want 3 attempts", got)
		}
		if got := h.names(ProcessedDir); len(got) != 1 || h.exists("a.cer") {
			t.Fatalf("processed/ = %v, want the file once", got)
		}
		if got := h.rec.filedCount(); got != 1 {
			t.Errorf("Filed called %d times, want 1", got)
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, retryMax}, {1000, retryMax},
	}
	for _, tt := range tests {
		if got := backoff(tt.n); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestVanishedWhileSettlingIsForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good")
		h.write("b.cer", "good")
		time.Sleep(testSettle / 2)
		synctest.Wait()
		if err := os.Rename(filepath.Join(h.dir, "a.cer"), filepath.Join(t.TempDir(), "a.cer")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.rec.handledNames(); !slices.Equal(got, []string{"b.cer"}) {
			t.Fatalf("handled %v, want only b.cer", got)
		}
		if st := h.in.Stats(); st.Waiting != 0 || st.Errors != 0 {
			t.Errorf("Stats() = %+v, want nothing waiting and no errors", st)
		}
	})
}

func TestInitialScanFindsExistingFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := &fakeWatchers{}
		cfg := pollCfg()
		cfg.Poll = false // events on, but the fake watcher never sends any
		h := newHarness(t, cfg)
		h.in.newWatcher = fw.new
		h.write("before.cer", "good")
		h.write("before.txt", "x")
		h.run()
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.filedCount(); got != 2 {
			t.Fatalf("filed %d files, want the 2 present at start", got)
		}
		if !h.in.Stats().Watching {
			t.Error("Stats().Watching = false with a working watcher")
		}
	})
}

func TestScanTriggersRescan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := &fakeWatchers{}
		cfg := pollCfg()
		cfg.Poll = false
		h := newHarness(t, cfg)
		h.in.newWatcher = fw.new
		h.run()
		synctest.Wait()
		h.write("a.cer", "good") // no event: the fake watcher stays silent
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.filedCount(); got != 0 {
			t.Fatalf("filed %d files with no event and no scan", got)
		}
		for range 3 {
			h.in.Scan() // coalesced, never blocks
		}
		time.Sleep(testSettle)
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Fatalf("processed/ = %v after Scan, want a.cer", got)
		}
		if h.in.Stats().LastScan.IsZero() {
			t.Error("Stats().LastScan is zero after scans")
		}
	})
}

func TestEventsFindFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := &fakeWatchers{}
		cfg := pollCfg()
		cfg.Poll = false
		h := newHarness(t, cfg)
		h.in.newWatcher = fw.new
		h.run()
		synctest.Wait()
		h.write("a.cer", "good")
		fw.last().events <- fsEvent{Name: filepath.Join(h.dir, "a.cer"), Op: fsnotify.Create}
		// Events for other folders and for folders inside are ignored.
		fw.last().events <- fsEvent{Name: filepath.Join(h.dir, ProcessedDir), Op: opWrite}
		fw.last().events <- fsEvent{Name: filepath.Join(t.TempDir(), "x.cer"), Op: fsnotify.Create}
		time.Sleep(testSettle)
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Fatalf("processed/ = %v, want a.cer found by its event", got)
		}
	})
}

func TestOverflowRescans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := &fakeWatchers{}
		cfg := pollCfg()
		cfg.Poll = false
		h := newHarness(t, cfg)
		h.in.newWatcher = fw.new
		h.run()
		synctest.Wait()
		h.write("a.cer", "good")
		h.write("b.cer", "bad")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.filedCount(); got != 0 {
			t.Fatalf("filed %d files before the overflow", got)
		}
		fw.last().errs <- errOverflow // the events for a.cer and b.cer were dropped
		time.Sleep(testSettle)
		synctest.Wait()
		if got := h.filedCount(); got != 2 {
			t.Fatalf("filed %d files after the overflow, want 2", got)
		}
		if got := h.in.Stats().Errors; got != 0 {
			t.Errorf("Stats().Errors = %d, want 0 (an overflow is not an error)", got)
		}
		// Any other watcher error rescans too, and counts.
		h.write("c.cer", "good")
		fw.last().errs <- io.ErrUnexpectedEOF
		time.Sleep(testSettle)
		synctest.Wait()
		if got := h.filedCount(); got != 3 {
			t.Fatalf("filed %d files after a watcher error, want 3", got)
		}
		if got := h.in.Stats().Errors; got != 1 {
			t.Errorf("Stats().Errors = %d, want 1", got)
		}
	})
}

func TestWatcherUnavailableFallsBackToPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := &fakeWatchers{}
		fw.fail.Store(true)
		cfg := pollCfg()
		cfg.Poll = false
		cfg.RescanInterval = time.Hour
		h := newHarness(t, cfg)
		h.in.newWatcher = fw.new
		h.run()
		synctest.Wait()
		if h.in.Stats().Watching {
			t.Error("Stats().Watching = true without a watcher")
		}
		h.write("a.cer", "good")
		time.Sleep(testSettle + 2*cfg.PollInterval) // far less than RescanInterval
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Fatalf("processed/ = %v, want a.cer found by polling", got)
		}
		// The share starts notifying: the next rescan restores events.
		fw.fail.Store(false)
		time.Sleep(cfg.RescanInterval)
		synctest.Wait()
		if !h.in.Stats().Watching || fw.last() == nil {
			t.Fatal("watcher not restored at the rescan")
		}
	})
}

func TestWatcherDeathFallsBackToPolling(t *testing.T) {
	for _, kill := range []string{"closed", "folder removed", "watch dropped", "failing"} {
		t.Run(kill, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fw := &fakeWatchers{}
				cfg := pollCfg()
				cfg.Poll = false
				cfg.RescanInterval = time.Hour
				h := newHarness(t, cfg)
				h.in.newWatcher = fw.new
				h.run()
				synctest.Wait()
				w := fw.last()
				fw.fail.Store(true) // and it cannot be made again for now
				switch kill {
				case "closed":
					close(w.events)
				case "folder removed":
					w.events <- fsEvent{Name: h.dir, Op: opRemove}
				case "watch dropped":
					w.watching.Store(false)
					time.Sleep(cfg.RescanInterval) // noticed at the rescan
				case "failing":
					for range maxWatchErrors {
						w.errs <- io.ErrUnexpectedEOF
					}
				}
				synctest.Wait()
				select {
				case <-w.closed:
				default:
					t.Fatal("dead watcher not closed")
				}
				if h.in.Stats().Watching {
					t.Error("Stats().Watching = true after the watcher died")
				}
				h.write("a.cer", "good")
				time.Sleep(testSettle + 2*cfg.PollInterval)
				synctest.Wait()
				if got := h.names(ProcessedDir); len(got) != 1 {
					t.Fatalf("processed/ = %v, want a.cer found by polling", got)
				}
			})
		})
	}
}

func TestBufferZeroedAfterHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, pollCfg())
		var (
			mu   sync.Mutex
			kept []byte
		)
		h.rec.decide = func(ctx context.Context, f File) Decision {
			mu.Lock()
			kept = f.Data // breaks the Handler contract on purpose, to look afterwards
			mu.Unlock()
			return decideByContent(ctx, f)
		}
		h.run()
		h.write("a.cer", "good -----BEGIN PRIVATE KEY----- MIIEvQ")
		time.Sleep(2 * testSettle)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(kept) == 0 {
			t.Fatal("handler not called")
		}
		if !bytes.Equal(kept, make([]byte, len(kept))) {
			t.Fatalf("buffer after HandleFile = %q, want zeroed", kept)
		}
		if cap(kept) != len(kept) {
			t.Errorf("f.Data has spare capacity %d; the Handler could write into the shared buffer", cap(kept)-len(kept))
		}
	})
}

func TestMoveFailureRetriesOnlyTheMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, pollCfg())
		var broken atomic.Bool
		broken.Store(true)
		h.in.rename = func(from, to string) error {
			if broken.Load() {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrPermission}
			}
			return renameNoReplace(from, to)
		}
		h.run()
		h.write("a.cer", "good")
		time.Sleep(testSettle + 10*time.Second)
		synctest.Wait()
		if !h.exists("a.cer") {
			t.Fatal("a.cer gone although it could not be moved")
		}
		if st := h.in.Stats(); st.Errors == 0 || st.Waiting != 1 {
			t.Errorf("Stats() = %+v, want errors counted and the file waiting", st)
		}
		broken.Store(false)
		time.Sleep(retryMax)
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 || h.exists("a.cer") {
			t.Fatalf("processed/ = %v, want a.cer moved once the folder is back", got)
		}
		if got := h.rec.handledNames(); len(got) != 1 {
			t.Errorf("handled %v; a retried move must not hand the file over again", got)
		}
		if got := h.rec.filedCount(); got != 1 {
			t.Errorf("Filed called %d times, want 1", got)
		}
	})
}

func TestMissingFoldersAreRemade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		synctest.Wait()
		for _, sub := range []string{ProcessedDir, RejectedDir} {
			if err := os.Remove(filepath.Join(h.dir, sub)); err != nil {
				t.Fatal(err)
			}
		}
		h.write("a.cer", "good")
		h.write("b.cer", "bad")
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.filedCount(); got != 2 {
			t.Fatalf("filed %d files, want 2 with processed/ and rejected/ made again", got)
		}
	})
}

func TestCancelFinishesCurrentFileOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, pollCfg())
		const n = 20
		calls := 0
		h.rec.decide = func(ctx context.Context, f File) Decision {
			calls++
			if calls == 5 {
				h.cancel() // shutdown while the 5th file is being handled...
				if ctx.Err() == nil {
					t.Error("ctx not cancelled")
				}
				return decideByContent(ctx, f) // ...which the Handler already recorded
			}
			return decideByContent(ctx, f)
		}
		for i := range n {
			data := "good"
			if i%2 == 1 {
				data = "bad"
			}
			h.write(nthName(i), data)
		}
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		err := h.in.Run(ctx) // returns by itself once cancelled
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if calls != 5 {
			t.Errorf("HandleFile called %d times, want 5: no file may start after cancellation", calls)
		}
		if got := h.filedCount(); got != 5 {
			t.Errorf("filed %d files, want the 5 handled (the last one completely)", got)
		}
		if got := len(h.names("")) + h.filedCount(); got != n {
			t.Errorf("%d files in total, want %d: nothing lost or doubled", got, n)
		}
		if got, want := len(h.notes()), len(h.names(RejectedDir)); got != want {
			t.Errorf("%d reason notes for %d rejected files", got, want)
		}
		calls2 := h.rec.filedCalls()
		if len(calls2) != 5 || calls2[4].CtxErr != nil {
			t.Errorf("Filed calls %+v; the last must get a live context", calls2)
		}
	})
}

func nthName(i int) string { return fmt.Sprintf("f%03d.cer", i) }
