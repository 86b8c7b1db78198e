package store

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// The types below are the on-disk JSON of schema version 2 (version 1 lacked the audit
// record's seq, prevHash and hash: see migrate.go). They mirror the rotation and
// certs types on purpose: a change of the API's JSON must not change the file format, and a
// change of the file format must be a deliberate edit here (with a new schema version when
// old files could not be read). Times are stored in UTC. TestRecordRoundTrip fails when a
// field of the domain types is not carried.

// rotationRecord is a value of the "rotations" bucket.
type rotationRecord struct {
	// Order is the creation order (the bucket's NextSequence at Create); List sorts by
	// CreatedAt, then Order.
	Order          uint64        `json:"order"`
	ID             string        `json:"id"`
	State          string        `json:"state"`
	Certificate    certRecord    `json:"certificate"`
	DER            []byte        `json:"der,omitempty"`
	Source         sourceRecord  `json:"source"`
	Target         targetRecord  `json:"target"`
	KeyID          string        `json:"keyId,omitempty"`
	IntentKeyID    string        `json:"intentKeyId,omitempty"`
	AlreadyPresent bool          `json:"alreadyPresent,omitempty"`
	Reason         *reasonRecord `json:"reason,omitempty"`
	Attempts       int           `json:"attempts,omitempty"`
	History        []eventRecord `json:"history,omitempty"`
	CreatedAt      time.Time     `json:"createdAt"`
	UpdatedAt      time.Time     `json:"updatedAt"`
}

type certRecord struct {
	Thumbprint   string    `json:"thumbprint"`
	SHA256       string    `json:"sha256,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	Issuer       string    `json:"issuer,omitempty"`
	SerialNumber string    `json:"serialNumber,omitempty"`
	NotBefore    time.Time `json:"notBefore"`
	NotAfter     time.Time `json:"notAfter"`
	KeyAlgorithm string    `json:"keyAlgorithm,omitempty"`
	KeyBits      int       `json:"keyBits,omitempty"`
}

type sourceRecord struct {
	Kind       string `json:"kind,omitempty"`
	FileName   string `json:"fileName,omitempty"`
	ArchivedAs string `json:"archivedAs,omitempty"`
	URL        string `json:"url,omitempty"`
	SignedBy   string `json:"signedBy,omitempty"`
}

type targetRecord struct {
	Name        string `json:"name,omitempty"`
	AppID       string `json:"appId,omitempty"`
	ObjectID    string `json:"objectId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

type reasonRecord struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

type eventRecord struct {
	At    time.Time `json:"at"`
	State string    `json:"state"`
	Actor string    `json:"actor,omitempty"`
	Note  string    `json:"note,omitempty"`
}

// auditRecord is a value of the "audit" bucket. The sequence number is the key; since schema
// version 2 the value repeats it (so that a value moved to another key shows), and carries
// the hash chain (chain.go): the previous entry's hash and its own. Its JSON is also, byte
// for byte, the entry's line in the JSON-lines files (trail.go), so its field names are part
// of the contract: the API's audit entry fields plus seq, prevHash and hash.
type auditRecord struct {
	Seq        uint64      `json:"seq"`
	At         time.Time   `json:"at"`
	Action     string      `json:"action"`
	Actor      string      `json:"actor"`
	Outcome    string      `json:"outcome"`
	RotationID string      `json:"rotationId,omitempty"`
	State      string      `json:"state,omitempty"`
	File       string      `json:"file,omitempty"`
	KeyID      string      `json:"keyId,omitempty"`
	Cert       *certRecord `json:"certificate,omitempty"`
	Code       string      `json:"code,omitempty"`
	Message    string      `json:"message,omitempty"`
	AppID      string      `json:"appId,omitempty"`
	PrevHash   string      `json:"prevHash"`
	Hash       string      `json:"hash"`
}

func utc(t time.Time) time.Time { return t.UTC() }

func toCertRecord(c certs.Certificate) certRecord {
	return certRecord{
		Thumbprint: c.Thumbprint, SHA256: c.SHA256, Subject: c.Subject, Issuer: c.Issuer,
		SerialNumber: c.SerialNumber, NotBefore: utc(c.NotBefore), NotAfter: utc(c.NotAfter),
		KeyAlgorithm: c.KeyAlgorithm, KeyBits: c.KeyBits,
	}
}

func (c certRecord) cert() certs.Certificate {
	return certs.Certificate{
		Thumbprint: c.Thumbprint, SHA256: c.SHA256, Subject: c.Subject, Issuer: c.Issuer,
		SerialNumber: c.SerialNumber, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		KeyAlgorithm: c.KeyAlgorithm, KeyBits: c.KeyBits,
	}
}

func toRotationRecord(r rotation.Rotation, order uint64) rotationRecord {
	rec := rotationRecord{
		Order:          order,
		ID:             r.ID,
		State:          string(r.State),
		Certificate:    toCertRecord(r.Certificate),
		DER:            r.DER,
		Source:         sourceRecord{Kind: string(r.Source.Kind), FileName: r.Source.FileName, ArchivedAs: r.Source.ArchivedAs, URL: r.Source.URL, SignedBy: r.Source.SignedBy},
		Target:         targetRecord{Name: r.Target.Name, AppID: r.Target.AppID, ObjectID: r.Target.ObjectID, DisplayName: r.Target.DisplayName},
		KeyID:          r.KeyID,
		IntentKeyID:    r.IntentKeyID,
		AlreadyPresent: r.AlreadyPresent,
		Attempts:       r.Attempts,
		CreatedAt:      utc(r.CreatedAt),
		UpdatedAt:      utc(r.UpdatedAt),
	}
	if r.Reason != nil {
		rec.Reason = &reasonRecord{Code: string(r.Reason.Code), Message: r.Reason.Message}
	}
	for _, e := range r.History {
		rec.History = append(rec.History, eventRecord{At: utc(e.At), State: string(e.State), Actor: e.Actor, Note: e.Note})
	}
	return rec
}

func (rec rotationRecord) rotation() rotation.Rotation {
	r := rotation.Rotation{
		ID:             rec.ID,
		State:          rotation.State(rec.State),
		Certificate:    rec.Certificate.cert(),
		DER:            rec.DER,
		Source:         rotation.Source{Kind: rotation.SourceKind(rec.Source.Kind), FileName: rec.Source.FileName, ArchivedAs: rec.Source.ArchivedAs, URL: rec.Source.URL, SignedBy: rec.Source.SignedBy},
		Target:         rotation.Target{Name: rec.Target.Name, AppID: rec.Target.AppID, ObjectID: rec.Target.ObjectID, DisplayName: rec.Target.DisplayName},
		KeyID:          rec.KeyID,
		IntentKeyID:    rec.IntentKeyID,
		AlreadyPresent: rec.AlreadyPresent,
		Attempts:       rec.Attempts,
		CreatedAt:      rec.CreatedAt,
		UpdatedAt:      rec.UpdatedAt,
	}
	if rec.Reason != nil {
		r.Reason = &certs.Reason{Code: certs.Code(rec.Reason.Code), Message: rec.Reason.Message}
	}
	for _, e := range rec.History {
		r.History = append(r.History, rotation.Event{At: e.At, State: rotation.State(e.State), Actor: e.Actor, Note: e.Note})
	}
	return r
}

func toAuditRecord(a rotation.AuditEntry) auditRecord {
	rec := auditRecord{
		At: utc(a.At), Action: string(a.Action), Actor: a.Actor, Outcome: string(a.Outcome),
		RotationID: a.RotationID, State: string(a.State), File: a.File, KeyID: a.KeyID,
		Code: string(a.Code), Message: a.Message, AppID: a.AppID,
	}
	if a.Cert != nil {
		c := toCertRecord(*a.Cert)
		rec.Cert = &c
	}
	return rec
}

func (rec auditRecord) entry(seq uint64) rotation.AuditEntry {
	a := rotation.AuditEntry{
		Seq: seq, At: rec.At, Action: rotation.Action(rec.Action), Actor: rec.Actor, Outcome: rotation.Outcome(rec.Outcome),
		RotationID: rec.RotationID, State: rotation.State(rec.State), File: rec.File, KeyID: rec.KeyID,
		Code: certs.Code(rec.Code), Message: rec.Message, AppID: rec.AppID,
	}
	if rec.Cert != nil {
		c := rec.Cert.cert()
		a.Cert = &c
	}
	return a
}

func encodeRotation(r rotation.Rotation, order uint64) ([]byte, error) {
	return json.Marshal(toRotationRecord(r, order))
}

func decodeRotation(b []byte) (rotation.Rotation, uint64, error) {
	var rec rotationRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return rotation.Rotation{}, 0, err
	}
	return rec.rotation(), rec.Order, nil
}

// encodeAudit encodes a as the audit record with sequence number seq following the entry
// whose hash is prev.
func encodeAudit(a rotation.AuditEntry, seq uint64, prev string) ([]byte, error) {
	rec := toAuditRecord(a)
	rec.sanitize()
	rec.Seq, rec.PrevHash = seq, prev
	rec.Hash = hashOf(&rec)
	return json.Marshal(&rec)
}

func decodeAudit(seq uint64, b []byte) (rotation.AuditEntry, error) {
	rec, err := decodeAuditRecord(b)
	if err != nil {
		return rotation.AuditEntry{}, err
	}
	return rec.entry(seq), nil
}

func decodeAuditRecord(b []byte) (auditRecord, error) {
	var rec auditRecord
	err := json.Unmarshal(b, &rec)
	return rec, err
}

// seqKey encodes an audit sequence number as its big-endian key, so that byte order is
// numeric order.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}
