//go:build !windows

package intake

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

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
