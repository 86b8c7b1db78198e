package intake

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startComplete runs an Intake with the real watchers, the kernel's complete-file events
// included.
func startComplete(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.in.newComplete = newCompleteWatcher
	h.run()
	waitFor(t, realLimit, "the watcher and the first scan", func() bool {
		st := h.in.Stats()
		return st.Watching && !st.LastScan.IsZero()
	})
	return h
}

// TestPausedWriterIsNotJudged: a writer that stops mid-copy for longer than the settle window,
// file still open, does not get its partial file judged (and then finish writing it inside
// rejected/): the kernel grants no read lease while a writer holds the file. Once it closes,
// the file is judged whole.
func TestPausedWriterIsNotJudged(t *testing.T) {
	h := startComplete(t, Config{Settle: realSettle, RescanInterval: time.Hour, PollInterval: time.Hour})
	f, err := os.OpenFile(filepath.Join(h.dir, "slow.cer"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("good, first half;"); err != nil {
		t.Fatal(err)
	}
	// Many settle windows with the writer paused: nothing may be judged.
	time.Sleep(20 * realSettle)
	if got := h.rec.handledNames(); len(got) != 0 {
		t.Fatalf("judged %v while its writer still had it open", got)
	}
	if _, err := f.WriteString(" second half"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, realLimit, "slow.cer to be filed", func() bool { return len(h.names(ProcessedDir)) == 1 })
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if len(h.rec.handled) != 1 || h.rec.handled[0].Data != "good, first half; second half" {
		t.Errorf("handled %+v, want slow.cer once, whole", h.rec.handled)
	}
}

// TestCompleteEventsMarkFiles: a file written and closed, and one moved in, are marked
// complete by the kernel's events (so they wait completeQuiet, not the settle window), and
// are filed.
func TestCompleteEventsMarkFiles(t *testing.T) {
	h := startComplete(t, Config{Settle: time.Hour, RescanInterval: time.Hour, PollInterval: time.Hour})
	h.write("closed.cer", "good closed")
	other := filepath.Join(t.TempDir(), "moved.cer")
	if err := os.WriteFile(other, []byte("good moved"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Same file system as the temp dir on most machines; fall back to writing in place.
	if err := os.Rename(other, filepath.Join(h.dir, "moved.cer")); err != nil {
		h.write("moved.cer", "good moved")
	}
	// With an hour's settle window, only the complete-file events can get them filed.
	waitFor(t, realLimit, "both files filed", func() bool { return len(h.names(ProcessedDir)) == 2 })
}
