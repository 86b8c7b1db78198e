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
	// BeforeWrite is called after the read and before the write, with the app as read. The
	// engine stores its intent (the chosen keyId) here; an error stops the add before
	// anything was written.
	BeforeWrite func(app certs.Application) error
	// Expect lists keyIds that an earlier verified read showed on the app. A read that lacks
	// one of them is taken as stale (Graph's replication lag) and repeated, up to Reads times,
	// before it is believed: writing back a stale collection would drop a credential.
	Expect []string
	// Reads is how many times a read that looks stale is tried (default 4).
	Reads int
	// ReadDelay is the pause before the first repeated read; it doubles each time (default
	// 500ms).
	ReadDelay time.Duration
	// Sleep waits d or until ctx ends; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
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
	// Missing lists keyIds that Expect named but that stayed absent through every read:
	// removed outside certagent.
	Missing []string
}

// AddCertificate adds nc to the application appID by read-modify-write and proves it by a
// read-back:
//
//  1. read the app (repeating the read while it looks stale against opts.Expect);
//  2. if a credential with nc.KeyID is there, an earlier write landed: done; if a credential
//     with the same thumbprint is there, the certificate was already present: done;
//  3. call opts.BeforeWrite;
//  4. Replace the collection with every credential read in step 1, unchanged, plus nc;
//  5. read back until nc is visible, and check that every credential from step 1 is still
//     there.
//
// Because nc.KeyID is chosen by the caller before the write, repeating the whole call after a
// crash or a lost answer is idempotent: Graph keeps a credential by keyId. nc must carry Key
// (the DER), KeyID, Type and Usage. A transient error (see IsTransient) may be retried by
// calling AddCertificate again with the same nc.
func AddCertificate(ctx context.Context, kc KeyCredentials, appID string, nc certs.KeyCredential, opts AddOptions) (AddResult, error) {
	if opts.Reads <= 0 {
		opts.Reads = 4
	}
	if opts.ReadDelay <= 0 {
		opts.ReadDelay = 500 * time.Millisecond
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if nc.KeyID == "" || len(nc.Key) == 0 {
		return AddResult{}, errors.New("adding certificate: the new credential needs a keyId and a key")
	}
	thumb := certs.ThumbprintSHA1(nc.Key)

	app, missing, err := readExpecting(ctx, kc, appID, opts.Expect, opts)
	if err != nil {
		return AddResult{}, err
	}
	res := AddResult{App: app, Missing: missing}
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

	creds := make([]certs.KeyCredential, 0, len(app.KeyCredentials)+1)
	for _, c := range app.KeyCredentials {
		creds = append(creds, c.Clone())
	}
	creds = append(creds, nc.Clone())
	if err := kc.Replace(ctx, app.ObjectID, creds); err != nil {
		return res, err
	}
	res.Wrote = true

	before := keyIDs(app.KeyCredentials)
	after, _, err := readExpecting(ctx, kc, appID, append(before, nc.KeyID), opts)
	if err != nil {
		return res, fmt.Errorf("reading back after the write: %w", err)
	}
	res.App = after
	i := indexKeyID(after.KeyCredentials, nc.KeyID)
	if i < 0 {
		// Still not visible after every read: let the caller retry the whole cycle, which
		// reads again and either finds the keyId or writes it again under the same keyId.
		return res, &verifyError{transient: true, msg: fmt.Sprintf("credential %s is not visible on app %s after the write (%d reads)", nc.KeyID, appID, opts.Reads)}
	}
	res.Credential = after.KeyCredentials[i]
	if got := res.Credential.Thumbprint(); got != "" && got != thumb {
		return res, &verifyError{msg: fmt.Sprintf("credential %s on app %s has thumbprint %s, not %s", nc.KeyID, appID, got, thumb)}
	}
	if gone := absent(after.KeyCredentials, before); len(gone) > 0 {
		return res, &verifyError{msg: fmt.Sprintf("credentials %s were on app %s before the write and are gone after it; something else changed the app at the same time", strings.Join(gone, ", "), appID)}
	}
	return res, nil
}

// readExpecting reads the app, and repeats the read with growing pauses while a keyId in
// expect is missing (a stale replica). It returns the last read and what stayed missing.
func readExpecting(ctx context.Context, kc KeyCredentials, appID string, expect []string, opts AddOptions) (certs.Application, []string, error) {
	delay := opts.ReadDelay
	for i := 0; ; i++ {
		app, err := kc.Get(ctx, appID)
		if err != nil {
			return certs.Application{}, nil, err
		}
		missing := absent(app.KeyCredentials, expect)
		if len(missing) == 0 || i+1 >= opts.Reads {
			return app, missing, nil
		}
		if err := opts.Sleep(ctx, delay); err != nil {
			return certs.Application{}, nil, err
		}
		delay *= 2
	}
}

// verifyError is a read-back that did not prove the write.
type verifyError struct {
	transient bool
	msg       string
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Transient() bool { return e.transient }
func (e *verifyError) Reason() certs.Reason {
	code := certs.VerifyFailed
	return certs.Reason{Code: code, Message: e.msg}
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
