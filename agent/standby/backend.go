package standby

import (
	"context"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

// backend serves the API while the agent cannot run: the status says what is missing,
// /readyz is 503 with the same problems, and every route that needs the agent answers 503
// with the most urgent problem's code. It is read-only after it is made.
type backend struct {
	cfg      *config.Config
	problems []health.Problem
	version  string
	started  time.Time
	now      func() time.Time
}

var (
	_ api.StatusSource      = (*backend)(nil)
	_ api.CertificateSource = (*backend)(nil)
	_ api.RotationService   = (*backend)(nil)
	_ api.DropFolder        = (*backend)(nil)
	_ api.CredentialService = (*backend)(nil)
	_ api.AuditLog          = (*backend)(nil)
)

func (b *backend) Status(context.Context) apitype.Status {
	now := b.now()
	st := apitype.Status{
		Version:       b.version,
		StartedAt:     b.started.UTC(),
		UptimeSeconds: int64(now.Sub(b.started) / time.Second),
		TenantID:      b.cfg.TenantID,
		Target:        apitype.Target{AppID: b.cfg.Target.AppID},
		DropFolder:    b.cfg.DropFolder,
		Approval:      b.cfg.Policy.Approval,
		Rotations:     map[string]int{},
		Problems:      []apitype.StatusProblem{},
	}
	for _, p := range b.problems {
		st.Problems = append(st.Problems, apitype.StatusProblem{Code: p.Code, Severity: p.Severity, Message: p.Message})
	}
	return st
}

func (b *backend) Ready(context.Context) error { return &health.NotReadyError{Problems: b.problems} }

// unavailable is the answer of every route that needs the running agent.
func (b *backend) unavailable() error {
	p := health.Problem{Code: health.NotConfigured, Severity: health.Critical, Message: "the agent is not running"}
	if len(b.problems) > 0 {
		p = b.problems[0]
	}
	return &health.UnavailableError{Problem: p}
}

func (b *backend) Certificates(context.Context, string, bool) (apitype.CertificateList, error) {
	return apitype.CertificateList{}, b.unavailable()
}

func (b *backend) Retire(context.Context, string, string, string, string) (apitype.Certificate, error) {
	return apitype.Certificate{}, b.unavailable()
}

func (b *backend) Rotations(context.Context, rotation.Filter, string) ([]rotation.Rotation, error) {
	return nil, b.unavailable()
}

func (b *backend) Rotation(context.Context, string) (rotation.Rotation, error) {
	return rotation.Rotation{}, b.unavailable()
}

func (b *backend) Submit(context.Context, api.Submission) (api.SubmitResult, error) {
	return api.SubmitResult{}, b.unavailable()
}

func (b *backend) Execute(context.Context, string, rotation.Command, string, string) (rotation.Rotation, error) {
	return rotation.Rotation{}, b.unavailable()
}

func (b *backend) Scan(context.Context) error { return b.unavailable() }

func (b *backend) Credential(context.Context) (apitype.Credential, error) {
	return apitype.Credential{}, b.unavailable()
}

func (b *backend) RotateCredential(context.Context, string) error { return b.unavailable() }

func (b *backend) Audit(context.Context, rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	return nil, b.unavailable()
}
