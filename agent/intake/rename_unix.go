//go:build !windows

package intake

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// renameNoReplace renames from to to atomically, failing with an error that matches
// fs.ErrExist when to exists. It renames a symlink or FIFO itself, never what it points to.
func renameNoReplace(from, to string) error {
	err := renameExclusive(from, to)
	if err == nil {
		return nil
	}
	// Linux's renameat2(RENAME_NOREPLACE) is refused by file systems that do not support it
	// (EINVAL; some network and FUSE file systems) and by old kernels (ENOSYS); other Unix
	// systems have no such call here. Only then fall back to Lstat and rename: a file that
	// appears at to between the two would be replaced, but the names are the intake's own,
	// time-stamped, in folders only it writes to.
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) &&
		!errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if _, err := os.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EEXIST}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(from, to)
}
