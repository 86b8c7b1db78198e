//go:build !windows

package userfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenNoFollowRefusesLinkAndFIFO covers the race the callers guard against: a link or a
// FIFO swapped in after Lstat. The open itself must refuse the link and must not block on the
// FIFO (the test would hang), whose Stat then tells the caller it is not a regular file.
func TestOpenNoFollowRefusesLinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.cer")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	f, err := OpenNoFollow(fifo)
	if err != nil {
		t.Fatalf("OpenNoFollow(FIFO) = %v; want it to open without blocking", err)
	}
	if st, err := f.Stat(); err != nil || st.Mode().IsRegular() {
		t.Errorf("Stat of the opened FIFO = %v, %v; the caller relies on it to refuse the FIFO", st.Mode(), err)
	}
	f.Close()

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{target, fifo} {
		link := filepath.Join(dir, "link-to-"+filepath.Base(to))
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
		f, err := OpenNoFollow(link)
		if err == nil {
			f.Close()
			t.Fatalf("OpenNoFollow(link to %s) opened the link's target", to)
		}
		// Linux and macOS say ELOOP, FreeBSD EMLINK.
		if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.EMLINK) {
			t.Errorf("OpenNoFollow(link to %s) = %v, want ELOOP or EMLINK", to, err)
		}
		if IsBusy(err) {
			t.Errorf("IsBusy(%v) = true on Unix", err)
		}
	}
}

// TestSameFileNoticesSwap: another file renamed over the name, with the same size and time,
// is not the same file.
func TestSameFileNoticesSwap(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "a.cer"), filepath.Join(dir, "other")
	for _, f := range []string{p, other} {
		if err := os.WriteFile(f, []byte("good"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	f, err := OpenNoFollow(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if SameFile(before, st) {
		t.Error("SameFile(before, after a rename over it) = true, want false")
	}
}
