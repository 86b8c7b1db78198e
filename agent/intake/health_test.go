package intake

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/internal/syncbuf"
)

// problemCodes returns the codes of the intake's problems.
func problemCodes(in *Intake) []string {
	var out []string
	for _, p := range in.Problems() {
		out = append(out, p.Code)
	}
	return out
}

// TestDropFolderFaultsRaiseAndClear: the drop folder deleted, renamed away, replaced by a
// file: each is a drop_folder_unavailable problem with the path and the OS error, Ready
// refuses, and the problem clears by itself once the folder is usable again. The folder is
// not made again behind a person's back, and nothing dropped is lost.
func TestDropFolderFaultsRaiseAndClear(t *testing.T) {
	// The OS's words for a missing file: "no such file or directory" on Unix, "The system
	// cannot find the file specified." on Windows ("File not found." under Wine).
	_, err := os.Stat(filepath.Join(t.TempDir(), "missing"))
	var pe *os.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("os.Stat of a missing file: %v", err)
	}
	notFound := pe.Err.Error()
	faults := []struct {
		name        string
		break_, fix func(t *testing.T, dir string)
		wantErr     string
	}{
		{"deleted", func(t *testing.T, dir string) { mustDo(t, os.RemoveAll(dir)) },
			func(t *testing.T, dir string) { mustDo(t, os.MkdirAll(dir, 0o755)) }, notFound},
		{"renamed away", func(t *testing.T, dir string) { mustDo(t, os.Rename(dir, dir+".old")) },
			func(t *testing.T, dir string) { mustDo(t, os.Rename(dir+".old", dir)) }, notFound},
		{"replaced by a file", func(t *testing.T, dir string) {
			mustDo(t, os.Rename(dir, dir+".old"))
			mustDo(t, os.WriteFile(dir, []byte("x"), 0o644))
		}, func(t *testing.T, dir string) {
			mustDo(t, os.Remove(dir))
			mustDo(t, os.Rename(dir+".old", dir))
		}, "not a folder"},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs syncbuf.Buffer
				cfg := pollCfg()
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				h := startPoll(t, cfg)
				synctest.Wait()
				if ps := h.in.Problems(); len(ps) != 0 {
					t.Fatalf("problems before the fault: %+v", ps)
				}
				tc.break_(t, h.dir)
				time.Sleep(2 * cfg.PollInterval)
				synctest.Wait()
				ps := h.in.Problems()
				// The OS's words differ (Windows: "The system cannot find the file specified."):
				// the text is checked on Unix, its presence everywhere.
				wantErr := tc.wantErr
				if runtime.GOOS == "windows" && wantErr != "not a folder" {
					wantErr = ""
				}
				if len(ps) != 1 || ps[0].Code != ProblemDropFolderUnavailable || ps[0].Path != h.in.Dir() || ps[0].Err == "" || !strings.Contains(ps[0].Err, wantErr) {
					t.Fatalf("Problems() = %+v, want drop_folder_unavailable for %s with %q", ps, h.in.Dir(), tc.wantErr)
				}
				var ue *health.UnavailableError
				if err := h.in.Ready(); !errors.As(err, &ue) || ue.Problem.Code != ProblemDropFolderUnavailable {
					t.Errorf("Ready() = %v, want a *health.UnavailableError", err)
				}
				if fi, err := os.Stat(h.dir); err == nil && fi.IsDir() {
					t.Error("the agent made the drop folder again itself")
				}
				// A lasting problem is logged again with backoff, not on every poll.
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				if n := strings.Count(logs.String(), "drop folder problem"); n < 2 || n > 6 {
					t.Errorf("the problem was logged %d times in 10 minutes, want a few (backoff):\n%s", n, logs.String())
				}
				tc.fix(t, h.dir)
				h.write("a.cer", "good")
				time.Sleep(2*cfg.PollInterval + 2*testSettle)
				synctest.Wait()
				if ps := h.in.Problems(); len(ps) != 0 {
					t.Errorf("problems after the fix: %+v", ps)
				}
				if h.in.Ready() != nil {
					t.Error("Ready() still refuses after the fix")
				}
				if got := h.names(ProcessedDir); len(got) != 1 {
					t.Errorf("processed/ = %v after the fix, want a.cer", got)
				}
				if !strings.Contains(logs.String(), "drop folder problem cleared") {
					t.Error("the end of the problem was not logged")
				}
			})
		})
	}
}

// TestArchiveUnwritableRaisesAndClears: a move into processed/ that fails is an
// archive_unwritable problem naming processed/ with the OS error; the file stays and is filed
// once the folder works again, which clears the problem.
func TestArchiveUnwritableRaisesAndClears(t *testing.T) {
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
		time.Sleep(testSettle + 5*time.Second)
		synctest.Wait()
		ps := h.in.Problems()
		if len(ps) != 1 || ps[0].Code != ProblemArchiveUnwritable || ps[0].Path != filepath.Join(h.in.Dir(), ProcessedDir) || !strings.Contains(ps[0].Err, "permission denied") {
			t.Fatalf("Problems() = %+v, want archive_unwritable for processed/", ps)
		}
		if h.in.Ready() != nil {
			t.Error("Ready() refuses although the folder can be read (files wait, nothing is lost)")
		}
		if !strings.Contains(ps[0].Message(), "processed") {
			t.Errorf("message %q does not name the folder", ps[0].Message())
		}
		// Rescans while the move keeps failing do not clear it.
		time.Sleep(3 * pollCfg().PollInterval)
		synctest.Wait()
		if got := problemCodes(h.in); len(got) != 1 {
			t.Errorf("problems while still broken = %v", got)
		}
		broken.Store(false)
		time.Sleep(retryMax)
		synctest.Wait()
		if got := problemCodes(h.in); len(got) != 0 {
			t.Errorf("problems after the folder works again = %v", got)
		}
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Errorf("processed/ = %v", got)
		}
	})
}

// TestIgnoredEntriesReported: a folder named like a certificate and a hidden certificate
// file are reported in one drop_entries_ignored warning naming each with why, once the hidden
// file has been left alone for a minute (a copy tool may be writing it); files beside them are
// still taken in, readiness is unaffected, and the warning clears when they are gone.
func TestIgnoredEntriesReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		mustDo(t, os.Mkdir(filepath.Join(h.dir, "provider.cer"), 0o755))
		h.write(".provider-2027.cer", "good")
		h.write("a.cer", "good")
		time.Sleep(testSettle + 5*time.Second)
		synctest.Wait()
		if got := problemCodes(h.in); len(got) != 1 {
			t.Fatalf("problems with a fresh hidden file = %v, want the folder only", got)
		}
		if ps := h.in.Problems(); strings.Contains(ps[0].Err, ".provider-2027.cer") {
			t.Errorf("a hidden file written seconds ago is reported: %q", ps[0].Err)
		}
		time.Sleep(ignoreQuiet)
		synctest.Wait()
		ps := h.in.Problems()
		if len(ps) != 1 || ps[0].Code != ProblemEntriesIgnored || ps[0].Health().Severity != health.Warning {
			t.Fatalf("Problems() = %+v, want one drop_entries_ignored warning", ps)
		}
		msg := ps[0].Message()
		for _, want := range []string{`"provider.cer" is a folder`, `".provider-2027.cer" is hidden`, `rename it to "provider-2027.cer"`, h.in.Dir()} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q: %s", want, msg)
			}
		}
		if h.in.Ready() != nil {
			t.Error("Ready() refuses because of ignored entries")
		}
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Errorf("processed/ = %v, want a.cer taken in beside the ignored entries", got)
		}
		mustDo(t, os.Remove(filepath.Join(h.dir, "provider.cer")))
		mustDo(t, os.Rename(filepath.Join(h.dir, ".provider-2027.cer"), filepath.Join(h.dir, "provider-2027.cer")))
		time.Sleep(testSettle + 5*time.Second)
		synctest.Wait()
		if got := problemCodes(h.in); len(got) != 0 {
			t.Errorf("problems after the entries are gone = %v", got)
		}
		if got := h.names(ProcessedDir); len(got) != 2 {
			t.Errorf("processed/ = %v, want the renamed file taken in too", got)
		}
	})
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
