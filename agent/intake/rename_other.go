//go:build !linux && !windows

package intake

import "syscall"

// renameExclusive has no atomic no-replace rename to call on this system: ENOSYS sends
// renameNoReplace to its fallback.
func renameExclusive(from, to string) error { return syscall.ENOSYS }
