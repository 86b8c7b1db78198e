package intake

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests use the real fsnotify watcher and the real clock, with a short Settle. They
// wait on conditions with a generous deadline and never assert how long anything took.

const (
	realSettle = 50 * time.Millisecond
	realLimit  = 60 * time.Second // a deadline for failures only; a normal run takes well under a second
)

// eventsOnly is a configuration where only events (and the first scan) can find a file: no
// polling, and no rescan within the test.
func eventsOnly() Config {
	return Config{Settle: realSettle, RescanInterval: time.Hour, PollInterval: time.Hour}
}

// startReal runs an Intake with the real watcher and fails the test if events are
// unavailable (they are on Linux and Windows).
func startReal(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg).run()
	// After the first scan, only events can find a file.
	waitFor(t, realLimit, "the watcher and the first scan", func() bool {
		st := h.in.Stats()
		return st.Watching && !st.LastScan.IsZero()
	})
	return h
}

func TestRealWatcherRenameFromTempName(t *testing.T) {
	h := startReal(t, eventsOnly())
	h.write("a.part", "good first half;")
	h.appendTo("a.part", " second half")
	if err := os.Rename(filepath.Join(h.dir, "a.part"), filepath.Join(h.dir, "a.cer")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, realLimit, "a.cer to be filed", func() bool { return len(h.names(ProcessedDir)) == 1 })
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if len(h.rec.handled) != 1 || h.rec.handled[0] != (handled{Name: "a.cer", Data: "good first half; second half"}) {
		t.Fatalf("handled %+v, want a.cer once, whole", h.rec.handled)
	}
}

func TestRealWatcherInitialScanAndEvents(t *testing.T) {
	h := newHarness(t, eventsOnly())
	h.write("before.cer", "good")
	h.run()
	waitFor(t, realLimit, "before.cer to be filed", func() bool { return len(h.names(ProcessedDir)) == 1 })
	waitFor(t, realLimit, "the watcher to start", func() bool { return h.in.Stats().Watching })
	h.write("after.cer", "bad")
	waitFor(t, realLimit, "after.cer to be filed", func() bool { return len(h.names(RejectedDir)) == 1 })
	if got := h.notes(); len(got) != 1 {
		t.Errorf("reason notes = %v, want one", got)
	}
}

func TestRealWatcherThousandFiles(t *testing.T) {
	const n = 1000
	cfg := eventsOnly()
	cfg.Logger = slog.New(slog.DiscardHandler)
	h := startReal(t, cfg)
	want := make(map[string]bool)
	for i := range n {
		name, data := fmt.Sprintf("f%04d.cer", i), "good"
		switch {
		case i%10 == 3:
			data = "bad"
		case i%50 == 7:
			name = fmt.Sprintf("f%04d.txt", i)
		}
		want[name] = true
		h.write(name, data)
	}
	waitFor(t, realLimit, fmt.Sprintf("%d files to be filed", n), func() bool { return h.filedCount() >= n })
	h.stop()

	var got []string
	for _, sub := range []string{ProcessedDir, RejectedDir} {
		for _, a := range h.names(sub) {
			got = append(got, archivedOriginal(t, a))
		}
	}
	slices.Sort(got)
	if len(got) != n || len(slices.Compact(slices.Clone(got))) != n {
		t.Fatalf("filed %d files (%d distinct), want %d, each once", len(got), len(slices.Compact(got)), n)
	}
	for _, name := range got {
		if !want[name] {
			t.Errorf("filed unexpected %s", name)
		}
	}
	if left := h.names(""); len(left) != 0 {
		t.Errorf("left in the drop folder: %v", left)
	}
	if got, want := len(h.notes()), len(h.names(RejectedDir)); got != want {
		t.Errorf("%d reason notes for %d rejected files", got, want)
	}
	handledNames := h.rec.handledNames()
	if len(handledNames) != len(slices.Compact(slices.Sorted(slices.Values(handledNames)))) {
		t.Error("a file was handed to the Handler twice")
	}
	st := h.in.Stats()
	if st.Seen != n || st.Processed+st.Rejected != n || st.Waiting != 0 {
		t.Errorf("Stats() = %+v, want %d seen and filed", st, n)
	}
}

func TestRealWatcherCancelLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := eventsOnly()
	cfg.Logger = slog.New(slog.DiscardHandler)
	h := newHarness(t, cfg)
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.rec.decide = func(ctx context.Context, f File) Decision {
		if calls.Add(1) == 10 {
			cancel()
		}
		return decideByContent(ctx, f)
	}
	const n = 40
	for i := range n {
		data := "good"
		if i%3 == 0 {
			data = "bad"
		}
		h.write(fmt.Sprintf("f%03d.cer", i), data)
	}
	done := make(chan error, 1)
	go func() { done <- h.in.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(realLimit):
		t.Fatal("Run did not return after cancellation")
	}
	if got := calls.Load(); got != 10 {
		t.Errorf("HandleFile called %d times, want 10 (none after cancellation)", got)
	}
	if got := h.filedCount(); got != 10 {
		t.Errorf("filed %d files, want 10", got)
	}
	if got := len(h.names("")) + h.filedCount(); got != n {
		t.Errorf("%d files in total, want %d", got, n)
	}
	if got, want := len(h.notes()), len(h.names(RejectedDir)); got != want {
		t.Errorf("%d reason notes for %d rejected files", got, want)
	}
	ents, _ := os.ReadDir(filepath.Join(h.dir, RejectedDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), notePrefix) {
			t.Errorf("temporary note %s left behind", e.Name())
		}
	}
	// Run has returned: the watcher and its goroutine must be gone. Goroutines of other
	// tests' cleanups may still be finishing, so allow them a moment.
	waitFor(t, realLimit, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// BenchmarkFlood files N garbage files (rejected, each with a reason note) and reports the
// rate. The settle window is 1 ms so the figure is the intake's own speed.
func BenchmarkFlood(b *testing.B) {
	const n = 500
	b.ReportAllocs()
	files := 0
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "drop")
		rec := &recorder{}
		in, err := New(Config{Dir: dir, Poll: true, Settle: time.Millisecond, PollInterval: time.Hour,
			RescanInterval: time.Hour, Handler: rec.handler(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("g%05d.cer", i)), []byte("garbage, not a certificate"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		b.StartTimer()
		go func() { done <- in.Run(ctx) }()
		for st := in.Stats(); st.Processed+st.Rejected < n; st = in.Stats() {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		elapsed += time.Since(start)
		files += n
		cancel()
		<-done
		b.StartTimer()
	}
	b.ReportMetric(float64(files)/elapsed.Seconds(), "files/s")
}
