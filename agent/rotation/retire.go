package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Retiring removes old certificates from the app once a newer one is confirmed, by the same
// read-modify-write and read-back as adding. It is opt-in per target, and guarded so that it
// can never break the provider's sign-in:
//
//   - never the last valid certificate on the app;
//   - never one the target's policy does not name as the provider's (its allow-lists);
//   - never one the agent first saw on the app less than RetirePolicy.After ago;
//   - never the certificate of a rotation that is not finished;
//   - automatically only once a newer certificate of the policy has been confirmed (the
//     provider was told) for RetirePolicy.After.

// RetirePolicy says whether and when the engine retires old certificates.
type RetirePolicy struct {
	// Enabled turns automatic retiring on. A person may retire one by hand (Engine.Retire)
	// whether or not it is on; the same guards apply.
	Enabled bool
	// After is how long a newer certificate must have been confirmed, and how long ago the
	// agent must have first seen a certificate on the app, before it is retired (default 14
	// days).
	After time.Duration
	// DryRun only reports what would be retired (in the status), removing nothing.
	DryRun bool
	// Names reports whether the policy names a certificate as the provider's. Required for
	// retiring: nil retires nothing.
	Names func(c *x509.Certificate) bool
}

// Retirement is a certificate the engine would retire, or why it keeps one.
type Retirement struct {
	Credential certs.KeyCredential
	// Newer is the confirmed rotation that supersedes it (automatic retiring).
	Newer string
}

// ErrRetireRefused wraps a retire request that a guard refused (a *RetireError says why).
var ErrRetireRefused = errors.New("retiring refused")

// RetireError says why a retire request was refused.
type RetireError struct {
	KeyID string
	Why   string
}

func (e *RetireError) Error() string {
	return fmt.Sprintf("not retiring credential %s: %s", e.KeyID, e.Why)
}

// Unwrap lets errors.Is(err, ErrRetireRefused) match.
func (e *RetireError) Unwrap() error { return ErrRetireRefused }

// retireGuard checks whether c may be removed from app at now, and says why not.
func (e *Engine) retireGuard(app certs.Application, c certs.KeyCredential, rs []Rotation, ledger *Ledger, now time.Time) string {
	p := e.cfg.Retire
	if p.Names == nil {
		return "the target has no policy naming the provider's certificates (policy.allowed_subjects, allowed_issuers or allowed_thumbprints)"
	}
	if len(c.Key) == 0 {
		return "Graph did not return its certificate, so the policy cannot be checked"
	}
	x, err := x509.ParseCertificate(c.Key)
	if err != nil {
		return "its certificate does not parse"
	}
	if !p.Names(x) {
		return "the target's policy does not name it as the provider's certificate"
	}
	// A credential being retired may be retired again: the agent stopped before its write.
	if e, ok := ledger.Keys[lower(c.KeyID)]; !ok || e.State != KeyLive && e.State != KeyRetiring || now.Sub(e.Seen()) < p.After {
		return fmt.Sprintf("it was first seen on the app less than %s ago", p.After)
	}
	for _, r := range rs {
		if strings.EqualFold(r.KeyID, c.KeyID) && r.State != StateConfirmed {
			return fmt.Sprintf("it belongs to rotation %s, which is %s", r.ID, r.State)
		}
	}
	valid := 0
	for _, k := range app.KeyCredentials {
		if !strings.EqualFold(k.KeyID, c.KeyID) && k.EndDateTime.After(now) && !k.StartDateTime.After(now) {
			valid++
		}
	}
	if valid == 0 {
		return "it would leave the app without a valid certificate"
	}
	return ""
}

// RetireCandidates returns the certificates automatic retiring would remove from app now: the
// older certificates the policy names, superseded by a newer one confirmed for at least
// RetirePolicy.After, that pass every guard.
func (e *Engine) RetireCandidates(ctx context.Context, app certs.Application, now time.Time) ([]Retirement, error) {
	p := e.cfg.Retire
	if p.Names == nil || len(app.KeyCredentials) == 0 {
		return nil, nil
	}
	rs, err := e.List(ctx, Filter{State: StateConfirmed})
	if err != nil {
		return nil, err
	}
	// The newest certificate confirmed long enough ago that is still on the app.
	var newer *Rotation
	for i, r := range rs {
		if indexKeyID(app.KeyCredentials, r.KeyID) < 0 || now.Sub(confirmedAt(r)) < p.After {
			continue
		}
		if newer == nil || r.Certificate.NotAfter.After(newer.Certificate.NotAfter) {
			newer = &rs[i]
		}
	}
	if newer == nil {
		return nil, nil
	}
	all, err := e.List(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	ledger := e.ledger()
	var out []Retirement
	left := app
	for _, c := range app.KeyCredentials {
		if strings.EqualFold(c.KeyID, newer.KeyID) || !c.EndDateTime.Before(newer.Certificate.NotAfter) {
			continue // the newer certificate itself, or one that is not older
		}
		if why := e.retireGuard(left, c, all, &ledger, now); why != "" {
			continue
		}
		out = append(out, Retirement{Credential: c, Newer: newer.ID})
		left.KeyCredentials = slices.DeleteFunc(slices.Clone(left.KeyCredentials), func(k certs.KeyCredential) bool { return strings.EqualFold(k.KeyID, c.KeyID) })
	}
	return out, nil
}

// confirmedAt returns when r entered StateConfirmed (its last update when the history does
// not tell).
func confirmedAt(r Rotation) time.Time {
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i].State == StateConfirmed {
			return r.History[i].At
		}
	}
	return r.UpdatedAt
}

// Retire removes the credential keyID from the app on behalf of actor, by read-modify-write
// and read-back, after checking every guard against a settled view of the app. The audit
// entry is written before the write. A guard's refusal is a *RetireError (ErrRetireRefused);
// a credential already gone is not an error.
func (e *Engine) Retire(ctx context.Context, keyID, actor, why string) (certs.KeyCredential, error) {
	e.graphMu.Lock()
	defer e.graphMu.Unlock()
	ledger := e.ledger()
	defer func() { e.setLedger(ledger) }()
	rs, err := e.List(ctx, Filter{})
	if err != nil {
		return certs.KeyCredential{}, err
	}
	// A write under way finishes and is read back even if ctx ends (see addOnce).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.WriteTimeout)
	defer cancel()
	r := newViewReader(e.cfg.Graph, e.cfg.AppID, &ledger, e.cfg.Read)
	defer func() { e.recordChanges(ctx, r.changes) }()
	app, err := r.settle(wctx, r.opts.Confirm)
	if err != nil {
		return certs.KeyCredential{}, err
	}
	e.observe(app)
	i := indexKeyID(app.KeyCredentials, keyID)
	if i < 0 {
		return certs.KeyCredential{}, nil
	}
	c := app.KeyCredentials[i]
	if g := e.retireGuard(app, c, rs, &ledger, e.now()); g != "" {
		return c, &RetireError{KeyID: keyID, Why: g}
	}
	e.audit(ctx, AuditEntry{Action: ActionRetire, Actor: actor, Outcome: OutcomeOK, KeyID: c.KeyID,
		Message: fmt.Sprintf("retiring keyId %s (thumbprint %s, %q, valid until %s) from app %s: %s",
			c.KeyID, c.Thumbprint(), c.DisplayName, c.EndDateTime.UTC().Format(time.DateOnly), e.cfg.AppID, why)})
	// The removal is the agent's own: the ledger expects the credential to go, and a read
	// that still shows it is behind, not a reason to put it back.
	ledger.Retiring(c.KeyID, e.now())
	e.persistLedger(ledger)
	keep := make([]certs.KeyCredential, 0, len(app.KeyCredentials)-1)
	for _, k := range app.KeyCredentials {
		if !strings.EqualFold(k.KeyID, c.KeyID) {
			keep = append(keep, k.Clone())
		}
	}
	if err := e.cfg.Graph.Replace(wctx, app.ObjectID, keep); err != nil {
		e.audit(ctx, AuditEntry{Action: ActionRetire, Actor: actor, Outcome: OutcomeError, KeyID: c.KeyID, Code: ErrorReason(err).Code,
			Message: fmt.Sprintf("retiring keyId %s from app %s failed: %v", c.KeyID, e.cfg.AppID, err)})
		return c, err
	}
	// Read back until the credential is gone: a lagging replica may still show it.
	var after certs.Application
	delay := r.opts.ReadDelay
	for n := 0; ; n++ {
		if after, err = r.settle(wctx, 1); err != nil {
			return c, fmt.Errorf("reading back after retiring %s: %w", c.KeyID, err)
		}
		if indexKeyID(after.KeyCredentials, c.KeyID) < 0 {
			break
		}
		if n+1 >= r.opts.Reads {
			return c, &verifyError{transient: true, msg: fmt.Sprintf("credential %s is still visible on app %s after it was retired (%d reads)", c.KeyID, e.cfg.AppID, r.reads)}
		}
		if err := r.opts.Sleep(wctx, delay); err != nil {
			return c, err
		}
		delay = min(2*delay, maxReadDelay)
	}
	e.observe(after)
	// Retire reads back its own removal and audits it below, not as a late read-back.
	r.changes.Retired = slices.DeleteFunc(r.changes.Retired, func(k LedgerEntryID) bool { return strings.EqualFold(k.KeyID, c.KeyID) })
	if gone := absent(after.KeyCredentials, keyIDs(keep)); len(gone) > 0 {
		return c, &verifyError{msg: fmt.Sprintf("credentials %s were on app %s when it was written and are gone after it; something else changed the app at the same time", strings.Join(gone, ", "), e.cfg.AppID)}
	}
	ledger.Gone(c.KeyID, e.now())
	e.audit(ctx, AuditEntry{Action: ActionRetire, Actor: actor, Outcome: OutcomeOK, KeyID: c.KeyID,
		Message: fmt.Sprintf("retired keyId %s (thumbprint %s) from app %s; read back without it, with every other credential kept", c.KeyID, c.Thumbprint(), e.cfg.AppID)})
	e.log.Info("certificate retired", "app_id", e.cfg.AppID, "key_id", c.KeyID, "thumbprint", c.Thumbprint(), "actor", actor)
	return c, nil
}

// retireDue retires what automatic retiring allows now; called by the worker after a sync.
// A dry run only logs; the status lists the candidates (DryRunCandidates).
func (e *Engine) retireDue(ctx context.Context) {
	p := e.cfg.Retire
	if !p.Enabled || p.DryRun {
		return
	}
	snap := e.Snapshot()
	if snap.SyncedAt.IsZero() {
		return
	}
	cands, err := e.RetireCandidates(ctx, snap.App, e.now())
	if err != nil {
		e.log.Warn("finding certificates to retire", "err", err)
		return
	}
	for _, c := range cands {
		if ctx.Err() != nil {
			return
		}
		why := fmt.Sprintf("superseded by rotation %s, confirmed more than %s ago (retire.enabled)", c.Newer, p.After)
		if _, err := e.Retire(ctx, c.Credential.KeyID, ActorAgent, why); err != nil && !errors.Is(err, ErrRetireRefused) {
			e.log.Warn("retiring an old certificate failed; will try again", "key_id", c.Credential.KeyID, "err", err)
		}
	}
}
