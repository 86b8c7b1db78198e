// Package rotation is certagent's rotation engine: the states a provider certificate goes
// through from submission to proven-on-the-app-registration, the decisions at each step, and
// the interfaces (Store, KeyCredentials) it needs from the disk and from Graph.
package rotation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// State is where a rotation stands. The values are part of the contract (docs/contract.md).
type State string

const (
	// StatePendingApproval: accepted by the policy, waiting for a person to approve
	// (policy.approval: manual only).
	StatePendingApproval State = "pending_approval"
	// StateApplying: the engine is writing, or will write, the certificate to the app.
	StateApplying State = "applying"
	// StateApplied: the certificate is on the app registration, read back from Graph, with
	// every credential that was there before still there.
	StateApplied State = "applied"
	// StateConfirmed: a person confirmed that the provider was told, or the provider
	// notification was delivered. Final.
	StateConfirmed State = "confirmed"
	// StateRejected: refused by a person, or by the policy when re-checked. Final.
	StateRejected State = "rejected"
	// StateFailed: Graph refused, or stayed unreachable through every retry. A person may
	// retry.
	StateFailed State = "failed"
)

// States lists every state in the order a rotation normally passes through them.
var States = []State{StatePendingApproval, StateApplying, StateApplied, StateConfirmed, StateRejected, StateFailed}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// SourceKind says how a certificate reached the agent. The values are part of the contract.
type SourceKind string

// Source kinds.
const (
	// SourceDropFolder: a file in the drop folder.
	SourceDropFolder SourceKind = "drop_folder"
	// SourceAPI: POST /api/v1/rotations (the PowerShell module, `certagent submit`).
	SourceAPI SourceKind = "api"
	// SourcePull: fetched by the agent from the provider (a target's source.url).
	SourcePull SourceKind = "pull"
)

// Source says where a certificate came from.
type Source struct {
	// Kind is SourceDropFolder, SourceAPI or SourcePull.
	Kind SourceKind `json:"kind"`
	// FileName is the dropped file's name, the name given with the API request, or the last
	// segment of a pulled certificate's URL.
	FileName string `json:"fileName,omitempty"`
	// ArchivedAs is the file's name inside processed/ once it was moved there.
	ArchivedAs string `json:"archivedAs,omitempty"`
	// URL is where a pulled certificate was fetched from (SourcePull).
	URL string `json:"url,omitempty"`
	// SignedBy is the fingerprint ("SHA256:" and hex) of the pinned provenance key whose
	// signature came with the certificate; "" when it came unsigned.
	SignedBy string `json:"signedBy,omitempty"`
}

// Target is the app registration a rotation writes to.
type Target struct {
	// Name is the target's name in the config. The store does not keep it (the app id
	// identifies the target); the agent fills it in when it serves a rotation.
	Name        string `json:"name,omitempty"`
	AppID       string `json:"appId"`
	ObjectID    string `json:"objectId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// Event is one entry of a rotation's history: a state it entered, who moved it there, why.
type Event struct {
	At    time.Time `json:"at"`
	State State     `json:"state"`
	Actor string    `json:"actor"`
	Note  string    `json:"note,omitempty"`
}

// Rotation is the life of one provider certificate (one per thumbprint).
type Rotation struct {
	ID          string            `json:"id"`
	State       State             `json:"state"`
	Certificate certs.Certificate `json:"certificate"`
	// DER is the certificate itself, kept so the engine can write it later. Public data.
	DER    []byte `json:"der"`
	Source Source `json:"source"`
	Target Target `json:"target"`
	// KeyID is Graph's keyId of the credential, set once applied.
	KeyID string `json:"keyId,omitempty"`
	// IntentKeyID is the keyId the engine chose and stored before its write, so that a
	// restart can tell whether the write landed and can redo it idempotently.
	IntentKeyID string `json:"intentKeyId,omitempty"`
	// AlreadyPresent is true when the certificate was on the app before certagent wrote it.
	AlreadyPresent bool `json:"alreadyPresent"`
	// Reason says why the rotation is rejected or failed.
	Reason *certs.Reason `json:"reason,omitempty"`
	// Attempts counts write attempts since the rotation last entered StateApplying.
	Attempts  int       `json:"attempts,omitempty"`
	History   []Event   `json:"history"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate checks what every Store relies on: an id, a certificate thumbprint, a known
// state.
func (r Rotation) Validate() error {
	switch {
	case r.ID == "":
		return errors.New("the rotation has no id")
	case certs.NormalizeThumbprint(r.Certificate.Thumbprint) == "":
		return errors.New("the rotation has no certificate thumbprint")
	case strings.TrimSpace(r.Target.AppID) == "":
		return errors.New("the rotation has no target app id")
	case !r.State.Valid():
		return fmt.Errorf("unknown state %q", r.State)
	}
	return nil
}

// Clone returns a deep copy of r.
func (r Rotation) Clone() Rotation {
	r.DER = append([]byte(nil), r.DER...)
	r.History = append([]Event(nil), r.History...)
	if r.Reason != nil {
		reason := *r.Reason
		r.Reason = &reason
	}
	return r
}

// Action is what an audit entry records. "Action" means only this; what a person does to a
// rotation is a Command. The values are stable: people filter the audit log by them.
type Action string

// Audit actions.
const (
	ActionIntakeRejected Action = "intake.rejected"    // an API body was refused by the policy
	ActionIntakeFiled    Action = "intake.filed"       // a drop file was moved to processed/ or rejected/
	ActionRotationState  Action = "rotation.state"     // a rotation changed state
	ActionRotationDup    Action = "rotation.duplicate" // a certificate with a rotation already was submitted again
	ActionGraphWrite     Action = "graph.write"        // a PATCH of keyCredentials was sent (or failed)
	ActionRetire         Action = "graph.retire"       // an old certificate was (or is being) removed from the app
	ActionCredential     Action = "credential"         // the agent's own sign-in credential changed
	ActionNotify         Action = "notify"             // the provider notification was sent (or failed)
	ActionAgentStart     Action = "agent.start"        // the agent started
	ActionAgentStop      Action = "agent.stop"         // the agent stopped
	ActionExternalChange Action = "graph.external"     // the app's credentials changed outside certagent
	ActionStoreRebuilt   Action = "store.rebuilt"      // `certagent store rebuild` made a new store from the audit trail and the app
)

// Outcome is how an audited step ended.
type Outcome string

// Outcomes of an audit entry.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeRefused Outcome = "refused"
	OutcomeError   Outcome = "error"
)

// Actors: who did a step. An API caller is ActorAPI, or "api:<name>" when it named itself
// (X-CertAgent-Actor).
const (
	ActorAgent  = "agent"  // the agent on its own (applying, syncing, renewing)
	ActorPolicy = "policy" // the certificate policy, re-checked before a write
	ActorIntake = "intake" // the drop folder
	ActorNotify = "notify" // the provider's webhook took the notification
	ActorAPI    = "api"    // the local API
	ActorPull   = "pull"   // the fetch of a target's source.url
)

// AuditEntry is one append-only record of the audit log.
type AuditEntry struct {
	// Seq is assigned by the store: strictly increasing, never reused.
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// Action is one of the Action constants.
	Action Action `json:"action"`
	// Actor is one of the Actor constants, or "api:<name>" when the caller named themself.
	Actor      string             `json:"actor"`
	Outcome    Outcome            `json:"outcome"`
	RotationID string             `json:"rotationId,omitempty"`
	State      State              `json:"state,omitempty"`
	File       string             `json:"file,omitempty"`
	KeyID      string             `json:"keyId,omitempty"`
	Cert       *certs.Certificate `json:"certificate,omitempty"`
	Code       certs.Code         `json:"code,omitempty"`
	Message    string             `json:"message,omitempty"`
	// AppID is the app registration the entry is about, when it is about one: a rotation's
	// target, a write, a file routed to a target. The engine and the target fill it in.
	AppID string `json:"appId,omitempty"`
}
