//go:build !windows

package intake

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFile opens a drop file for reading without following a link and without blocking.
// Lstat said it was a regular file, but another can take its name before the open:
// O_NOFOLLOW makes a symlink fail (ELOOP) instead of being followed, and O_NONBLOCK makes a
// FIFO open at once instead of waiting for a writer (the caller's Stat check then refuses
// it). O_NOCTTY keeps a terminal device from becoming the agent's controlling terminal.
func openFile(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

// isBusy reports whether err says another process holds the file. Unix has no mandatory
// sharing locks: a file being written is seen changing instead.
func isBusy(error) bool { return false }

// sameFile reports whether the Lstat before the open and the Stat of the open file describe
// the same file (device and inode).
func sameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

// syncDir flushes a folder's entries (a rename into it) to disk.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// samePath reports whether two cleaned paths are the same. Unix paths are case-sensitive.
func samePath(a, b string) bool { return a == b }

// eventName returns the path an event named.
func eventName(p string) string { return p }

// writable reports (as an error) when the agent may not create or move files in dir. It asks
// the kernel with the agent's effective identity, so it tells for a service account; root
// may write anywhere its file system allows, so a read-only mount shows up only when a move
// fails.
func writable(dir string) error {
	if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("the agent may not write in %s: %w", dir, err)
	}
	return nil
}
