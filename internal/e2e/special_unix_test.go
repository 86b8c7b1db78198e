//go:build !windows

package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// makeSpecialFiles puts a symlink and a FIFO into dir: the agent must move them to
// rejected/ without following or opening them (opening a FIFO would block forever).
func makeSpecialFiles(t *testing.T, dir string) []string {
	t.Helper()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.cer")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.cer"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"link.cer", "pipe.cer"}
}
