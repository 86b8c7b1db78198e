package intake

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/securefile"
)

// StampLayout is the UTC time that starts an archived name: 20261125T193000Z.
const StampLayout = "20060102T150405Z"

// maxClash bounds the counter added to archived names that clash.
const maxClash = 10000

// maxArchivedLen keeps an archived name, with ReasonSuffix appended, within the 255 bytes
// (Unix) or 255 UTF-16 units (Windows) a file name may have.
const maxArchivedLen = 255 - len(ReasonSuffix)

// notePrefix starts the temporary files reason notes are written to, in rejected/.
const notePrefix = ".certagent-note-"

// archive moves the file into processed/ (d.Accepted) or rejected/ under its archived name,
// and returns that name. A rejected file gets its reason note first.
//
// Nothing is ever replaced: a clash (the same name filed in the same second, or a file a
// person put there) moves on to the next counter, "<stamp>_<stem>-2<ext>" and so on.
func (in *Intake) archive(f File, d Decision, when time.Time) (string, error) {
	return in.archiveAs(f, d, when, "")
}

// archiveAs is archive with the archived name to try first (a signature file goes next to
// its certificate: "<certificate's archived name>.sig"); "" for the usual one. A clash moves
// on to the preferred name's counters.
func (in *Intake) archiveAs(f File, d Decision, when time.Time, prefer string) (string, error) {
	sub := ProcessedDir
	if !d.Accepted {
		sub = RejectedDir
	}
	src := filepath.Join(in.dir, f.Name)
	// A file that holds (or is named for) a private key becomes private before it moves:
	// whoever may read rejected/ must not read the key. Not fatal: the file is filed anyway,
	// and its note says what happened.
	var restrictErr error
	private := !d.Accepted && d.Reason != nil && d.Reason.Code == certs.ContainsPrivateKey
	if private {
		if restrictErr = securefile.Restrict(src); restrictErr != nil {
			in.log.Warn("making a rejected private key file private failed", "file", f.Name, "err", restrictErr)
		}
	}
	stamp := when.Format(StampLayout)
	remade := false
	for k := 1; k <= maxClash; k++ {
		archived := archiveName(stamp, f.Name, k)
		if prefer != "" {
			archived = counted(prefer, k)
		}
		dst := filepath.Join(in.dir, sub, archived)
		note := ""
		if !d.Accepted {
			note = dst + ReasonSuffix
			text := reasonText(f, d, archived, when)
			if private {
				text = privateNote(text, restrictErr)
			}
			err := writeNote(note, text)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if errors.Is(err, fs.ErrNotExist) && !remade {
				remade = true // rejected/ was removed: make it again and retry this name
				if ensureDir(filepath.Join(in.dir, sub)) == nil {
					k--
					continue
				}
			}
			if err != nil {
				return "", fmt.Errorf("writing reason note %s: %w", note, err)
			}
		}
		// The note is on disk (written, synced, renamed into place, folder synced) before the
		// file moves. A crash right here leaves the note and the file still in the drop
		// folder. That is safe: nothing is lost or overwritten, the file is filed again after
		// the restart (the Handler finds its rotation by thumbprint, so nothing is uploaded
		// twice) under a name of its own, and the stray note says, at its end, what a note
		// without its file means. The other order could leave a rejected file that nobody
		// can tell the reason for.
		err := in.rename(src, dst)
		if err == nil {
			return archived, nil
		}
		if note != "" {
			os.Remove(note) // ours, and it describes a move that did not happen
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && !remade {
			if _, serr := os.Lstat(src); serr == nil {
				remade = true // the file is there, so the target folder is not
				if ensureDir(filepath.Join(in.dir, sub)) == nil {
					k--
					continue
				}
			}
		}
		return "", fmt.Errorf("moving drop file %s to %s: %w", f.Name, sub, err)
	}
	return "", fmt.Errorf("moving drop file %s to %s: more than %d files filed under the same name in one second", f.Name, sub, maxClash)
}

// archiveName returns "<stamp>_<name>", with "-<k>" before the extension when k > 1. A name
// too long for the file system keeps its extension and loses the end of its stem.
func archiveName(stamp, name string, k int) string {
	ext := filepath.Ext(name)
	if len(ext) > 32 || ext == name {
		ext = ""
	}
	stem := strings.TrimSuffix(name, ext)
	suffix := ""
	if k > 1 {
		suffix = "-" + strconv.Itoa(k)
	}
	if room := maxArchivedLen - len(stamp) - 1 - len(suffix) - len(ext); len(stem) > room {
		stem = truncateUTF8(stem, room)
	}
	return stamp + "_" + stem + suffix + ext
}

// counted returns name, or with "-<k>" before its extension when k > 1.
func counted(name string, k int) string {
	if k == 1 {
		return name
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(k) + ext
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// writeNote writes text to path atomically and without replacing anything: temporary file,
// fsync, no-replace rename, folder fsync. It fails with an fs.ErrExist error when path exists.
func writeNote(path, text string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, notePrefix+"*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.WriteString(text)
	if err == nil {
		err = tmp.Chmod(0o644) // people read these; CreateTemp makes 0600
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameNoReplace(name, path)
	}
	if err != nil {
		os.Remove(name)
		return err
	}
	syncDir(dir)
	return nil
}

// removeStaleTemps removes temporary note files a crash left in rejected/. They are the
// intake's own, never a file it was given.
func (in *Intake) removeStaleTemps() {
	matches, _ := filepath.Glob(filepath.Join(in.dir, RejectedDir, notePrefix+"*.tmp"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// reasonText is the note beside a rejected file, for a person: what, when, why, and what to
// do next. It never holds the file's contents.
func reasonText(f File, d Decision, archived string, when time.Time) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\n")
	}
	line("certagent did not accept this file.")
	line("")
	line("File:           %s", printable(f.Name))
	line("Archived as:    %s (in this folder)", printable(archived))
	line("Filed at:       %s", when.UTC().Format(time.RFC3339))
	line("Size:           %d bytes, last modified %s", f.Size, f.ModTime.UTC().Format(time.RFC3339))
	if d.Reason != nil {
		line("Reason code:    %s", d.Reason.Code)
		line("Reason:         %s", printable(d.Reason.Message))
	}
	if d.RotationID != "" {
		line("Rotation:       %s", printable(d.RotationID))
	}
	if f.SignatureName != "" {
		line("Signature:      %s (filed beside this file as %s%s)", printable(f.SignatureName), printable(archived), certpolicy.SignatureSuffix)
	}
	if f.SignatureOf != "" {
		line("Signature of:   %s (filed beside this note without .sig; the reason is the certificate's)", printable(f.SignatureOf))
	}
	if c := d.Cert; c != nil {
		line("")
		if f.SignatureOf != "" {
			line("Certificate it signs:")
		} else {
			line("Certificate in the file:")
		}
		line("  Subject:        %s", printable(c.Subject))
		line("  Issuer:         %s", printable(c.Issuer))
		line("  Thumbprint:     %s (SHA-1)", c.Thumbprint)
		line("  SHA-256:        %s", c.SHA256)
		line("  Serial number:  %s", c.SerialNumber)
		line("  Valid from:     %s", c.NotBefore.UTC().Format(time.RFC3339))
		line("  Valid until:    %s", c.NotAfter.UTC().Format(time.RFC3339))
		if c.KeyBits > 0 {
			line("  Key:            %s %d bits", c.KeyAlgorithm, c.KeyBits)
		} else {
			line("  Key:            %s", c.KeyAlgorithm)
		}
	}
	line("")
	line("What to do next:")
	var code certs.Code
	if d.Reason != nil {
		code = d.Reason.Code
	}
	for _, s := range wrap(advice(code), 90) {
		line("  %s", s)
	}
	line("  Once the cause is fixed, copy the corrected file into the drop folder: the agent")
	line("  picks it up by itself. This file and this note may be deleted when no longer needed.")
	line("")
	line("If no file named %s lies beside this note, the agent stopped before", printable(archived))
	line("it could move the file: the file is still in the drop folder and will be filed again.")
	s := b.String()
	if runtime.GOOS == "windows" {
		s = strings.ReplaceAll(s, "\n", "\r\n") // for Notepad and type(1) on older Windows
	}
	return s
}

// privateNote adds to a reason note what was done about the private key's file: made
// readable only by administrators and the agent, or why it could not be.
func privateNote(text string, restrictErr error) string {
	nl := "\n"
	if runtime.GOOS == "windows" {
		nl = "\r\n"
	}
	access := "readable by its owner only (mode 0600)"
	if runtime.GOOS == "windows" {
		access = "readable only by Administrators, SYSTEM and the agent's service (a private access list)"
	}
	line := "Access:         the agent made this file " + access + " before filing it here, whatever access it arrived with."
	if restrictErr != nil {
		line = "Access:         the agent could NOT make this file private (" + printable(restrictErr.Error()) + "): check who can read this folder, and delete the file securely."
	}
	head, rest, ok := strings.Cut(text, nl+nl+"What to do next:")
	if !ok {
		return text + line + nl
	}
	return head + nl + line + nl + nl + "What to do next:" + rest
}

// advice says what a person should do about a refusal code.
func advice(code certs.Code) string {
	switch code {
	case certs.NotACertificate:
		return "The file does not hold an X.509 certificate. Ask the provider for the public certificate as a .cer, .crt, .pem or .der file (DER, PEM or base64)."
	case certs.ContainsPrivateKey:
		return "The file holds, or by its name is for, a private key. The agent never reads or uploads private keys. Delete this copy securely and ask the provider for the public certificate only (a .cer file). If the private key travelled by e-mail or sat in a shared folder, treat it as exposed and tell the provider."
	case certs.MultipleCertificates:
		return "The file holds more than one certificate. Drop one file per certificate: only the provider's own certificate, without its chain."
	case certs.Expired:
		return "The certificate is not valid now (expired, or not yet valid). Ask the provider for a current certificate, and check this computer's clock."
	case certs.ExpiresTooSoon:
		return "The certificate expires sooner than the policy allows (policy.min_validity_days). Ask the provider for a certificate that is valid longer, or change the policy if this one is intended."
	case certs.WeakKey:
		return "The certificate's RSA key is shorter than the policy requires (policy.min_rsa_bits). Ask the provider for a certificate with a longer key."
	case certs.UnsupportedKeyType:
		return "Entra ID app authentication needs an RSA certificate. Ask the provider for an RSA certificate."
	case certs.NotAllowed:
		return "The certificate does not match the allow-list in the agent's policy (subject, issuer or thumbprint). Check that it really comes from the expected provider; if it does, update the policy and drop the file again."
	case certs.TooLarge:
		return "The agent reads files of at most 1 MiB; a certificate takes a few KiB. Drop only the certificate file."
	case certs.UnsupportedFile:
		return "The agent takes only regular files named .cer, .crt, .pem or .der, directly in the drop folder (no links, no folders). Save the certificate under such a name and drop it again."
	case certs.NoTarget:
		return "The agent keeps several app registrations current, and no target's policy names this certificate. Drop it into the folder of the target it is for (drop/<target name>/), or add its subject or issuer to that target's policy."
	case certs.AmbiguousTarget:
		return "The policies of several targets name this certificate. Drop it into the folder of the target it is for (drop/<target name>/), or set intake.route_to_all if it is meant for all of them."
	case certs.SignatureMissing:
		return "The agent takes only certificates the provider signed (provenance.required), and no signature came with this one. The provider signs the certificate file with its key and delivers the signature beside it, named like the certificate plus .sig (provider.cer and provider.cer.sig); drop both files together."
	case certs.SignatureInvalid:
		return "The signature that came with this certificate is not the provider's signature of this exact file: the file was changed after it was signed, the signature belongs to another file, or it is damaged. Do not upload this certificate by hand: ask the provider for the certificate and its signature again, and check who put this file here."
	case certs.SignerNotPinned:
		return "The signature was made by a key that is not pinned in provenance.keys. If the provider announced a new signing key, check it with the provider by another channel, add it to provenance.keys and drop both files again; otherwise treat the certificate as not coming from the provider."
	case certs.CertificateMissing:
		return "This is a signature file, and the certificate it belongs to (its name without .sig) did not arrive in the drop folder within provenance.wait. Drop the certificate and its signature together; if the certificate was filed moments before the agent stopped, it is in processed/ or rejected/ already."
	}
	return "Read the reason above, fix its cause, and drop the file again."
}

// printable returns s as is when it is plain printable text, and quoted otherwise, so a
// file name cannot break the note's lines.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.QuoteToASCII(s)
	}
	return s
}

// wrap splits s into lines of at most width bytes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
