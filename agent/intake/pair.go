package intake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/userfile"
)

// A certificate and its detached signature (provider.cer and provider.cer.sig) travel
// together: the certificate is handed to the Handler with the signature's bytes, and both are
// filed into the same folder, the signature as the certificate's archived name plus ".sig".
//
//   - A certificate whose signature file is there waits until the signature has settled too.
//   - Without one, it waits Config.SignatureWait (0: not at all) from when it settled, then
//     goes to the Handler unsigned, which decides (signature_missing when signatures are
//     required).
//   - A signature file is never judged alone while its certificate is in the folder. Without
//     its certificate it waits Config.CertificateWait, then goes to rejected/ as
//     certificate_missing.
//
// The certificate is moved first, then its signature. Should the agent stop between the two,
// the signature is left alone in the drop folder, and after CertificateWait it is filed as
// certificate_missing, with a note that says where to look: nothing is lost, and the
// certificate's rotation exists already.

// DefaultCertificateWait is the default of Config.CertificateWait.
const DefaultCertificateWait = 10 * time.Minute

// signatureName returns the name of the signature file of the certificate file name.
func signatureName(name string) string { return name + certpolicy.SignatureSuffix }

// signedName returns the name of the file the signature file name signs (its name without
// ".sig", in any case).
func signedName(name string) string { return name[:len(name)-len(certpolicy.SignatureSuffix)] }

// sigState is where a certificate's signature file stands.
type sigState int

const (
	sigNone     sigState = iota // no signature file in the folder
	sigSettling                 // there, not settled yet (or busy): look again at the time given
	sigReady                    // read: its name and bytes are returned
)

// signatureFor looks for the signature file of the certificate cert and, when it has
// settled, reads it. The entry of the signature file is tracked as any candidate is.
func (in *Intake) signatureFor(cert string) (state sigState, name string, data []byte, retry time.Time, err error) {
	name = signatureName(cert)
	if _, ok := in.files[name]; !ok {
		// The event may not have come yet, or the name differs in case only (PROVIDER.CER.SIG).
		for n, e := range in.files {
			if e.kind == certpolicy.NameSignature && strings.EqualFold(n, name) {
				name = n
				break
			}
		}
	}
	p := filepath.Join(in.dir, name)
	fi, lerr := os.Lstat(p)
	switch {
	case errors.Is(lerr, fs.ErrNotExist):
		in.forget(name)
		return sigNone, "", nil, time.Time{}, nil
	case lerr != nil:
		return sigSettling, name, nil, time.Now().Add(max(busyDelay, in.cfg.Settle)), nil
	case !fi.Mode().IsRegular():
		// A link or a folder named like a signature: not the certificate's; the intake
		// refuses it on its own.
		return sigNone, "", nil, time.Time{}, nil
	}
	in.observe(name, false)
	e := in.files[name]
	now := time.Now()
	if e == nil {
		return sigNone, "", nil, time.Time{}, nil
	}
	if due := e.settled(in.cfg.Settle); due.After(now) {
		return sigSettling, name, nil, due, nil
	}
	data, _, err = readSettled(p, fi, make([]byte, 0, min(max(fi.Size(), 0), certs.MaxSignatureSize)+1), certs.MaxSignatureSize)
	switch {
	case err == nil:
		return sigReady, name, data, time.Time{}, nil
	case errors.Is(err, userfile.ErrTooLarge):
		return sigReady, name, nil, time.Time{}, err
	case errors.Is(err, fs.ErrNotExist):
		in.forget(name)
		return sigNone, "", nil, time.Time{}, nil
	case errors.Is(err, errChanged):
		if fi2, lerr := os.Lstat(p); lerr == nil {
			e.update(fi2, now)
		} else {
			e.since = now
		}
		return sigSettling, name, nil, e.settled(in.cfg.Settle), nil
	case userfile.IsBusy(err), errors.Is(err, errWriterOpen):
		return sigSettling, name, nil, now.Add(max(busyDelay, in.cfg.Settle)), nil
	}
	return sigSettling, name, nil, now.Add(backoff(e.attempts + 1)), err
}

// processSignature looks at a signature file that is due: it waits while its certificate is
// in the folder (the certificate takes it along), finishes a move that failed after its
// certificate was filed, and refuses it as certificate_missing once it has waited
// CertificateWait without its certificate.
func (in *Intake) processSignature(ctx context.Context, e *entry, f File) {
	now := time.Now()
	if e.pairedAs != "" {
		in.filePairedSignature(ctx, e, f)
		return
	}
	cert := signedName(f.Name)
	if fi, err := os.Lstat(filepath.Join(in.dir, cert)); err == nil && fi.Mode().IsRegular() {
		e.orphanSince = time.Time{}
		if ce := in.files[cert]; ce != nil {
			// The certificate decides when the pair is read: it is due now, or when it
			// settles.
			if ce.awaitingSig {
				ce.notAfter, ce.awaitingSig = time.Time{}, false
			}
			e.notAfter = ce.due(in.cfg.Settle).Add(in.cfg.Settle)
		} else {
			in.observe(cert, false)
			e.notAfter = now.Add(in.cfg.Settle)
		}
		return
	}
	if e.orphanSince.IsZero() {
		e.orphanSince = now
	}
	if wait := e.orphanSince.Add(in.cfg.CertificateWait); wait.After(now) {
		if !e.warned {
			e.warned = true
			in.log.Info("signature file waits for its certificate", "file", f.Name, "certificate", cert, "wait", in.cfg.CertificateWait)
		}
		e.notAfter = wait
		return
	}
	in.refuse(ctx, e, f, &certs.Reason{Code: certs.CertificateMissing, Message: fmt.Sprintf(
		"no certificate %s arrived in the drop folder within %s (provenance.wait) for this signature file; drop the certificate and its signature together (if %s was filed moments before the agent stopped, it is in %s/ or %s/ already)",
		printable(cert), in.cfg.CertificateWait, printable(cert), ProcessedDir, RejectedDir)})
}

// fileSignature moves the signature file of a certificate just filed as archived (in
// processed/ or rejected/, by d) next to it, as archived + ".sig", with its own reason note
// when rejected. A failure leaves the signature file tracked, to be moved there later.
func (in *Intake) fileSignature(ctx context.Context, cert File, d Decision, archived string) {
	e := in.files[cert.SignatureName]
	if e == nil {
		e = &entry{kind: certpolicy.NameSignature}
		in.files[cert.SignatureName] = e
	}
	e.pairedAs, e.pairedDecision, e.pairedCert = archived, d, cert.Name
	fi, err := os.Lstat(filepath.Join(in.dir, cert.SignatureName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			in.log.Warn("signature file vanished before it could be filed", "file", cert.SignatureName, "certificate", cert.Name)
			in.forget(cert.SignatureName)
			return
		}
		in.failed(cert.SignatureName, e, "moving signature file failed; will retry", err)
		return
	}
	in.filePairedSignature(ctx, e, File{Name: cert.SignatureName, Size: fi.Size(), ModTime: fi.ModTime()})
}

// filePairedSignature moves a signature file whose certificate was filed (e.pairedAs) next to
// it.
func (in *Intake) filePairedSignature(ctx context.Context, e *entry, f File) {
	f.SignatureOf = e.pairedCert
	archived, err := in.archiveAs(f, e.pairedDecision, in.cfg.Now().UTC(), e.pairedAs+certpolicy.SignatureSuffix)
	if err != nil {
		if _, serr := os.Lstat(filepath.Join(in.dir, f.Name)); errors.Is(serr, fs.ErrNotExist) {
			in.forget(f.Name)
			return
		}
		if userfile.IsBusy(err) {
			e.notAfter = time.Now().Add(max(busyDelay, in.cfg.Settle))
			return
		}
		in.failed(f.Name, e, "moving signature file failed; will retry", err)
		return
	}
	in.forget(f.Name)
	folder := ProcessedDir
	if !e.pairedDecision.Accepted {
		folder = RejectedDir
	}
	in.log.Info("signature file filed with its certificate", "file", f.Name, "certificate", e.pairedCert, "archived_as", folder+"/"+archived)
}
