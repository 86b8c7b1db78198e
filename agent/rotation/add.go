package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// AddOptions tune AddCertificate. The zero value is usable.
type AddOptions struct {
	ReadOptions
	// BeforeWrite is called after the read and before the write, with the app as read. The
	// engine stores its intent (the chosen keyId) here; an error stops the add before
	// anything was written.
	BeforeWrite func(app certs.Application) error
	// Ledger is what the caller knows of the app's credentials from earlier reads;
	// AddCertificate judges every read against it and updates it. nil: nothing is known.
	Ledger *Ledger
}

// AddResult says what AddCertificate found or did.
type AddResult struct {
	// App is the application as last read (after the write when there was one).
	App certs.Application
	// Credential is the certificate's credential on the app.
	Credential certs.KeyCredential
	// AlreadyPresent is true when the certificate was on the app under another keyId, so
	// nothing was written.
	AlreadyPresent bool
	// Wrote is true when this call sent the write.
	Wrote bool
	// Changes are what the reads showed changing outside the agent.
	Changes Changes
	// Restored lists credentials that a read showed on the app during this call, that the
	// write did not keep (an edit outside the agent that the reads before the write did not
	// show yet), and that were put back by a second write.
	Restored []certs.KeyCredential
	// ReadToWrite is the time between the answer of the read the write was built on and
	// the sending of the write: the window in which an edit outside the agent can be lost.
	ReadToWrite time.Duration
	// Reads counts the reads this call made.
	Reads int
}

// AddCertificate adds nc to the application appID by read-modify-write and proves it by a
// read-back:
//
//  1. read the app until a view settles: opts.Confirm identical reads in a row, each
//     consistent with the ledger (no credential the agent saw removed, none it saw on the
//     app or wrote itself missing); a view that does not settle is never written on;
//  2. if a credential with nc.KeyID is there, an earlier write landed: done; if a credential
//     with the same thumbprint is there, the certificate was already present: done;
//  3. call opts.BeforeWrite;
//  4. Replace the collection with every credential of the view, unchanged, plus nc;
//  5. read back until nc and every credential of the view are visible;
//  6. put back any credential that a read during this call showed and the write did not
//     keep (see AddResult.Restored), by the same read-modify-write.
//
// Because nc.KeyID is chosen by the caller before the write, repeating the whole call after a
// crash or a lost answer is idempotent: Graph keeps a credential by keyId. nc must carry Key
// (the DER), KeyID, Type and Usage. A transient error (see IsTransient) may be retried by
// calling AddCertificate again with the same nc.
func AddCertificate(ctx context.Context, kc KeyCredentials, appID string, nc certs.KeyCredential, opts AddOptions) (AddResult, error) {
	if nc.KeyID == "" || len(nc.Key) == 0 {
		return AddResult{}, errors.New("adding certificate: the new credential needs a keyId and a key")
	}
	r := newViewReader(kc, appID, opts.Ledger, opts.ReadOptions)
	res, err := addCertificate(ctx, r, nc, opts)
	res.Changes, res.Reads = r.changes, r.reads
	// The agent's own credential is not someone else's addition, whatever the ledger knew.
	res.Changes.Added = slices.DeleteFunc(res.Changes.Added, func(c certs.KeyCredential) bool { return strings.EqualFold(c.KeyID, nc.KeyID) })
	return res, err
}

func addCertificate(ctx context.Context, r *viewReader, nc certs.KeyCredential, opts AddOptions) (AddResult, error) {
	thumb := certs.ThumbprintSHA1(nc.Key)
	app, err := r.settle(ctx, r.opts.Confirm)
	if err != nil {
		return AddResult{}, err
	}
	res := AddResult{App: app}
	if i := indexKeyID(app.KeyCredentials, nc.KeyID); i >= 0 {
		res.Credential = app.KeyCredentials[i]
		return res, nil
	}
	if i := indexThumbprint(app.KeyCredentials, thumb); i >= 0 {
		res.Credential = app.KeyCredentials[i]
		res.AlreadyPresent = true
		return res, nil
	}
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(app); err != nil {
			return res, err
		}
	}
	after, window, err := writeAndVerify(ctx, r, app, []certs.KeyCredential{nc})
	res.ReadToWrite = window
	if err != nil {
		return res, err
	}
	res.Wrote = true
	res.App = after
	res.Credential = after.KeyCredentials[indexKeyID(after.KeyCredentials, nc.KeyID)]
	if got := res.Credential.Thumbprint(); got != "" && got != thumb {
		return res, &verifyError{msg: fmt.Sprintf("credential %s on app %s has thumbprint %s, not %s", nc.KeyID, r.appID, got, thumb)}
	}

	// A credential some read showed, that neither the view written on nor the app now holds,
	// and that the ledger does not know as removed: an edit outside the agent that landed
	// before the write but reached the reads too late. The write dropped it: put it back.
	var lost []certs.KeyCredential
	for id, c := range r.observed {
		if indexKeyID(after.KeyCredentials, id) < 0 && r.ledger.State(id) != KeyGone {
			lost = append(lost, c.Clone())
		}
	}
	if len(lost) == 0 {
		return res, nil
	}
	slices.SortFunc(lost, func(a, b certs.KeyCredential) int { return strings.Compare(a.KeyID, b.KeyID) })
	view, err := r.settle(ctx, r.opts.Confirm)
	if err != nil {
		return res, fmt.Errorf("putting back credentials %s that an edit outside certagent added: %w", strings.Join(keyIDs(lost), ", "), err)
	}
	lost = slices.DeleteFunc(lost, func(c certs.KeyCredential) bool { return indexKeyID(view.KeyCredentials, c.KeyID) >= 0 })
	if len(lost) == 0 {
		res.App = view
		return res, nil
	}
	after, _, err = writeAndVerify(ctx, r, view, lost)
	if err != nil {
		return res, fmt.Errorf("putting back credentials %s that an edit outside certagent added: %w", strings.Join(keyIDs(lost), ", "), err)
	}
	res.App, res.Restored = after, lost
	return res, nil
}

// writeAndVerify replaces the collection with view's credentials plus add, and reads back
// until every one of them is visible. It returns the app as read back and the time between
// the view's read and the write.
func writeAndVerify(ctx context.Context, r *viewReader, view certs.Application, add []certs.KeyCredential) (certs.Application, time.Duration, error) {
	creds := make([]certs.KeyCredential, 0, len(view.KeyCredentials)+len(add))
	for _, c := range view.KeyCredentials {
		creds = append(creds, c.Clone())
	}
	for _, c := range add {
		creds = append(creds, c.Clone())
	}
	window := r.opts.Now().Sub(r.lastRead)
	if err := r.kc.Replace(ctx, view.ObjectID, creds); err != nil {
		return certs.Application{}, window, err
	}
	r.ledger.Wrote(add, r.opts.Now())

	after, err := r.settle(ctx, 1)
	if err != nil {
		if IsTransient(err) {
			// Still not visible after every read: the caller retries the whole cycle, which
			// takes the credentials' absence as reads being behind (the ledger holds them as
			// written) and writes again only if they never show up (WrittenTimeout).
			return certs.Application{}, window, &verifyError{transient: true, msg: fmt.Sprintf("the write to app %s is not visible yet: %v", r.appID, err)}
		}
		return certs.Application{}, window, fmt.Errorf("reading back after the write: %w", err)
	}
	if gone := absent(after.KeyCredentials, keyIDs(creds)); len(gone) > 0 {
		return after, window, &verifyError{msg: fmt.Sprintf("credentials %s were on app %s when it was written and are gone after it; something else changed the app at the same time", strings.Join(gone, ", "), r.appID)}
	}
	return after, window, nil
}

// verifyError is a read-back that did not prove the write.
type verifyError struct {
	transient bool
	msg       string
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Transient() bool { return e.transient }
func (e *verifyError) Reason() certs.Reason {
	return certs.Reason{Code: certs.VerifyFailed, Message: e.msg}
}

func indexKeyID(creds []certs.KeyCredential, keyID string) int {
	return slices.IndexFunc(creds, func(c certs.KeyCredential) bool { return strings.EqualFold(c.KeyID, keyID) })
}

func indexThumbprint(creds []certs.KeyCredential, thumb string) int {
	return slices.IndexFunc(creds, func(c certs.KeyCredential) bool { return c.Thumbprint() == thumb })
}

func keyIDs(creds []certs.KeyCredential) []string {
	ids := make([]string, len(creds))
	for i, c := range creds {
		ids[i] = c.KeyID
	}
	return ids
}

// absent returns the keyIds in want that creds lacks.
func absent(creds []certs.KeyCredential, want []string) []string {
	var out []string
	for _, id := range want {
		if indexKeyID(creds, id) < 0 {
			out = append(out, id)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
