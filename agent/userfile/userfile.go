// Package userfile opens and reads files that someone else put where the agent looks: a
// certificate in the drop folder, a path given to `certagent inspect`. Whoever controls the
// folder can replace such a file at any moment, by a link to a file the agent may read and
// they may not, by a FIFO that blocks whoever opens it, or by something huge. So a caller
// looks at the path first (os.Lstat: a regular file, of a size it takes), and then:
//
//	f, err := userfile.OpenNoFollow(path) // a link swapped in is not followed, a FIFO does not block
//	st, err := f.Stat()
//	if !st.Mode().IsRegular() || !userfile.SameFile(fi, st) {
//		// another file took the name after Lstat
//	}
//	data, err := userfile.ReadLimited(f, buf, certs.MaxFileSize) // ErrTooLarge past the limit
//	defer clear(data) // the file may hold key material (a private key pasted after a certificate)
//
// Windows differs in three ways, each explained where it happens: the open shares reading only,
// so a file another process still writes fails with a sharing violation (IsBusy) and nobody
// can change the file while it is read; a reparse point is opened as itself; and SameFile
// cannot compare file IDs. Unix has no mandatory sharing locks, so IsBusy is always false
// there; a file being written is seen changing instead.
package userfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// ErrTooLarge is returned by ReadLimited when the input is longer than the limit.
var ErrTooLarge = errors.New("file is larger than the limit")

// OpenNoFollow opens path for reading without following a final link and without blocking,
// whatever took the name since the caller looked at it. The caller checks that the open file
// (its Stat) is the regular file it expected: a FIFO, a device, or on Windows a link, is
// opened as itself.
func OpenNoFollow(path string) (*os.File, error) { return openNoFollow(path) }

// SameFile reports whether before, from os.Lstat of a path, and opened, from Stat of the file
// OpenNoFollow opened there, describe the same file: whether the name changed hands in
// between. It does not compare the type, size or time.
func SameFile(before, opened fs.FileInfo) bool { return sameFile(before, opened) }

// IsBusy reports whether err, from OpenNoFollow or from a rename, says that another process
// holds the file: on Windows, a copy in progress. The caller looks again later.
func IsBusy(err error) bool { return isBusy(err) }

// LongPath returns p in the form that direct Win32 calls take when it may exceed MAX_PATH
// (260 characters), as the os package does for its own calls: \\?\C:\... or
// \\?\UNC\server\share\.... Elsewhere it returns p.
func LongPath(p string) string { return longPath(p) }

// ReadLimited appends r's contents to buf until io.EOF, reading no more than limit+1 bytes
// in all (buf's length included): past limit it stops and returns ErrTooLarge with what it
// read. Another read error is returned with what was read before it. When buf is full it
// grows, and each buffer it outgrows is zeroed, so that the caller has one buffer to clear,
// the one returned. A buf with room for the expected size plus one byte is read without
// growing.
func ReadLimited(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) > limit {
			return buf, ErrTooLarge
		}
		if len(buf) == cap(buf) {
			bigger := make([]byte, len(buf), min(max(2*cap(buf), 512), limit+1))
			copy(bigger, buf)
			clear(buf)
			buf = bigger
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
