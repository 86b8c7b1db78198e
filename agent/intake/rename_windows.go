package intake

import (
	"os"

	"golang.org/x/sys/windows"

	"github.com/aucloud/certagent/agent/userfile"
)

// renameNoReplace renames from to to atomically, failing with an error that matches
// fs.ErrExist when to exists. It renames a symlink or junction itself, never its target.
//
// Windows: MoveFileEx without MOVEFILE_REPLACE_EXISTING fails with ERROR_ALREADY_EXISTS (or
// ERROR_FILE_EXISTS) when to exists, on NTFS and over SMB alike, so no Lstat is needed; and
// without MOVEFILE_COPY_ALLOWED it never turns into a copy and delete. It fails with
// ERROR_SHARING_VIOLATION while another process (an antivirus scan, a copy) holds the file
// without FILE_SHARE_DELETE; userfile.IsBusy reports that, and the move is tried again.
func renameNoReplace(from, to string) error {
	f, err := windows.UTF16PtrFromString(userfile.LongPath(from))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	t, err := windows.UTF16PtrFromString(userfile.LongPath(to))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err := windows.MoveFileEx(f, t, 0); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
