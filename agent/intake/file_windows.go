package intake

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// openFile opens a drop file for reading without following a reparse point.
//
// Windows: FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction swapped in after Lstat
// as itself (the caller's Stat check then refuses it) rather than its target. The share mode
// is FILE_SHARE_READ only, so the open fails with ERROR_SHARING_VIOLATION while any process
// still holds the file for writing (a copy in progress), and nobody can write, rename or
// delete it while it is read.
func openFile(p string) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(longPath(p))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(h), p), nil
}

// isBusy reports whether err says another process holds the file: a copy in progress keeps
// a sharing lock on Windows.
func isBusy(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}

// sameFile reports whether the Lstat before the open and the Stat of the open file describe
// the same file.
//
// Windows: always true. os.SameFile would reopen the file by name to read its ID (so it
// cannot see a swap anyway) and file IDs over SMB are not always stable; the open itself
// (no reparse point following, a regular-file check, the size and time check, a share mode
// that keeps writers out) covers what the Unix inode check does.
func sameFile(a, b fs.FileInfo) bool { return true }

// syncDir does nothing on Windows: a folder cannot be flushed through a file handle, and
// NTFS journals its metadata, so a rename is not reordered before the note written earlier.
func syncDir(string) {}

// samePath reports whether two cleaned paths are the same. Windows: names are
// case-insensitive, and the watcher may spell the folder differently than the config did.
func samePath(a, b string) bool { return strings.EqualFold(a, b) }

// eventName returns the long form of the path an event named.
//
// Windows: ReadDirectoryChangesW reports a name as the writing program spelled it, which can
// be an 8.3 short name (LONGFI~1.CER). The file would then be tracked, and archived, under
// that name; GetLongPathName gives back the real one. Names without "~" cannot be short.
func eventName(p string) string {
	if !strings.Contains(filepath.Base(p), "~") {
		return p
	}
	u, err := windows.UTF16FromString(longPath(p))
	if err != nil {
		return p
	}
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n, err := windows.GetLongPathName(&u[0], &buf[0], uint32(len(buf)))
	if err != nil || n == 0 || int(n) >= len(buf) {
		return p // gone already, or odd: the listing will find the real name
	}
	long := windows.UTF16ToString(buf[:n])
	return filepath.Join(filepath.Dir(p), filepath.Base(long))
}

// writable is checked by the moves themselves on Windows: access checks there depend on ACLs
// that only an attempt shows reliably.
func writable(string) error { return nil }
