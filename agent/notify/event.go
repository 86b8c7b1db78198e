package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// Event types: the body's "type". Stable: receivers switch on them (docs/contract.md,
// "Provider webhook").
const (
	// TypeCertificateApplied: a rotation's certificate is on the app registration.
	TypeCertificateApplied = "certificate.applied"
	// TypeRotationFailed: a rotation failed; a person must retry or reject it.
	TypeRotationFailed = "rotation.failed"
	// TypeCertificateExpiring: the newest certificate of a target crossed an expiry
	// threshold (monitor.expiry_thresholds).
	TypeCertificateExpiring = "certificate.expiring"
)

// Target names the app registration an event is about.
type Target struct {
	// Name is the target's name in the config ("" while the config has one unnamed target).
	Name     string
	TenantID string
	AppID    string
}

// Event is one notification: recorded in the outbox before its first attempt, and posted
// with the same ID and Body until the webhook takes it.
type Event struct {
	// ID is the webhook-id: derived from what the event is about, so recording the same
	// event twice (after a crash) keeps one.
	ID string
	// Type is one of the Type constants.
	Type string
	// Order groups events that must reach the webhook in the order they were recorded: the
	// rotation's id, or the certificate's for expiry warnings.
	Order string
	// RotationID is the rotation the event is about, "" for expiry warnings.
	RotationID string
	// At is when it happened (the body's timestamp).
	At time.Time
	// Body is the JSON posted, byte for byte the same on every attempt.
	Body []byte
}

// AppliedData is the data of a certificate.applied event.
type AppliedData struct {
	RotationID     string            `json:"rotationId"`
	Target         string            `json:"target,omitempty"`
	TenantID       string            `json:"tenantId"`
	AppID          string            `json:"appId"`
	KeyID          string            `json:"keyId"`
	AlreadyPresent bool              `json:"alreadyPresent"`
	Certificate    certs.Certificate `json:"certificate"`
	AppliedAt      time.Time         `json:"appliedAt"`
}

// appliedBody is certificate.applied's body: the Standard Webhooks envelope, plus the fields
// certagent 1.x put at the top level (event and the data's fields), kept so that receivers
// written for it keep working.
type appliedBody struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      AppliedData `json:"data"`

	Event          string            `json:"event"`
	RotationID     string            `json:"rotationId"`
	TenantID       string            `json:"tenantId"`
	AppID          string            `json:"appId"`
	KeyID          string            `json:"keyId"`
	AlreadyPresent bool              `json:"alreadyPresent"`
	Certificate    certs.Certificate `json:"certificate"`
	AppliedAt      time.Time         `json:"appliedAt"`
}

// FailedData is the data of a rotation.failed event.
type FailedData struct {
	RotationID  string            `json:"rotationId"`
	Target      string            `json:"target,omitempty"`
	TenantID    string            `json:"tenantId"`
	AppID       string            `json:"appId"`
	Certificate certs.Certificate `json:"certificate"`
	// Reason is the failure's stable code and message (docs/contract.md, failure codes).
	Reason   certs.Reason `json:"reason"`
	FailedAt time.Time    `json:"failedAt"`
}

// ExpiringData is the data of a certificate.expiring event.
type ExpiringData struct {
	Target      string    `json:"target,omitempty"`
	TenantID    string    `json:"tenantId"`
	AppID       string    `json:"appId"`
	KeyID       string    `json:"keyId"`
	Thumbprint  string    `json:"thumbprint"`
	DisplayName string    `json:"displayName,omitempty"`
	NotAfter    time.Time `json:"notAfter"`
	// DaysLeft is the whole days from the warning to NotAfter.
	DaysLeft int `json:"daysLeft"`
	// ThresholdDays is the threshold crossed (one of monitor.expiry_thresholds).
	ThresholdDays int `json:"thresholdDays"`
}

// envelope is the Standard Webhooks payload shape: type, timestamp, data.
type envelope struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// eventID derives a webhook-id from the event's type and what identifies it.
func eventID(typ string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// appliedAt is when r reached applied (its last entry into the state).
func appliedAt(r rotation.Rotation) time.Time {
	at := r.UpdatedAt
	for _, h := range r.History {
		if h.State == rotation.StateApplied {
			at = h.At
		}
	}
	return at.UTC()
}

// failedAt is when r last entered failed; zero when it never did.
func failedAt(r rotation.Rotation) time.Time {
	var at time.Time
	for _, h := range r.History {
		if h.State == rotation.StateFailed {
			at = h.At
		}
	}
	return at.UTC()
}

// AppliedEvent is the certificate.applied event of r, a rotation in applied. A rotation
// reaches applied once, so its id alone identifies the event.
func AppliedEvent(r rotation.Rotation, t Target) (Event, error) {
	d := AppliedData{
		RotationID: r.ID, Target: t.Name, TenantID: t.TenantID, AppID: t.AppID, KeyID: r.KeyID,
		AlreadyPresent: r.AlreadyPresent, Certificate: r.Certificate, AppliedAt: appliedAt(r),
	}
	body, err := json.Marshal(appliedBody{
		Type: TypeCertificateApplied, Timestamp: d.AppliedAt, Data: d,
		Event: TypeCertificateApplied, RotationID: d.RotationID, TenantID: d.TenantID, AppID: d.AppID,
		KeyID: d.KeyID, AlreadyPresent: d.AlreadyPresent, Certificate: d.Certificate, AppliedAt: d.AppliedAt,
	})
	if err != nil {
		return Event{}, err
	}
	return Event{ID: eventID(TypeCertificateApplied, r.ID), Type: TypeCertificateApplied, Order: r.ID, RotationID: r.ID, At: d.AppliedAt, Body: body}, nil
}

// FailedEvent is the rotation.failed event of r, a rotation in failed. A rotation may fail,
// be retried and fail again: each failure is its own event, told apart by when it happened.
func FailedEvent(r rotation.Rotation, t Target) (Event, error) {
	d := FailedData{
		RotationID: r.ID, Target: t.Name, TenantID: t.TenantID, AppID: t.AppID,
		Certificate: r.Certificate, FailedAt: failedAt(r),
	}
	if r.Reason != nil {
		d.Reason = *r.Reason
	}
	body, err := json.Marshal(envelope{Type: TypeRotationFailed, Timestamp: d.FailedAt, Data: d})
	if err != nil {
		return Event{}, err
	}
	return Event{
		ID:   eventID(TypeRotationFailed, r.ID, d.FailedAt.Format(time.RFC3339Nano)),
		Type: TypeRotationFailed, Order: r.ID, RotationID: r.ID, At: d.FailedAt, Body: body,
	}, nil
}

// ExpiringEvent is the certificate.expiring event for d, warned at at. Each threshold of
// each certificate of an app is one event.
func ExpiringEvent(d ExpiringData, at time.Time) (Event, error) {
	at = at.UTC()
	d.NotAfter = d.NotAfter.UTC()
	body, err := json.Marshal(envelope{Type: TypeCertificateExpiring, Timestamp: at, Data: d})
	if err != nil {
		return Event{}, err
	}
	cert := d.Thumbprint
	if cert == "" {
		cert = d.KeyID
	}
	return Event{
		ID:    eventID(TypeCertificateExpiring, d.TenantID, d.AppID, cert, strconv.Itoa(d.ThresholdDays)),
		Type:  TypeCertificateExpiring,
		Order: "certificate:" + d.AppID + ":" + cert,
		At:    at, Body: body,
	}, nil
}
