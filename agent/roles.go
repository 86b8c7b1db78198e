package agent

import (
	"context"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/agent/target"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

// The API's roles, each served by the part that owns the data; these adapters only gather
// and convert.

var (
	_ api.StatusSource      = statusOf{}
	_ api.CertificateSource = (*target.Target)(nil)
	_ api.RotationService   = rotationsOf{}
	_ api.DropFolder        = (*target.Target)(nil)
	_ api.CredentialService = credentialOf{}
	_ api.AuditLog          = (*store.Cached)(nil)
)

// statusOf is the agent's status: the target's part, the credential's, and the agent's own.
type statusOf struct{ a *Agent }

func (s statusOf) Status(ctx context.Context) apitype.Status {
	a := s.a
	now := a.now().UTC()
	t := a.target.Status(ctx, now)
	st := apitype.Status{
		Version:       a.version,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: int64(now.Sub(a.started) / time.Second),
		TenantID:      a.cfg.TenantID,
		Target:        t.Target,
		DropFolder:    t.DropFolder,
		Approval:      a.cfg.Policy.Approval,
		Certificates:  t.Certificates,
		Rotations:     t.Rotations,
		LastSync:      t.LastSync,
		Problems:      []apitype.StatusProblem{},
	}
	if c := a.cred.Credential(); c != nil {
		st.Credential = &apitype.CredentialSummary{
			Thumbprint:    certs.ThumbprintSHA1(c.Cert.Raw),
			NotAfter:      c.Cert.NotAfter.UTC(),
			DaysRemaining: certs.DaysBetween(now, c.Cert.NotAfter),
		}
	}
	for _, p := range append(t.Problems, a.renewer.Problems(now)...) {
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
	if err := s.a.target.Ready(); err != nil {
		return err
	}
	// A sign-in or permission failure (AADSTS700027, 403, a missing app) will not fix itself:
	// the agent cannot do its work until a person acts. A transient one keeps it ready.
	var ps []health.Problem
	for _, p := range s.a.target.Status(ctx, s.a.now()).Problems {
		if p.Code == health.GraphUnreachable && p.Severity == health.Critical {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		return &health.NotReadyError{Problems: ps}
	}
	return nil
}

// rotationsOf is the target's rotations, through its engine and submission path.
type rotationsOf struct{ a *Agent }

func (r rotationsOf) Rotations(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	return r.a.target.Engine().List(ctx, f)
}

// List is Rotations by the notifier's name.
func (r rotationsOf) List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	return r.a.target.Engine().List(ctx, f)
}

func (r rotationsOf) Rotation(ctx context.Context, id string) (rotation.Rotation, error) {
	return r.a.target.Engine().Get(ctx, id)
}

func (r rotationsOf) Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error) {
	return r.a.target.Engine().Execute(ctx, id, cmd, actor, note)
}

func (r rotationsOf) Submit(ctx context.Context, s api.Submission) (api.SubmitResult, error) {
	res, err := r.a.target.SubmitAPI(ctx, s.Data, s.FileName, s.Actor)
	if err != nil {
		return api.SubmitResult{}, err
	}
	if !res.Verdict.Accepted {
		return api.SubmitResult{Rejected: res.Verdict.Reason, Certificate: res.Verdict.Certificate}, nil
	}
	return api.SubmitResult{Rotation: res.Rotation, Created: res.Created, Certificate: res.Verdict.Certificate}, nil
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
