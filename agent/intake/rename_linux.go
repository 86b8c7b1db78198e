package intake

import "golang.org/x/sys/unix"

// renameExclusive is renameat2(RENAME_NOREPLACE): the kernel checks that to does not exist
// and renames in one step.
func renameExclusive(from, to string) error {
	return unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
}
