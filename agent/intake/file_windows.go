package intake

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"

	"github.com/aucloud/certagent/agent/userfile"
)

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
	u, err := windows.UTF16FromString(userfile.LongPath(p))
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
