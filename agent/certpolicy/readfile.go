package certpolicy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/userfile"
)

// ReadFile judges a file by its path, as the drop folder does:
//
//   - It looks at the path with Lstat: anything but a regular file (a directory, a symbolic
//     link, a FIFO, a device) is unsupported_file. Links are never followed and FIFOs and
//     devices never opened.
//   - It judges the name (ClassifyName): .pfx, .p12 and .key are contains_private_key, and
//     are not read; a temporary name is unsupported_file (the agent waits for the copy to
//     finish); other extensions than .cer, .crt, .pem and .der are unsupported_file.
//   - A file over certs.MaxFileSize is too_large without being opened. Otherwise it opens the
//     file without following links (userfile.OpenNoFollow, as the drop folder does: on
//     Windows a file another process is still writing cannot be read), checks that it is
//     still the file it looked at, and reads at most certs.MaxFileSize+1 bytes: more is
//     too_large.
//   - Then it runs Check on the contents, and zeroes its copy of them.
//
// When the file cannot be read, Verdict.Err says why (naming the file) and the verdict is
// unsupported_file.
func (p Policy) ReadFile(path string, now time.Time) Verdict {
	fi, err := os.Lstat(path)
	if err != nil {
		return readFailed(path, err)
	}
	if r := ModeReason(fi.Mode()); r != nil {
		return rejected(r)
	}
	if r := NameReason(path); r != nil {
		return rejected(r)
	}
	if r := SizeReason(fi.Size()); r != nil {
		return rejected(r)
	}
	f, err := userfile.OpenNoFollow(path)
	if err != nil {
		if fi2, lerr := os.Lstat(path); lerr == nil && !fi2.Mode().IsRegular() {
			// Replaced by a link or a FIFO after Lstat, which O_NOFOLLOW refused.
			return rejected(ModeReason(fi2.Mode()))
		}
		return readFailed(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return readFailed(path, err)
	}
	if !st.Mode().IsRegular() || !userfile.SameFile(fi, st) {
		return rejected(reason(certs.UnsupportedFile, "was replaced by another file while being opened; the agent reads only regular files and never follows links"))
	}
	// Room for the size Stat gave and one byte more, to see the end without growing.
	buf := make([]byte, 0, min(max(st.Size(), 0), certs.MaxFileSize)+1)
	data, err := userfile.ReadLimited(f, buf, certs.MaxFileSize)
	defer clear(data)
	switch {
	case errors.Is(err, userfile.ErrTooLarge):
		return rejected(reason(certs.TooLarge, "file is larger than %s (it grew while being read); the limit is %s", sizeText(certs.MaxFileSize), sizeText(certs.MaxFileSize)))
	case err != nil:
		return readFailed(path, err)
	}
	return p.check(data, now, "file", new(scan))
}

// readFailed is the verdict on a file that could not be read.
func readFailed(path string, err error) Verdict {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	err = fmt.Errorf("reading %s: %w", path, err)
	return Verdict{Reason: reason(certs.UnsupportedFile, "%s", err.Error()), Err: err}
}

// ModeReason refuses what is not a regular file (a link, a FIFO, a device, a socket); nil
// for a regular file. The drop folder and `certagent inspect` share these words.
func ModeReason(m fs.FileMode) *certs.Reason {
	if m.IsRegular() {
		return nil
	}
	return reason(certs.UnsupportedFile, "is %s, not a regular file; the agent reads only regular files and never follows links", modeName(m))
}

// SizeReason refuses a file larger than certs.MaxFileSize; nil otherwise.
func SizeReason(size int64) *certs.Reason {
	if size <= certs.MaxFileSize {
		return nil
	}
	return reason(certs.TooLarge, "file is %s; the limit is %s", sizeAbove(size), sizeText(certs.MaxFileSize))
}

// NameReason judges a file by its name alone (ClassifyName); nil means read it.
func NameReason(path string) *certs.Reason {
	base := filepath.Base(path)
	ext := strings.ToLower(filepath.Ext(base))
	switch ClassifyName(base) {
	case NameCertificate:
		return nil
	case NamePrivateKey:
		what := "a private key"
		if ext != ".key" {
			what = "a PKCS#12/PFX bundle (certificate with its private key)"
		}
		return reason(certs.ContainsPrivateKey, "a %s file holds %s, so it was not read; send only the public certificate (.cer)", ext, what)
	case NameSignature:
		return reason(certs.UnsupportedFile, "is a signature file, read with the certificate it signs (its name without .sig), not on its own; `certagent inspect CERT --signature CERT.sig` checks both")
	case NameTemporary:
		return reason(certs.UnsupportedFile, "has a temporary name (a copy in progress, or a hidden file); the agent waits for the copy to finish and the file to get its final name (.cer, .crt, .pem or .der)")
	}
	if ext == "" {
		return reason(certs.UnsupportedFile, "has no extension; the agent reads only .cer, .crt, .pem and .der files")
	}
	if len(ext) > 16 || !printable(ext) {
		ext = "this extension"
	}
	return reason(certs.UnsupportedFile, "the agent reads only .cer, .crt, .pem and .der files, not %s", ext)
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// modeName names a file type for a message.
func modeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
