package intake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/userfile"
)

// errChanged: the file changed, or another file took its name, between the checks around
// reading it: it has not settled.
var errChanged = errors.New("file changed while being read")

// keepBuf is the largest read buffer kept between files; larger ones (up to 1 MiB) are
// dropped after use, zeroed, so a single large file does not pin its buffer forever.
const keepBuf = 64 << 10

// process looks at one due entry: it refuses it by name or type, or reads it and hands it to
// the Handler, and files it. Anything that is not final leaves the entry tracked.
func (in *Intake) process(ctx context.Context, name string) {
	e := in.files[name]
	if e == nil {
		return
	}
	fi, err := os.Lstat(filepath.Join(in.dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in.forget(name) // renamed away or deleted by a person: simply forgotten
		return
	case err != nil:
		in.failed(name, e, "reading drop file failed; will retry", err)
		return
	case fi.IsDir():
		in.forget(name)
		return
	case !e.same(fi):
		e.update(fi, time.Now()) // still changing: wait for it to settle again
		return
	}
	f := File{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}
	if e.decided != nil {
		// Decided before, but the move failed; the file has not changed since.
		f.SignatureName = e.decided.sigName
		in.file(ctx, e, f, e.decided.Decision, e.decided.byIntake)
		return
	}
	// The same words as `certagent inspect` (certpolicy.ReadFile) gives.
	if r := certpolicy.ModeReason(fi.Mode()); r != nil {
		// Never opened (opening a FIFO blocks) and never followed: the entry itself is moved.
		in.refuse(ctx, e, f, r)
		return
	}
	if e.kind == certpolicy.NamePrivateKey || e.kind == certpolicy.NameUnsupported {
		in.refuse(ctx, e, f, certpolicy.NameReason(name))
		return
	}
	if e.kind == certpolicy.NameSignature {
		in.processSignature(ctx, e, f)
		return
	}
	if r := certpolicy.SizeReason(fi.Size()); r != nil {
		in.refuse(ctx, e, f, r)
		return
	}
	// The signature that goes with it (pair.go).
	switch st, sigName, sig, retry, err := in.signatureFor(name); st {
	case sigSettling:
		if err != nil {
			in.failed(sigName, e, "reading signature file failed; will retry", err)
		}
		e.notAfter = retry
		return
	case sigNone:
		if w := in.cfg.SignatureWait; w > 0 && time.Since(e.since) < w {
			if !e.awaitingSig {
				in.log.Info("certificate waits for its signature file", "file", name, "signature", signatureName(name), "wait", w)
			}
			e.awaitingSig, e.notAfter = true, e.since.Add(w)
			return
		}
		e.awaitingSig = false
	case sigReady:
		e.awaitingSig = false
		f.SignatureName, f.Signature = sigName, sig
		if errors.Is(err, userfile.ErrTooLarge) {
			in.refuse(ctx, e, f, &certs.Reason{Code: certs.SignatureInvalid, Message: fmt.Sprintf(
				"its signature file %s is larger than %d KiB, which no signature is", printable(sigName), certs.MaxSignatureSize>>10)})
			return
		}
	}
	in.handle(ctx, e, f, fi)
}

// handle reads a settled certificate file, hands it to the Handler and files it.
func (in *Intake) handle(ctx context.Context, e *entry, f File, fi fs.FileInfo) {
	p := filepath.Join(in.dir, f.Name)
	data, st, err := in.read(p, fi)
	now := time.Now()
	switch {
	case err == nil:
	case errors.Is(err, userfile.ErrTooLarge):
		in.refuse(ctx, e, f, certpolicy.SizeReason(max(f.Size, certs.MaxFileSize+1)))
		return
	case errors.Is(err, errChanged):
		switch fi2, lerr := os.Lstat(p); {
		case errors.Is(lerr, fs.ErrNotExist), lerr == nil && fi2.IsDir():
			in.forget(f.Name)
		case lerr == nil:
			e.update(fi2, now)
		default:
			e.since = now // cannot tell what it is now: wait a whole settle window
		}
		return
	case errors.Is(err, fs.ErrNotExist):
		in.forget(f.Name)
		return
	case userfile.IsBusy(err), errors.Is(err, errWriterOpen):
		// Another process holds the file (on Windows, a copy in progress keeps a sharing
		// lock): look again later, quietly.
		e.notAfter = now.Add(max(busyDelay, in.cfg.Settle))
		return
	default:
		in.failed(f.Name, e, "reading drop file failed; will retry", err)
		return
	}

	f.Size, f.ModTime = st.Size(), st.ModTime()
	f.Data = data[:len(data):len(data)] // no spare capacity for the Handler to write into
	d := in.cfg.Handler.HandleFile(ctx, f)
	// The contents may include private key bytes (a PEM key pasted after the certificate).
	in.releaseBuf(data)
	f.Data = nil
	clear(f.Signature)
	f.Signature = nil

	if d.Retry {
		e.attempts++
		e.notAfter = time.Now().Add(backoff(e.attempts))
		return
	}
	in.file(ctx, e, f, d, false)
}

// read opens the file without following links, checks it is the file fi describes, reads at
// most certs.MaxFileSize+1 bytes, closes it, and checks that nothing changed meanwhile (the
// steps of agent/userfile). The returned data lives in in.buf: call releaseBuf when done.
func (in *Intake) read(p string, fi fs.FileInfo) ([]byte, fs.FileInfo, error) {
	want := int(min(max(fi.Size(), 0)+1, certs.MaxFileSize+1)) // +1: see a file that grew
	if cap(in.buf) < want {
		in.buf = make([]byte, 0, max(want, 512)) // the old buffer was zeroed after its last use
	}
	data, st, err := readSettled(p, fi, in.buf[:0], certs.MaxFileSize)
	if data != nil {
		in.buf = data[:0]
	}
	return data, st, err
}

// readSettled reads the file p that fi describes into buf, as read does, allowing at most
// limit bytes (userfile.ErrTooLarge beyond). On an error the bytes read are zeroed and nil is
// returned.
func readSettled(p string, fi fs.FileInfo, buf []byte, limit int) ([]byte, fs.FileInfo, error) {
	f, err := userfile.OpenNoFollow(p)
	if err != nil {
		if userfile.IsBusy(err) || errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		// A link or FIFO swapped in after Lstat refuses to open: report it as a change.
		if fi2, lerr := os.Lstat(p); lerr == nil && !sameFacts(fi, fi2) {
			return nil, nil, errChanged
		}
		return nil, nil, fmt.Errorf("opening drop file %s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading drop file %s: %w", p, err)
	}
	if !st.Mode().IsRegular() || !sameFacts(fi, st) || !userfile.SameFile(fi, st) {
		return nil, nil, errChanged
	}
	if st.Size() > int64(limit) {
		return nil, nil, userfile.ErrTooLarge
	}
	// A writer that still holds the file open (a copy paused longer than the settle window)
	// is not done with it: never judge a file that is still being written.
	if err := probeWriters(f); err != nil {
		return nil, nil, err
	}
	data, err := userfile.ReadLimited(f, buf, limit)
	fail := func(err error) ([]byte, fs.FileInfo, error) {
		clear(data[:cap(data)])
		return nil, nil, err
	}
	if err != nil {
		if errors.Is(err, userfile.ErrTooLarge) {
			return fail(err)
		}
		return fail(fmt.Errorf("reading drop file %s: %w", p, err))
	}
	if err := f.Close(); err != nil { // closed before the move: Windows cannot move an open file
		return fail(fmt.Errorf("reading drop file %s: %w", p, err))
	}
	// Written to while we read? Then it has not settled after all.
	after, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
		return fail(fmt.Errorf("reading drop file %s: %w", p, err))
	}
	if !sameFacts(st, after) || int64(len(data)) != st.Size() {
		return fail(errChanged)
	}
	return data, after, nil
}

// releaseBuf zeroes the read buffer data belongs to, including spare capacity, and drops it
// when it is large.
func (in *Intake) releaseBuf(data []byte) {
	clear(data[:cap(data)])
	if cap(data) > keepBuf {
		in.buf = nil
	} else {
		in.buf = data[:0]
	}
}

// sameFacts reports whether a and b show the same type, size and modification time.
func sameFacts(a, b fs.FileInfo) bool {
	return a.Mode().Type() == b.Mode().Type() && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// refuse files a file the intake turns down by itself, without the Handler.
func (in *Intake) refuse(ctx context.Context, e *entry, f File, r *certs.Reason) {
	in.file(ctx, e, f, Decision{Reason: r}, true)
}

// file moves the file to processed/ or rejected/ and reports it. A failed move leaves the
// file tracked with its decision, to be moved (not handled again) later.
func (in *Intake) file(ctx context.Context, e *entry, f File, d Decision, byIntake bool) {
	if !d.Accepted && d.Reason == nil {
		in.log.Error("handler refused a drop file without a reason", "file", f.Name)
		d.Reason = &certs.Reason{Code: certs.UnsupportedFile, Message: "the agent refused the file without giving a reason (an agent bug: please report it)"}
	}
	f.Data, f.Signature = nil, nil
	archived, err := in.archive(f, d, in.cfg.Now().UTC())
	if err != nil {
		if _, serr := os.Lstat(filepath.Join(in.dir, f.Name)); errors.Is(serr, fs.ErrNotExist) {
			in.log.Warn("drop file vanished before it could be filed", "file", f.Name, "rotation_id", d.RotationID)
			in.forget(f.Name)
			return
		}
		d.Retry = false
		e.decided = &decided{Decision: d, byIntake: byIntake, sigName: f.SignatureName}
		if userfile.IsBusy(err) {
			e.notAfter = time.Now().Add(max(busyDelay, in.cfg.Settle))
			return
		}
		sub := ProcessedDir
		if !d.Accepted {
			sub = RejectedDir
		}
		in.raiseProblem(ProblemArchiveUnwritable, filepath.Join(in.dir, sub), err)
		in.failed(f.Name, e, "moving drop file failed; will retry", err)
		return
	}
	in.forget(f.Name)
	in.clearProblem(ProblemArchiveUnwritable)
	if f.SignatureName != "" {
		in.fileSignature(ctx, f, d, archived)
	}

	folder := ProcessedDir
	if d.Accepted {
		in.processed.Add(1)
	} else {
		folder = RejectedDir
		in.rejected.Add(1)
	}
	attrs := []any{"file", f.Name, "archived_as", path.Join(folder, archived)}
	if d.Reason != nil && !d.Accepted {
		attrs = append(attrs, "code", string(d.Reason.Code))
	}
	if d.RotationID != "" {
		attrs = append(attrs, "rotation_id", d.RotationID)
	}
	if d.Cert != nil {
		attrs = append(attrs, "thumbprint", d.Cert.Thumbprint)
	}
	if f.SignatureName != "" {
		attrs = append(attrs, "signature", f.SignatureName)
	}
	if byIntake {
		in.log.Info("drop file refused", attrs...)
	} else {
		in.log.Info("drop file filed", attrs...)
	}
	in.cfg.Handler.Filed(context.WithoutCancel(ctx), f, d, archived)
}

// failed records a failure to read or move a file: it backs off, counts it, and logs it once
// per file.
func (in *Intake) failed(name string, e *entry, msg string, err error) {
	e.attempts++
	e.notAfter = time.Now().Add(backoff(e.attempts))
	in.errs.Add(1)
	if !e.warned {
		e.warned = true
		in.log.Warn(msg, "file", name, "error", err)
	}
}
