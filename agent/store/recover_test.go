package store

import (
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// TestRecoverRotations rebuilds rotations from the entries the engine and the target write.
func TestRecoverRotations(t *testing.T) {
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	certA := certs.Certificate{Thumbprint: "AA", Subject: "CN=a"}
	certB := certs.Certificate{Thumbprint: "BB", Subject: "CN=b"}
	e := func(a rotation.AuditEntry) ChainedEntry { return ChainedEntry{AuditEntry: a} }
	entries := []ChainedEntry{
		e(rotation.AuditEntry{At: at(1), Action: rotation.ActionRotationState, Actor: "intake", RotationID: "a", State: rotation.StatePendingApproval, File: "a.cer", Cert: &certA, Message: "dropped as a.cer"}),
		e(rotation.AuditEntry{At: at(2), Action: rotation.ActionIntakeFiled, Actor: "intake", Outcome: rotation.OutcomeOK, RotationID: "a", File: "a.cer", Message: "moved to processed/20261125T193002Z_a.cer"}),
		e(rotation.AuditEntry{At: at(3), Action: rotation.ActionRotationState, Actor: "api:ann", RotationID: "b", State: rotation.StateApplying, File: "b.pem", Cert: &certB, Message: "submitted through the API", AppID: "app-2"}),
		e(rotation.AuditEntry{At: at(4), Action: rotation.ActionGraphWrite, Actor: "agent", RotationID: "b", State: rotation.StateApplying, KeyID: "k-b", Message: "writing keyId k-b to app x"}),
		e(rotation.AuditEntry{At: at(5), Action: rotation.ActionRotationState, Actor: "agent", RotationID: "b", State: rotation.StateApplied, KeyID: "k-b", Cert: &certB, Message: "on the app as keyId k-b"}),
		e(rotation.AuditEntry{At: at(6), Action: rotation.ActionAgentStop, Actor: "agent"}),
		e(rotation.AuditEntry{At: at(7), Action: rotation.ActionRotationState, Actor: "api:bob", RotationID: "a", State: rotation.StateRejected, Cert: &certA, Code: certs.RejectedByPerson, Message: "not ours"}),
	}
	got := RecoverRotations(entries, "app-1")
	if len(got) != 2 {
		t.Fatalf("recovered %d rotations, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.ID != "a" || a.State != rotation.StateRejected || a.Source.Kind != rotation.SourceDropFolder || a.Source.FileName != "a.cer" ||
		a.Source.ArchivedAs != "20261125T193002Z_a.cer" || a.Reason == nil || a.Reason.Code != certs.RejectedByPerson ||
		len(a.History) != 2 || !a.CreatedAt.Equal(at(1)) || !a.UpdatedAt.Equal(at(7)) || a.Target.AppID != "app-1" {
		t.Errorf("rotation a = %+v", a)
	}
	if b.ID != "b" || b.State != rotation.StateApplied || b.Source.Kind != rotation.SourceAPI || b.KeyID != "k-b" || b.IntentKeyID != "k-b" ||
		b.AlreadyPresent || b.Certificate.Thumbprint != "BB" || b.Reason != nil || b.Target.AppID != "app-2" {
		t.Errorf("rotation b = %+v", b)
	}
	for _, r := range got {
		if err := r.Validate(); err != nil {
			t.Errorf("rotation %s does not validate: %v", r.ID, err)
		}
	}
}

// TestRecoverSignedAndPulled: the source of a pulled certificate and the key that signed a
// certificate come back from the engine's note; an archived name is read past the note of
// the signature file filed with it.
func TestRecoverSignedAndPulled(t *testing.T) {
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	fp := "SHA256:" + strings.Repeat("ab", 32)
	certC := certs.Certificate{Thumbprint: "CC", Subject: "CN=c"}
	certD := certs.Certificate{Thumbprint: "DD", Subject: "CN=d"}
	e := func(a rotation.AuditEntry) ChainedEntry { return ChainedEntry{AuditEntry: a} }
	got := RecoverRotations([]ChainedEntry{
		e(rotation.AuditEntry{At: at(1), Action: rotation.ActionRotationState, Actor: "pull", RotationID: "c", State: rotation.StateApplying, File: "next.cer", Cert: &certC,
			Message: "fetched from https://certs.example.com/c/next.cer; signed by pinned key provider.pub (ECDSA P-256, " + fp + ")"}),
		e(rotation.AuditEntry{At: at(2), Action: rotation.ActionRotationState, Actor: "intake", RotationID: "d", State: rotation.StateApplying, File: "d.cer", Cert: &certD,
			Message: "dropped as d.cer; signed by pinned key provenance.keys[0] (Ed25519, " + fp + ")"}),
		e(rotation.AuditEntry{At: at(3), Action: rotation.ActionIntakeFiled, Actor: "intake", Outcome: rotation.OutcomeOK, RotationID: "d", File: "d.cer",
			Message: "moved to processed/20261125T193002Z_d.cer; with signature file d.cer.sig"}),
	}, "app-1")
	if len(got) != 2 {
		t.Fatalf("recovered %d rotations", len(got))
	}
	if c := got[0].Source; c.Kind != rotation.SourcePull || c.URL != "https://certs.example.com/c/next.cer" || c.SignedBy != fp {
		t.Errorf("pulled source = %+v", c)
	}
	if d := got[1].Source; d.Kind != rotation.SourceDropFolder || d.SignedBy != fp || d.ArchivedAs != "20261125T193002Z_d.cer" {
		t.Errorf("dropped source = %+v", d)
	}
}
