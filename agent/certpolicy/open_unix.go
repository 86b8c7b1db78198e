//go:build unix

package certpolicy

import (
	"os"
	"syscall"
)

// openNoFollow opens path for reading without following a final symbolic link (O_NOFOLLOW:
// a link swapped in after Lstat fails with ELOOP) and without blocking should a FIFO have been
// swapped in (O_NONBLOCK; for a regular file it changes nothing).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
