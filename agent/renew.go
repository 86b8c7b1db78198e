package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

// The agent renews its own sign-in credential with Graph's addKey/removeKey on its own app,
// which need no permission beyond the current key (GRAPH-NOTES "Addressing and
// permissions"). Reading its own app (to learn its object id and whether the new key is there) needs
// the agent's service principal to own its app, or Application.Read.All.
//
// Crash safety: the new pair is written to agent.next.{pem,key} before addKey, so a restart
// resumes with the same key (never registering a second new key). Promotion writes the main
// files; credential.Recover repairs a promotion cut short.

// nextFiles is where a renewal keeps the new pair until it is proven.
func nextFiles(main credential.Files) credential.Files {
	return credential.Files{
		Cert: filepath.Join(filepath.Dir(main.Cert), "agent.next.pem"),
		Key:  filepath.Join(filepath.Dir(main.Key), "agent.next.key"),
	}
}

// RotateCredential implements api.Backend: it starts a renewal and returns.
func (a *Agent) RotateCredential(ctx context.Context, actor string) error {
	if !a.renewMu.TryLock() {
		return &api.Error{Status: http.StatusConflict, Code: apitype.CodeInvalidState, Detail: "a renewal of the agent's credential is under way"}
	}
	a.goRun(func(ctx context.Context) {
		defer a.renewMu.Unlock()
		if err := a.renewCredential(ctx, actor); err != nil {
			a.log.Error("renewing the agent's credential", "err", err)
		}
	})
	return nil
}

// renewLoop renews the credential when it enters the renew_before window, and resumes a
// renewal that a stop or crash cut short. It checks at start and every hour.
func (a *Agent) renewLoop(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		c := a.cred.Credential()
		_, err := os.Stat(nextFiles(credentialFiles(a.cfg)).Key)
		pending := err == nil
		due := c.Cert.NotAfter.Sub(a.now()) < a.cfg.Auth.RenewBefore.Duration()
		if (pending || due) && a.renewMu.TryLock() {
			if err := a.renewCredential(ctx, rotation.ActorAgent); err != nil && ctx.Err() == nil {
				a.log.Warn("renewing the agent's credential; will try again in an hour", "err", err)
			}
			a.renewMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// renewCredential runs one renewal. Callers hold renewMu.
func (a *Agent) renewCredential(ctx context.Context, actor string) (err error) {
	main := credentialFiles(a.cfg)
	next := nextFiles(main)
	cur := a.cred.Credential()
	curThumb := certs.ThumbprintSHA1(cur.Cert.Raw)
	fail := func(step string, err error) error {
		reason := rotation.ErrorReason(err)
		a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeError, Code: reason.Code,
			Message: fmt.Sprintf("renewing the agent's credential: %s: %s", step, reason.Message)})
		return fmt.Errorf("%s: %w", step, err)
	}

	own, err := a.graph.Get(ctx, a.cfg.Auth.ClientID)
	if err != nil {
		return fail("reading the agent's own app "+a.cfg.Auth.ClientID+" (the agent's service principal must own its app registration, or hold Application.Read.All)", err)
	}
	nc, err := credential.Load(next)
	if errors.Is(err, credential.ErrNotFound) {
		host, _ := os.Hostname()
		nc, err = credential.Generate(credential.Options{CommonName: "certagent " + host, Bits: a.cfg.Auth.KeyBits, Validity: a.cfg.Auth.Validity.Duration(), Now: a.now})
		if err == nil {
			err = credential.Save(next, nc)
		}
	}
	if err != nil {
		return fail("preparing the new key pair", err)
	}
	newThumb := certs.ThumbprintSHA1(nc.Cert.Raw)
	if !hasThumb(own.KeyCredentials, newThumb) {
		name := fmt.Sprintf("certagent %s (renewed %s)", strings.TrimPrefix(nc.Cert.Subject.CommonName, "certagent "), a.now().UTC().Format(time.DateOnly))
		if _, err := a.graph.AddKey(ctx, own.ObjectID, nc.Cert, name); err != nil {
			return fail("adding the new certificate to the agent's app", err)
		}
		a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK,
			Message: fmt.Sprintf("added the agent's new certificate %s to its app %s", newThumb, a.cfg.Auth.ClientID)})
	}

	// Prove the new key signs in before relying on it; Entra may take a while to accept a
	// new key everywhere.
	a.cred.Set(nc)
	delay := 2 * time.Second
	for attempt := 1; ; attempt++ {
		own, err = a.graph.Get(ctx, a.cfg.Auth.ClientID)
		if err == nil {
			break
		}
		if attempt >= 6 || ctx.Err() != nil {
			a.cred.Set(cur)
			return fail("signing in with the new certificate (kept the old one; will try again)", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay *= 2
	}
	if err := credential.Promote(main, next, nc); err != nil {
		// The new key works and is registered; the files still hold the old pair, which is
		// still registered too. The next start resumes from the next files.
		return fail("storing the new credential", err)
	}
	a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK,
		Message: fmt.Sprintf("the agent now signs in with certificate %s (valid until %s)", newThumb, nc.Cert.NotAfter.UTC().Format(time.DateOnly))})
	a.log.Info("agent credential renewed", "credential", nc)

	// The old certificate stays on the app until it expires: certagent never removes a
	// credential that no person asked it to remove.
	a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK,
		Message: fmt.Sprintf("the agent's previous certificate %s stays on its app until it expires on %s; remove it in the portal if you wish", curThumb, cur.Cert.NotAfter.UTC().Format(time.DateOnly))})
	return nil
}

func hasThumb(creds []certs.KeyCredential, thumb string) bool {
	for _, c := range creds {
		if c.Thumbprint() == thumb {
			return true
		}
	}
	return false
}
