// Package securefile writes and guards the agent's secrets (the API token, the agent's private
// key, the state directory): readable only by administrators/root, the service, and the
// account the agent runs as.
//
// On Unix that is mode 0600 (files) and 0700 (directories) owned by the running user. On
// Windows it is an explicit, protected DACL granting full control to SYSTEM, the built-in
// Administrators group, the CertAgent service SID (NT SERVICE\CertAgent) and the running user,
// and nobody else (no inherited entries).
package securefile

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// ServiceName is the Windows service whose virtual account (NT SERVICE\CertAgent) is granted
// access on Windows.
const ServiceName = "CertAgent"

// WriteFile atomically replaces path with data, readable only by the principals the package
// comment lists. The file never exists with weaker permissions, not even briefly: the
// temporary file is created private, written, flushed, and renamed over path.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	// A missing folder is created (0700 on Unix; on Windows it inherits its parent's access
	// list: the file itself is what gets the private DACL). An existing one is left alone.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp, err := createPrivate(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := replace(name, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// MkdirAll creates dir and any missing parents; dir itself gets private permissions (parents
// get the usual ones). An existing dir is restricted too.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return Restrict(dir)
}

// Restrict (re)applies private permissions to an existing file or directory, repairing any
// that someone loosened.
func Restrict(path string) error {
	if err := restrict(path); err != nil {
		return fmt.Errorf("restricting access to %s: %w", path, err)
	}
	return nil
}

// Check reports an error when path can be read by anyone beyond the principals the package
// comment lists.
func Check(path string) error {
	return check(path)
}

// ServiceSID returns the SID string of a Windows service's virtual account
// (NT SERVICE\<name>): S-1-5-80- followed by the SHA-1 of the upper-cased UTF-16LE name read
// as five little-endian 32-bit numbers. Windows derives it the same way, so it is known
// before the service exists.
func ServiceSID(name string) string {
	u := utf16.Encode([]rune(strings.ToUpper(name)))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	sum := sha1.Sum(b)
	var parts [5]string
	for i := range parts {
		parts[i] = fmt.Sprint(binary.LittleEndian.Uint32(sum[4*i:]))
	}
	return "S-1-5-80-" + strings.Join(parts[:], "-")
}
