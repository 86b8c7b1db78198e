//go:build !windows

package certpolicy

import (
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
