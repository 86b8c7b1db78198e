//go:build !windows

package securefile

import (
	"fmt"
	"os"
)

func createPrivate(dir, pattern string) (*os.File, error) {
	// CreateTemp opens with O_EXCL and mode 0600 (before umask, which can only remove bits).
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

func replace(from, to string) error { return os.Rename(from, to) }

// syncDir flushes the directory entry of a rename, so a power loss cannot undo it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func restrict(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if fi.IsDir() {
		mode = 0o700
	}
	return os.Chmod(path, mode)
}

func check(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; secrets must be regular files", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is readable by other users (mode %04o); it must be %04o", path, perm, map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()])
	}
	return nil
}
