package api

import (
	"time"

	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// toRotation gives the API's view of a rotation: the fields of docs/contract.md, without the DER and
// the engine's internal bookkeeping (intent keyId, attempts). Times are in UTC.
func toRotation(r rotation.Rotation) apitype.Rotation {
	cert := r.Certificate
	cert.NotBefore = cert.NotBefore.UTC()
	cert.NotAfter = cert.NotAfter.UTC()
	out := apitype.Rotation{
		ID:          r.ID,
		State:       string(r.State),
		Certificate: cert,
		Source: apitype.Source{
			Kind:       string(r.Source.Kind),
			FileName:   r.Source.FileName,
			ArchivedAs: r.Source.ArchivedAs,
			URL:        r.Source.URL,
			SignedBy:   r.Source.SignedBy,
		},
		Target: apitype.Target{
			Name:        r.Target.Name,
			AppID:       r.Target.AppID,
			ObjectID:    r.Target.ObjectID,
			DisplayName: r.Target.DisplayName,
		},
		KeyID:          r.KeyID,
		AlreadyPresent: r.AlreadyPresent,
		History:        make([]apitype.Event, 0, len(r.History)),
		CreatedAt:      r.CreatedAt.UTC(),
		UpdatedAt:      r.UpdatedAt.UTC(),
	}
	if r.Reason != nil {
		reason := *r.Reason
		out.Reason = &reason
	}
	for _, ev := range r.History {
		out.History = append(out.History, apitype.Event{
			At: ev.At.UTC(), State: string(ev.State), Actor: ev.Actor, Note: ev.Note,
		})
	}
	return out
}

// toAuditEntry gives the API's view of an audit entry. Times are in UTC.
func toAuditEntry(e rotation.AuditEntry) apitype.AuditEntry {
	out := apitype.AuditEntry{
		Seq:        e.Seq,
		At:         e.At.UTC(),
		Action:     string(e.Action),
		Actor:      e.Actor,
		Outcome:    string(e.Outcome),
		RotationID: e.RotationID,
		State:      string(e.State),
		File:       e.File,
		KeyID:      e.KeyID,
		Code:       string(e.Code),
		Message:    e.Message,
		AppID:      e.AppID,
	}
	if e.Cert != nil {
		cert := *e.Cert
		cert.NotBefore = cert.NotBefore.UTC()
		cert.NotAfter = cert.NotAfter.UTC()
		out.Certificate = &cert
	}
	return out
}

// utcPtr returns t in UTC, or nil for nil or a zero time.
func utcPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
