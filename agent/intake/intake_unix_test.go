//go:build !windows

package intake

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Windows has no FIFOs in folders, and creating symlinks there needs a privilege the test
// runner rarely has: this test is Unix-only.
func TestLinksAndFIFOsMovedUnopened(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "real.cer")
	if err := os.WriteFile(target, []byte("good certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Real time here: if the intake ever opened the FIFO it would block in a system call,
	// which synctest cannot see through. The cleanup below unblocks such an open so the test
	// fails instead of hanging.
	h := newHarness(t, Config{Poll: true, Settle: realSettle, PollInterval: 20 * time.Millisecond, RescanInterval: time.Hour})
	links := map[string]string{"link.cer": target, "dirlink": outside, "dangling.pem": filepath.Join(outside, "missing")}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(h.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(h.dir, "pipe.cer"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.run()
	t.Cleanup(func() { unjamFIFOs(h) })

	waitFor(t, realLimit, "the links and the FIFO to be filed", func() bool { return h.rec.filedCount() == 4 })
	if got := h.rec.handledNames(); len(got) != 0 {
		t.Fatalf("HandleFile called for %v; links and FIFOs must not be read", got)
	}
	calls := h.rec.filedCalls()
	for _, name := range []string{"link.cer", "dirlink", "dangling.pem", "pipe.cer"} {
		i := slices.IndexFunc(calls, func(f filed) bool { return f.Name == name })
		if i < 0 {
			t.Errorf("%s not filed", name)
			continue
		}
		if calls[i].Accepted || calls[i].Code != certs.UnsupportedFile {
			t.Errorf("%s filed as %+v, want rejected as unsupported_file", name, calls[i])
		}
		moved := filepath.Join(h.dir, RejectedDir, calls[i].ArchivedAs)
		fi, err := os.Lstat(moved)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if to, ok := links[name]; ok {
			// The link itself moved: it still points where it did.
			if got, _ := os.Readlink(moved); fi.Mode()&fs.ModeSymlink == 0 || got != to {
				t.Errorf("%s archived as mode %v -> %q, want the same symlink to %q", name, fi.Mode(), got, to)
			}
		} else if fi.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("%s archived as mode %v, want the FIFO itself", name, fi.Mode())
		}
		if !h.exists(filepath.Join(RejectedDir, calls[i].ArchivedAs+ReasonSuffix)) {
			t.Errorf("%s: no reason note", name)
		}
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "good certificate" {
		t.Errorf("link target = %q, %v; it must not be touched", got, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("the folder a link pointed to now holds %d entries, want 1", len(ents))
	}
}

// unjamFIFOs opens every FIFO in the drop folder and rejected/ for writing without blocking,
// which lets a reader stuck in open(2) go on.
func unjamFIFOs(h *harness) {
	for _, sub := range []string{"", RejectedDir} {
		ents, _ := os.ReadDir(filepath.Join(h.dir, sub))
		for _, e := range ents {
			if e.Type()&fs.ModeNamedPipe != 0 {
				if f, err := os.OpenFile(filepath.Join(h.dir, sub, e.Name()), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
		}
	}
}

func TestReadNoticesSwap(t *testing.T) {
	h := newHarness(t, pollCfg())
	p := filepath.Join(h.dir, "a.cer")
	other := filepath.Join(t.TempDir(), "other")
	for _, f := range []string{p, other} {
		if err := os.WriteFile(f, []byte("good"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	mtime := fi.ModTime()
	// Same name, size and time, but another file (another inode).
	if err := os.Chtimes(other, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.in.read(p, fi); err != errChanged {
		t.Errorf("read after the file was replaced = %v, want errChanged", err)
	}
	// A symlink in its place.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", p); err != nil {
		t.Fatal(err)
	}
	if data, _, err := h.in.read(p, fi); err != errChanged || data != nil {
		t.Errorf("read of a swapped-in symlink = %q, %v; want errChanged", data, err)
	}
}
