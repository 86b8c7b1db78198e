package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/metrics"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/agent/target"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

// The API's roles, each served by the parts that own the data; these adapters only pick the
// target, gather and convert.

var (
	_ api.StatusSource      = statusOf{}
	_ api.CertificateSource = certificatesOf{}
	_ api.RotationService   = rotationsOf{}
	_ api.DropFolder        = dropFolderOf{}
	_ api.CredentialService = credentialOf{}
	_ api.AuditLog          = (*store.Cached)(nil)
)

// pick returns the targets a request names: the one called name, or all for "".
func (a *Agent) pick(name string) ([]*target.Target, error) {
	if name == "" {
		return a.targets, nil
	}
	if t := a.router.Target(name); t != nil {
		return []*target.Target{t}, nil
	}
	var names []string
	for _, t := range a.targets {
		names = append(names, t.Name())
	}
	return nil, &health.NotFoundError{What: "no target is named " + name + "; the targets are " + strings.Join(names, ", ")}
}

// targetOfApp returns the target whose app is appID ("" the first, for rotations stored
// before targets had names), or nil.
func (a *Agent) targetOfApp(appID string) *target.Target {
	if appID == "" {
		return a.targets[0]
	}
	for _, t := range a.targets {
		if strings.EqualFold(t.AppID(), appID) {
			return t
		}
	}
	return nil
}

// withTargetName fills r.Target.Name from the target that owns its app.
func (a *Agent) withTargetName(r rotation.Rotation) rotation.Rotation {
	if t := a.targetOfApp(r.Target.AppID); t != nil {
		r.Target.Name = t.Name()
	}
	return r
}

// statusOf is the agent's status: every target's part, the credential's, and the agent's own.
type statusOf struct{ a *Agent }

func (s statusOf) Status(ctx context.Context) apitype.Status {
	a := s.a
	now := a.now().UTC()
	st := apitype.Status{
		Version:       a.version,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: int64(now.Sub(a.started) / time.Second),
		TenantID:      a.cfg.TenantID,
		Approval:      a.cfg.Policy.Approval,
		Rotations:     map[string]int{},
		Problems:      []apitype.StatusProblem{},
		Targets:       []apitype.TargetStatus{},
	}
	for i, t := range a.targets {
		ts := t.Status(ctx, now)
		if i == 0 {
			st.Target, st.DropFolder, st.Approval = ts.Target, ts.DropFolder, ts.Approval
			st.Certificates, st.LastSync = ts.Certificates, ts.LastSync
		}
		for k, n := range ts.Rotations {
			st.Rotations[k] += n
		}
		st.Targets = append(st.Targets, ts.TargetStatus)
		for _, p := range ts.Problems {
			sp := apitype.StatusProblem{Code: p.Code, Severity: p.Severity, Message: p.Message}
			if len(a.targets) > 1 {
				sp.Target = t.Name()
			}
			st.Problems = append(st.Problems, sp)
		}
	}
	if len(a.targets) > 1 {
		st.DropFolder = a.cfg.DropFolder
		if a.top != nil {
			for _, p := range a.top.Problems() {
				hp := p.Health()
				st.Problems = append(st.Problems, apitype.StatusProblem{Code: hp.Code, Severity: hp.Severity, Message: hp.Message})
			}
		}
	}
	if c := a.cred.Credential(); c != nil {
		st.Credential = &apitype.CredentialSummary{
			Thumbprint:    certs.ThumbprintSHA1(c.Cert.Raw),
			NotAfter:      c.Cert.NotAfter.UTC(),
			DaysRemaining: certs.DaysBetween(now, c.Cert.NotAfter),
		}
	}
	problems := append(a.renewer.Problems(now), a.notifier.Problems(now)...)
	if err := a.store.TrailError(); err != nil {
		// The store keeps working; its copy for log shippers and for store rebuild does not.
		problems = append(problems, health.Problem{Code: health.AuditTrailUnwritable, Severity: health.Warning,
			Message: err.Error() + "; the store keeps the audit log; `certagent store check` (with the agent stopped) tells more"})
	}
	for _, p := range problems {
		st.Problems = append(st.Problems, apitype.StatusProblem{Code: p.Code, Severity: p.Severity, Message: p.Message})
	}
	return st
}

func (s statusOf) Ready(ctx context.Context) error {
	select {
	case <-s.a.running:
	default:
		return &health.NotReadyError{}
	}
	if s.a.top != nil {
		if err := s.a.top.Ready(); err != nil {
			return err
		}
	}
	// A sign-in or permission failure (AADSTS700027, 403, a missing app) will not fix itself:
	// the agent cannot do its work until a person acts. A transient one keeps it ready.
	var ps []health.Problem
	for _, t := range s.a.targets {
		if err := t.Ready(); err != nil {
			return err
		}
		for _, p := range t.Status(ctx, s.a.now()).Problems {
			if p.Code == health.GraphUnreachable && p.Severity == health.Critical {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		return &health.NotReadyError{Problems: ps}
	}
	return nil
}

// certificatesOf is the targets' certificates, and retiring them.
type certificatesOf struct{ a *Agent }

func (c certificatesOf) Certificates(ctx context.Context, name string, refresh bool) (apitype.CertificateList, error) {
	ts, err := c.a.pick(name)
	if err != nil {
		return apitype.CertificateList{}, err
	}
	out := apitype.CertificateList{Items: []apitype.Certificate{}}
	for _, t := range ts {
		l, err := t.Certificates(ctx, refresh)
		if err != nil {
			return apitype.CertificateList{}, err
		}
		out.Items = append(out.Items, l.Items...)
		if l.SyncedAt != nil && (out.SyncedAt == nil || l.SyncedAt.Before(*out.SyncedAt)) {
			out.SyncedAt = l.SyncedAt // the oldest read among them
		}
	}
	return out, nil
}

func (c certificatesOf) Retire(ctx context.Context, name, keyID, actor, note string) (apitype.Certificate, error) {
	ts, err := c.a.pick(name)
	if err != nil {
		return apitype.Certificate{}, err
	}
	if name == "" && len(ts) > 1 {
		// The target whose app holds the key, as last read.
		ts = slices.DeleteFunc(slices.Clone(ts), func(t *target.Target) bool { return !t.Holds(keyID) })
		if len(ts) == 0 {
			return apitype.Certificate{}, &health.NotFoundError{What: "no target's app holds a credential with keyId " + keyID + " (as last read); name the target with ?target="}
		}
	}
	why := "retired by hand"
	if note != "" {
		why += ": " + note
	}
	return ts[0].Retire(ctx, keyID, actor, why)
}

// rotationsOf is the targets' rotations, through their engines and the router.
type rotationsOf struct{ a *Agent }

func (r rotationsOf) Rotations(ctx context.Context, f rotation.Filter, name string) ([]rotation.Rotation, error) {
	ts, err := r.a.pick(name)
	if err != nil {
		return nil, err
	}
	var out []rotation.Rotation
	for _, t := range ts {
		rs, err := t.Engine().List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range rs {
			out = append(out, r.a.withTargetName(x))
		}
	}
	slices.SortStableFunc(out, func(x, y rotation.Rotation) int { return x.CreatedAt.Compare(y.CreatedAt) })
	return out, nil
}

// List is every target's rotations, for the notifier.
func (r rotationsOf) List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	return r.Rotations(ctx, f, "")
}

func (r rotationsOf) Rotation(ctx context.Context, id string) (rotation.Rotation, error) {
	x, err := r.a.store.Get(ctx, id)
	if err != nil {
		return x, err
	}
	return r.a.withTargetName(x), nil
}

func (r rotationsOf) Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error) {
	x, err := r.a.store.Get(ctx, id)
	if err != nil {
		return x, err
	}
	t := r.a.targetOfApp(x.Target.AppID)
	if t == nil {
		return x, &health.NotFoundError{What: "rotation " + id + " belongs to app " + x.Target.AppID + ", which is no target any more"}
	}
	x, err = t.Engine().Execute(ctx, id, cmd, actor, note)
	return r.a.withTargetName(x), err
}

func (r rotationsOf) Submit(ctx context.Context, s api.Submission) (api.SubmitResult, error) {
	res, err := r.a.router.SubmitAPI(ctx, s.Data, s.Signature, s.Target, s.FileName, s.Actor)
	var ute *target.UnknownTargetError
	if errors.As(err, &ute) {
		return api.SubmitResult{}, &health.NotFoundError{What: ute.Error()}
	}
	if err != nil {
		return api.SubmitResult{}, err
	}
	// The first target that took it answers; a refusal only when every one refused.
	for _, x := range res {
		if x.Verdict.Accepted {
			return api.SubmitResult{Rotation: r.a.withTargetName(x.Rotation), Created: x.Created, Certificate: x.Verdict.Certificate}, nil
		}
	}
	v := res[0].Verdict
	return api.SubmitResult{Rejected: v.Reason, Certificate: v.Certificate}, nil
}

// dropFolderOf is every drop folder the agent watches.
type dropFolderOf struct{ a *Agent }

func (d dropFolderOf) Scan(ctx context.Context) error {
	if d.a.top != nil {
		if err := d.a.top.Ready(); err != nil {
			return err
		}
		d.a.top.Scan()
	}
	for _, t := range d.a.targets {
		if err := t.Scan(ctx); err != nil {
			return err
		}
	}
	return nil
}

// credentialOf is the agent's own sign-in credential and its renewal.
type credentialOf struct{ a *Agent }

func (c credentialOf) Credential(context.Context) (apitype.Credential, error) {
	a := c.a
	cr := a.cred.Credential()
	if cr == nil {
		return apitype.Credential{}, &health.NotFoundError{What: "the agent has no sign-in credential yet"}
	}
	return apitype.Credential{
		Method:        config.AuthCertificate,
		ClientID:      a.cfg.Auth.ClientID,
		Thumbprint:    certs.ThumbprintSHA1(cr.Cert.Raw),
		Subject:       cr.Cert.Subject.String(),
		NotBefore:     cr.Cert.NotBefore.UTC(),
		NotAfter:      cr.Cert.NotAfter.UTC(),
		NextRenewal:   a.renewer.NextRenewal().UTC(),
		DaysRemaining: certs.DaysBetween(a.now(), cr.Cert.NotAfter),
	}, nil
}

func (c credentialOf) RotateCredential(_ context.Context, actor string) error {
	return c.a.renewer.Start(actor)
}

// rotationCounts counts every target's rotations by state, for the metrics.
func (a *Agent) rotationCounts() map[string]map[string]int {
	m := map[string]map[string]int{}
	for _, t := range a.targets {
		m[t.Name()] = t.RotationCounts()
	}
	return m
}

// certificateExpiries lists every target's certificates, for the metrics.
func (a *Agent) certificateExpiries() []metrics.CertExpiry {
	var out []metrics.CertExpiry
	for _, t := range a.targets {
		out = append(out, t.CertificateExpiries()...)
	}
	return out
}

// lastSyncs is each target's last successful read of its app.
func (a *Agent) lastSyncs() map[string]time.Time {
	m := map[string]time.Time{}
	for _, t := range a.targets {
		m[t.Name()] = t.LastSync()
	}
	return m
}
