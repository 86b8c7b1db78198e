package agent

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/metrics"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

var _ api.Backend = (*Agent)(nil)

// refreshEvery is how often ?refresh=true may read Graph.
const refreshEvery = 5 * time.Second

// Status implements api.Backend. Everything comes from memory and the store.
func (a *Agent) Status(ctx context.Context) apitype.Status {
	now := a.now().UTC()
	snap := a.engine.Snapshot()
	s := apitype.Status{
		Version:       a.version,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: int64(now.Sub(a.started) / time.Second),
		TenantID:      a.cfg.TenantID,
		Target:        apitype.Target{AppID: a.cfg.Target.AppID, ObjectID: snap.App.ObjectID, DisplayName: snap.App.DisplayName},
		DropFolder:    a.cfg.DropFolder,
		Approval:      a.cfg.Policy.Approval,
		Rotations:     map[string]int{},
		Problems:      []apitype.StatusProblem{},
	}
	for _, st := range rotation.States {
		s.Rotations[string(st)] = 0
	}
	rs, err := a.store.List(ctx, rotation.Filter{})
	if err != nil {
		s.Problems = append(s.Problems, apitype.StatusProblem{Code: "store_error", Severity: apitype.SeverityCritical,
			Message: "the agent cannot read its store: " + err.Error()})
	}
	for _, r := range rs {
		s.Rotations[string(r.State)]++
	}

	// The target app's certificates.
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
	s.LastSync = a.syncStatus(snap)
	if c := a.cred.Credential(); c != nil {
		s.Credential = &apitype.CredentialSummary{
			Thumbprint:    certs.ThumbprintSHA1(c.Cert.Raw),
			NotAfter:      c.Cert.NotAfter.UTC(),
			DaysRemaining: certs.DaysBetween(now, c.Cert.NotAfter),
		}
	}
	s.Problems = append(s.Problems, a.problems(now, snap, rs)...)
	apitype.SortProblems(s.Problems)
	return s
}

func (a *Agent) syncStatus(snap rotation.Snapshot) apitype.SyncStatus {
	var st apitype.SyncStatus
	if !snap.SyncedAt.IsZero() {
		t := snap.SyncedAt.UTC()
		st.LastSuccess, st.At, st.OK = &t, &t, true
	}
	if snap.Err != nil && snap.ErrAt.After(snap.SyncedAt) {
		t := snap.ErrAt.UTC()
		st.At, st.OK, st.Error = &t, false, snap.Err
	}
	return st
}

// problems lists what needs a person.
func (a *Agent) problems(now time.Time, snap rotation.Snapshot, rs []rotation.Rotation) []apitype.StatusProblem {
	var ps []apitype.StatusProblem
	add := func(code string, sev apitype.Severity, format string, args ...any) {
		ps = append(ps, apitype.StatusProblem{Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	app := a.cfg.Target.AppID
	if snap.App.DisplayName != "" {
		app = fmt.Sprintf("%q (%s)", snap.App.DisplayName, a.cfg.Target.AppID)
	}

	if snap.Err != nil && snap.ErrAt.After(snap.SyncedAt) {
		sev := apitype.SeverityWarning
		switch snap.Err.Code {
		case certs.AuthFailed, certs.GraphDenied, certs.AppNotFound:
			sev = apitype.SeverityCritical // will not fix itself
		}
		add(apitype.ProblemGraphUnreachable, sev, "the last read of app %s from Microsoft Graph failed at %s: %s (%s)",
			app, snap.ErrAt.UTC().Format(time.RFC3339), snap.Err.Message, snap.Err.Code)
	}

	if !snap.SyncedAt.IsZero() {
		warn := a.cfg.Monitor.ExpiryWarning.Duration()
		if len(snap.App.KeyCredentials) == 0 {
			add(apitype.ProblemNoCertificates, apitype.SeverityCritical, "app %s holds no certificate: the provider cannot sign in; drop the provider's certificate into %s", app, a.cfg.DropFolder)
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
				add(apitype.ProblemCertificateExpired, apitype.SeverityCritical,
					"every certificate on app %s has expired (the newest on %s): backups cannot sign in; ask the provider for a new certificate and drop it into %s",
					app, newest.EndDateTime.UTC().Format(time.DateOnly), a.cfg.DropFolder)
			case newest.EndDateTime.Sub(now) < warn:
				sev := apitype.SeverityWarning
				if days < 7 {
					sev = apitype.SeverityCritical
				}
				add(apitype.ProblemCertificateExpiring, sev,
					"the newest certificate on app %s (thumbprint %s) expires in %d days, on %s; ask the provider for the next one and drop it into %s",
					app, newest.Thumbprint(), days, newest.EndDateTime.UTC().Format(time.DateOnly), a.cfg.DropFolder)
			}
		}
	}

	if c := a.cred.Credential(); c != nil {
		left := c.Cert.NotAfter.Sub(now)
		if left < a.cfg.Auth.RenewBefore.Duration() {
			sev := apitype.SeverityWarning
			if left < 7*24*time.Hour {
				sev = apitype.SeverityCritical
			}
			add(apitype.ProblemAgentCredentialExpiring, sev,
				"the agent's own sign-in certificate (thumbprint %s) expires in %d days, on %s, and was not renewed; run `certagent credential rotate`",
				certs.ThumbprintSHA1(c.Cert.Raw), certs.DaysBetween(now, c.Cert.NotAfter), c.Cert.NotAfter.UTC().Format(time.DateOnly))
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
			add(apitype.ProblemRotationFailed, apitype.SeverityCritical,
				"rotation %s for %s failed (%s): %s; fix the cause, then retry it, or reject it", r.ID, who, code, msg)
		case rotation.StatePendingApproval:
			add(apitype.ProblemAwaitingApproval, apitype.SeverityWarning,
				"rotation %s for %s waits for approval; approve it to upload the certificate, or reject it", r.ID, who)
		case rotation.StateApplied:
			add(apitype.ProblemAwaitingConfirmation, apitype.SeverityInfo,
				"certificate %s is on the app since %s; tell the provider, then confirm rotation %s", who, r.UpdatedAt.UTC().Format(time.DateOnly), r.ID)
		}
	}
	return ps
}

// Certificates implements api.Backend.
func (a *Agent) Certificates(ctx context.Context, refresh bool) (apitype.CertificateList, error) {
	if refresh {
		a.refreshMu.Lock()
		wait := refreshEvery - a.now().Sub(a.lastRefresh)
		if wait > 0 {
			a.refreshMu.Unlock()
			return apitype.CertificateList{}, &api.Error{Status: http.StatusTooManyRequests, Code: apitype.CodeRateLimited,
				Detail: fmt.Sprintf("the certificates were refreshed from Graph moments ago; try again in %s", wait.Round(time.Second)), RetryAfter: wait}
		}
		a.lastRefresh = a.now()
		a.refreshMu.Unlock()
		if _, err := a.engine.Sync(ctx); err != nil {
			reason := rotation.ErrorReason(err)
			return apitype.CertificateList{}, &api.Error{Status: http.StatusServiceUnavailable, Code: apitype.CodeUnavailable,
				Detail: fmt.Sprintf("reading the app from Microsoft Graph failed: %s (%s)", reason.Message, reason.Code), Err: err}
		}
	}
	snap := a.engine.Snapshot()
	list := apitype.CertificateList{Items: []apitype.Certificate{}}
	if snap.SyncedAt.IsZero() {
		return list, nil
	}
	t := snap.SyncedAt.UTC()
	list.SyncedAt = &t
	byKey := a.agentKeyIDs(ctx)
	now := a.now()
	for _, c := range snap.App.KeyCredentials {
		rid, mine := byKey[strings.ToLower(c.KeyID)]
		list.Items = append(list.Items, apitype.Certificate{
			KeyID:         c.KeyID,
			Thumbprint:    c.Thumbprint(),
			DisplayName:   c.DisplayName,
			StartDateTime: c.StartDateTime.UTC(),
			EndDateTime:   c.EndDateTime.UTC(),
			DaysRemaining: certs.DaysBetween(now, c.EndDateTime),
			AddedByAgent:  mine,
			RotationID:    rid,
		})
	}
	sort.SliceStable(list.Items, func(i, j int) bool { return list.Items[i].EndDateTime.Before(list.Items[j].EndDateTime) })
	return list, nil
}

// agentKeyIDs maps the keyIds certagent wrote (lower case) to their rotation.
func (a *Agent) agentKeyIDs(ctx context.Context) map[string]string {
	rs, err := a.store.List(ctx, rotation.Filter{})
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, r := range rs {
		if r.KeyID != "" && !r.AlreadyPresent {
			m[strings.ToLower(r.KeyID)] = r.ID
		}
	}
	return m
}

// Rotations implements api.Backend.
func (a *Agent) Rotations(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	return a.engine.List(ctx, f)
}

// Rotation implements api.Backend.
func (a *Agent) Rotation(ctx context.Context, id string) (rotation.Rotation, error) {
	return a.engine.Get(ctx, id)
}

// Act implements api.Backend.
func (a *Agent) Act(ctx context.Context, id string, action api.Action, actor, note string) (rotation.Rotation, error) {
	return a.engine.Act(ctx, id, string(action), actor, note)
}

// Scan implements api.Backend.
func (a *Agent) Scan(context.Context) { a.intake.Scan() }

// Credential implements api.Backend.
func (a *Agent) Credential(context.Context) (apitype.Credential, error) {
	c := a.cred.Credential()
	if c == nil {
		return apitype.Credential{}, &api.Error{Status: http.StatusNotFound, Code: apitype.CodeNotFound, Detail: "the agent has no sign-in credential yet"}
	}
	return apitype.Credential{
		Method:        config.AuthCertificate,
		ClientID:      a.cfg.Auth.ClientID,
		Thumbprint:    certs.ThumbprintSHA1(c.Cert.Raw),
		Subject:       c.Cert.Subject.String(),
		NotBefore:     c.Cert.NotBefore.UTC(),
		NotAfter:      c.Cert.NotAfter.UTC(),
		NextRenewal:   c.Cert.NotAfter.Add(-a.cfg.Auth.RenewBefore.Duration()).UTC(),
		DaysRemaining: certs.DaysBetween(a.now(), c.Cert.NotAfter),
	}, nil
}

// Audit implements api.Backend.
func (a *Agent) Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	return a.store.Audit(ctx, q)
}

// Ready implements api.Backend.
func (a *Agent) Ready(context.Context) error {
	select {
	case <-a.running:
		return nil
	default:
		return &api.Error{Status: http.StatusServiceUnavailable, Code: apitype.CodeNotReady, Detail: "the agent is starting"}
	}
}

// rotationCounts feeds the metrics.
func (a *Agent) rotationCounts() map[string]int {
	m := map[string]int{}
	for _, st := range rotation.States {
		m[string(st)] = 0
	}
	rs, err := a.store.List(context.Background(), rotation.Filter{})
	if err != nil {
		return m
	}
	for _, r := range rs {
		m[string(r.State)]++
	}
	return m
}

// certificateExpiries feeds the metrics from the last read of the target app.
func (a *Agent) certificateExpiries() []metrics.CertExpiry {
	snap := a.engine.Snapshot()
	out := make([]metrics.CertExpiry, 0, len(snap.App.KeyCredentials))
	for _, c := range snap.App.KeyCredentials {
		out = append(out, metrics.CertExpiry{Thumbprint: c.Thumbprint(), KeyID: c.KeyID, NotAfter: c.EndDateTime})
	}
	return out
}
