//go:build unix

package certpolicy

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

// TestReadFileFIFO: a FIFO with no writer blocks whoever opens it for reading, so this test
// would hang if ReadFile opened it.
func TestReadFileFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe.cer")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	v := Default().ReadFile(p, testNow)
	if codeOf(v) != certs.UnsupportedFile || !strings.Contains(v.Reason.Message, "a named pipe (FIFO)") {
		t.Fatalf("ReadFile(fifo) = %s, want %s naming a FIFO", describe(v), certs.UnsupportedFile)
	}
}

func TestReadFileDevice(t *testing.T) {
	v := Default().ReadFile("/dev/null", testNow)
	if codeOf(v) != certs.UnsupportedFile || !strings.Contains(v.Reason.Message, "a device") {
		t.Fatalf("ReadFile(/dev/null) = %s, want %s naming a device", describe(v), certs.UnsupportedFile)
	}
}

// TestOpenNoFollow covers the race ReadFile guards against: a link or FIFO swapped in after
// Lstat. The open itself must refuse the link and must not block on the FIFO.
func TestOpenNoFollow(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	if f, err := openNoFollow(fifo); err != nil {
		t.Errorf("openNoFollow(fifo) = %v; want it to open without blocking", err)
	} else {
		f.Close()
	}
	link := filepath.Join(dir, "link")
	if err := syscall.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	f, err := openNoFollow(link)
	if err == nil {
		f.Close()
		t.Fatal("openNoFollow(link) opened the link's target")
	}
	// Linux and macOS say ELOOP, FreeBSD EMLINK.
	if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.EMLINK) {
		t.Errorf("openNoFollow(link) = %v, want ELOOP or EMLINK", err)
	}
}
