package target

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/metrics"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// Status is the target's part of the agent's status: what the API shows of it, and its
// problems.
type Status struct {
	apitype.TargetStatus
	Problems []health.Problem
}

// Status returns the target's status at now, from memory and the store.
func (t *Target) Status(ctx context.Context, now time.Time) Status {
	snap := t.engine.Snapshot()
	approval := "auto"
	if t.cfg.ManualApproval {
		approval = "manual"
	}
	s := Status{TargetStatus: apitype.TargetStatus{
		Name:       t.cfg.Name,
		TenantID:   t.cfg.TenantID,
		Target:     apitype.Target{Name: t.cfg.Name, AppID: t.cfg.AppID, ObjectID: snap.App.ObjectID, DisplayName: snap.App.DisplayName},
		DropFolder: t.intake.Dir(),
		Approval:   approval,
		Rotations:  map[string]int{},
		LastSync:   syncStatus(snap),
		Retire: apitype.RetireStatus{Enabled: t.cfg.Retire.Enabled, DryRun: t.cfg.Retire.DryRun,
			AfterDays: int(t.cfg.Retire.After / (24 * time.Hour))},
	}}
	if t.cfg.Retire.Enabled && t.cfg.Retire.DryRun && !snap.SyncedAt.IsZero() {
		cands, err := t.engine.RetireCandidates(ctx, snap.App, now)
		if err == nil && len(cands) > 0 {
			var what []string
			for _, c := range cands {
				s.Retire.WouldRetire = append(s.Retire.WouldRetire, t.certificate(c.Credential, now, nil))
				what = append(what, fmt.Sprintf("%s (thumbprint %s, %q)", c.Credential.KeyID, c.Credential.Thumbprint(), c.Credential.DisplayName))
			}
			s.Problems = append(s.Problems, health.Problem{Code: health.RetireDryRun, Severity: health.Info,
				Message: fmt.Sprintf("retire.dry_run: these certificates would be removed from app %s now: %s; set retire.dry_run to false to remove them, or retire them by hand", t.cfg.AppID, strings.Join(what, ", "))})
		}
	}
	// Count every rotation, and keep (shared, read only) those a person has to act on, for
	// problems: scanning copies nothing, where listing cloned the whole history on every
	// request.
	var rs []*rotation.Rotation
	err := t.engine.Scan(ctx, func(r *rotation.Rotation) {
		s.Rotations[string(r.State)]++
		if needsPerson(r.State) {
			rs = append(rs, r)
		}
	})
	if err != nil {
		s.Problems = append(s.Problems, health.Problem{Code: health.StoreError, Severity: health.Critical,
			Message: "the agent cannot read its store: " + err.Error()})
	}
	if !snap.SyncedAt.IsZero() {
		s.Certificates.Count = len(snap.App.KeyCredentials)
		var next *certs.KeyCredential
		for i, c := range snap.App.KeyCredentials {
			if next == nil || c.EndDateTime.Before(next.EndDateTime) {
				next = &snap.App.KeyCredentials[i]
			}
		}
		if next != nil {
			end := next.EndDateTime.UTC()
			days := certs.DaysBetween(now, end)
			s.Certificates.NextExpiry, s.Certificates.DaysLeft = &end, &days
			s.Certificates.NextExpiryThumbprint, s.Certificates.NextExpiryDisplayName = next.Thumbprint(), next.DisplayName
		}
	}
	s.Problems = append(s.Problems, t.problems(now, snap, rs)...)
	for _, p := range t.intake.Problems() {
		s.Problems = append(s.Problems, p.Health())
	}
	if v := t.cfg.Provenance; v.Required() || len(v.Keys()) > 0 {
		ps := &apitype.ProvenanceStatus{Required: v.Required(), Keys: []apitype.PinnedKey{}, WaitSeconds: int64(t.cfg.Intake.CertificateWait / time.Second)}
		for _, k := range v.Keys() {
			ps.Keys = append(ps.Keys, apitype.PinnedKey{Name: k.Label, Algorithm: k.Algorithm, Fingerprint: k.Fingerprint})
		}
		s.Provenance = ps
	}
	if t.pull != nil {
		src := t.pull.Status()
		s.Source = &src
		s.Problems = append(s.Problems, t.pull.Problems(t.cfg.Name)...)
	}
	return s
}

func syncStatus(snap rotation.Snapshot) apitype.SyncStatus {
	var st apitype.SyncStatus
	if !snap.SyncedAt.IsZero() {
		at := snap.SyncedAt.UTC()
		st.LastSuccess, st.At, st.OK = &at, &at, true
	}
	if snap.Err != nil && snap.ErrAt.After(snap.SyncedAt) {
		at := snap.ErrAt.UTC()
		st.At, st.OK, st.Error = &at, false, snap.Err
	}
	return st
}

// needsPerson reports whether a rotation in state st is one of problems' (a person has to
// approve, confirm, retry or reject it).
func needsPerson(st rotation.State) bool {
	return st == rotation.StateFailed || st == rotation.StatePendingApproval || st == rotation.StateApplied
}

// problems lists what needs a person about the app and its rotations; rs holds the
// rotations in the states needsPerson names (others are ignored), oldest first.
func (t *Target) problems(now time.Time, snap rotation.Snapshot, rs []*rotation.Rotation) []health.Problem {
	var ps []health.Problem
	add := func(code string, sev health.Severity, format string, args ...any) {
		ps = append(ps, health.Problem{Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	app := t.cfg.AppID
	if snap.App.DisplayName != "" {
		app = fmt.Sprintf("%q (%s)", snap.App.DisplayName, t.cfg.AppID)
	}
	drop := t.intake.Dir()

	if snap.Err != nil && snap.ErrAt.After(snap.SyncedAt) {
		sev := health.Warning
		switch snap.Err.Code {
		case certs.AuthFailed, certs.GraphDenied, certs.AppNotFound:
			sev = health.Critical // will not fix itself
		}
		add(health.GraphUnreachable, sev, "the last read of app %s from Microsoft Graph failed at %s: %s (%s)",
			app, snap.ErrAt.UTC().Format(time.RFC3339), snap.Err.Message, snap.Err.Code)
	}

	if !snap.SyncedAt.IsZero() {
		if len(snap.App.KeyCredentials) == 0 {
			add(health.NoCertificates, health.Critical, "app %s holds no certificate: the provider cannot sign in; drop the provider's certificate into %s", app, drop)
		} else {
			// What matters is the newest certificate: an old one expiring is fine once its
			// successor is on the app.
			newest := snap.App.KeyCredentials[0]
			for _, c := range snap.App.KeyCredentials[1:] {
				if c.EndDateTime.After(newest.EndDateTime) {
					newest = c
				}
			}
			days := certs.DaysBetween(now, newest.EndDateTime)
			switch {
			case !newest.EndDateTime.After(now):
				add(health.CertificateExpired, health.Critical,
					"every certificate on app %s has expired (the newest on %s): backups cannot sign in; ask the provider for a new certificate and drop it into %s",
					app, newest.EndDateTime.UTC().Format(time.DateOnly), drop)
			case newest.EndDateTime.Sub(now) < t.cfg.ExpiryWarning:
				sev := health.Warning
				if days < 7 {
					sev = health.Critical
				}
				add(health.CertificateExpiring, sev,
					"the newest certificate on app %s (thumbprint %s) expires in %d days, on %s; ask the provider for the next one and drop it into %s",
					app, newest.Thumbprint(), days, newest.EndDateTime.UTC().Format(time.DateOnly), drop)
			}
		}
	}

	for _, r := range rs {
		who := r.Certificate.CommonName() + " (" + r.Certificate.Thumbprint + ")"
		switch r.State {
		case rotation.StateFailed:
			msg, code := "", certs.Code("")
			if r.Reason != nil {
				msg, code = r.Reason.Message, r.Reason.Code
			}
			if code == certs.AppFull {
				add(health.AppFull, health.Critical,
					"app %s is full: Entra allows no more credentials on it, so rotation %s for %s cannot be written; remove (retire) old, expired certificates from the app, then retry the rotation", app, r.ID, who)
				continue
			}
			add(health.RotationFailed, health.Critical,
				"rotation %s for %s failed (%s): %s; fix the cause, then retry it, or reject it", r.ID, who, code, msg)
		case rotation.StatePendingApproval:
			add(health.AwaitingApproval, health.Warning,
				"rotation %s for %s waits for approval; approve it to upload the certificate, or reject it", r.ID, who)
		case rotation.StateApplied:
			add(health.AwaitingConfirmation, health.Info,
				"certificate %s is on the app since %s; tell the provider, then confirm rotation %s", who, r.UpdatedAt.UTC().Format(time.DateOnly), r.ID)
		}
	}
	return ps
}

// RotationCounts counts rotations by state, for the metrics.
func (t *Target) RotationCounts() map[string]int {
	m := map[string]int{}
	for _, st := range rotation.States {
		m[string(st)] = 0
	}
	t.engine.Scan(context.Background(), func(r *rotation.Rotation) { m[string(r.State)]++ })
	return m
}

// CertificateExpiries lists the app's certificates from the last read, for the metrics.
func (t *Target) CertificateExpiries() []metrics.CertExpiry {
	snap := t.engine.Snapshot()
	out := make([]metrics.CertExpiry, 0, len(snap.App.KeyCredentials))
	for _, c := range snap.App.KeyCredentials {
		out = append(out, metrics.CertExpiry{Target: t.cfg.Name, Thumbprint: c.Thumbprint(), KeyID: c.KeyID, NotAfter: c.EndDateTime})
	}
	return out
}

// LastSync returns when the app was last read successfully.
func (t *Target) LastSync() time.Time { return t.engine.Snapshot().SyncedAt }
