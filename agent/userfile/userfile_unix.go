//go:build !windows

package userfile

import (
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow: O_NOFOLLOW makes a final symbolic link fail (ELOOP; EMLINK on FreeBSD)
// instead of being followed, O_NONBLOCK makes a FIFO open at once instead of waiting for a
// writer (for a regular file it changes nothing), and O_NOCTTY keeps a terminal device from
// becoming the agent's controlling terminal.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

// sameFile compares the device and inode.
func sameFile(before, opened fs.FileInfo) bool { return os.SameFile(before, opened) }

// isBusy is always false: Unix has no mandatory sharing locks.
func isBusy(error) bool { return false }

// longPath returns p: Unix has no MAX_PATH to work around.
func longPath(p string) string { return p }
