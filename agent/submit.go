package agent

import (
	"context"
	"fmt"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/intake"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api"
)

// Actors of submissions.
const actorIntake = "intake"

// submit is the one path from bytes to a rotation, shared by the drop folder and the API:
// the policy first, then the engine (which returns the existing rotation for a certificate
// it has seen). A refused input returns its verdict and records nothing here: the caller
// audits it with what it knows (the file's fate, the API caller).
func (a *Agent) submit(ctx context.Context, data []byte, src rotation.Source, actor string) (certpolicy.Verdict, rotation.Rotation, bool, error) {
	v := a.policy.Check(data, a.now())
	if !v.Accepted {
		return v, rotation.Rotation{}, false, nil
	}
	r, created, err := a.engine.Submit(ctx, rotation.Submission{Cert: *v.Certificate, DER: v.DER, Source: src, Actor: actor})
	return v, r, created, err
}

// HandleFile implements intake.Handler: a settled drop-folder file's contents go through
// the same policy and engine as an API submission.
func (a *Agent) HandleFile(ctx context.Context, f intake.File) intake.Decision {
	v, r, _, err := a.submit(ctx, f.Data, rotation.Source{Kind: rotation.SourceDropFolder, FileName: f.Name}, actorIntake)
	if err != nil {
		// The store could not record it: leave the file where it is and try again later.
		a.log.Error("recording dropped certificate", "file", f.Name, "err", err)
		return intake.Decision{Retry: true}
	}
	if !v.Accepted {
		return intake.Decision{Reason: v.Reason, Cert: v.Certificate}
	}
	return intake.Decision{Accepted: true, RotationID: r.ID, Cert: v.Certificate}
}

// Filed implements intake.Handler: every file's fate goes to the audit log and the metrics.
func (a *Agent) Filed(ctx context.Context, f intake.File, d intake.Decision, archivedAs string) {
	e := rotation.AuditEntry{
		Action: rotation.ActionIntakeFiled, Actor: actorIntake, Outcome: rotation.OutcomeOK,
		RotationID: d.RotationID, File: f.Name, Cert: d.Cert,
		Message: "moved to processed/" + archivedAs,
	}
	if d.Accepted {
		a.metrics.IntakeFile("accepted", "")
		if d.RotationID != "" {
			if err := a.engine.Archived(ctx, d.RotationID, archivedAs); err != nil {
				a.log.Warn("recording archived name", "rotation_id", d.RotationID, "err", err)
			}
		}
	} else {
		code := certs.Code("")
		msg := ""
		if d.Reason != nil {
			code, msg = d.Reason.Code, d.Reason.Message
		}
		a.metrics.IntakeFile("rejected", string(code))
		e.Outcome, e.Code = rotation.OutcomeRefused, code
		e.Message = fmt.Sprintf("moved to rejected/%s: %s", archivedAs, msg)
	}
	// Queued rather than committed one by one: a flood of thousands of files must not wait
	// on an fsync each. The file itself (and its reason note) is the durable record of its
	// fate; at worst a crash loses the last moments' entries.
	if e.At.IsZero() {
		e.At = a.now().UTC()
	}
	if err := a.store.AppendAsync(ctx, e); err != nil {
		a.log.Error("writing audit entry", "action", e.Action, "err", err)
	}
}

// Submit implements api.Backend.
func (a *Agent) Submit(ctx context.Context, s api.Submission) (api.SubmitResult, error) {
	v, r, created, err := a.submit(ctx, s.Data, rotation.Source{Kind: rotation.SourceAPI, FileName: s.FileName}, s.Actor)
	if err != nil {
		return api.SubmitResult{}, err
	}
	if !v.Accepted {
		a.metrics.IntakeFile("rejected", string(v.Reason.Code))
		a.audit(ctx, rotation.AuditEntry{
			Action: rotation.ActionIntakeRejected, Actor: s.Actor, Outcome: rotation.OutcomeRefused,
			File: s.FileName, Cert: v.Certificate, Code: v.Reason.Code, Message: v.Reason.Message,
		})
		return api.SubmitResult{Rejected: v.Reason, Certificate: v.Certificate}, nil
	}
	a.metrics.IntakeFile("accepted", "")
	return api.SubmitResult{Rotation: r, Created: created, Certificate: v.Certificate}, nil
}
