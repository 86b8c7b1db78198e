package userfile

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/windows"
)

// openNoFollow calls CreateFile itself, because os.Open shares reading and writing and
// follows reparse points.
//
// Windows: FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction swapped in after Lstat as
// itself (the caller's Stat check then refuses it) rather than its target. The share mode is
// FILE_SHARE_READ only, so the open fails with ERROR_SHARING_VIOLATION while any process still
// holds the file for writing (a copy in progress: IsBusy), and nobody can write, rename or
// delete it while it is read. There are no FIFOs in the file system to block on.
func openNoFollow(path string) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(longPath(path))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// sameFile is always true on Windows. os.SameFile would reopen the Lstat'ed path by name to
// read its file ID (so it sees whatever holds the name now, and cannot notice a swap), and
// file IDs over SMB are not always stable. The open itself covers what the Unix inode check
// does: reparse points are not followed, the caller checks for a regular file, and the share
// mode keeps writers out while it reads.
func sameFile(before, opened fs.FileInfo) bool { return true }

// isBusy: a copy in progress keeps a sharing lock (or a byte-range lock) on Windows.
func isBusy(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}

// longPath adds the \\?\ prefix to an absolute path that may exceed MAX_PATH (260), which the
// os package does by itself but direct Win32 calls need.
func longPath(p string) string {
	if len(p) < 248 || strings.HasPrefix(p, `\\?\`) {
		return p
	}
	if strings.HasPrefix(p, `\\`) {
		return `\\?\UNC\` + p[2:] // \\server\share\... → \\?\UNC\server\share\...
	}
	return `\\?\` + p
}
