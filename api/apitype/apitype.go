// Package apitype holds the JSON request and response types of certagent's local REST API,
// shared by the handlers, their tests, the Go client and (as documentation) the PowerShell
// module.
//
// JSON names are camelCase, times are RFC 3339 in UTC, and lists are objects of the form
// {"items": [...]} so that fields can be added next to the items later.
package apitype

import (
	"cmp"
	"slices"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
)

// Health is the body of GET /livez and of a successful GET /readyz.
type Health struct {
	// Status is "ok" (livez) or "ready" (readyz).
	Status string `json:"status"`
}

// Status is the body of GET /api/v1/status: everything a person needs to see at a glance.
type Status struct {
	// Version is the agent's version.
	Version string `json:"version"`
	// StartedAt is when the agent started; UptimeSeconds is how long ago, in whole seconds.
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds int64     `json:"uptimeSeconds"`
	// TenantID is the Entra ID tenant the agent works in.
	TenantID string `json:"tenantId"`
	// Target is the app registration whose certificates the agent rotates.
	Target Target `json:"target"`
	// DropFolder is where provider certificates are dropped.
	DropFolder string `json:"dropFolder"`
	// Approval is the policy's approval mode: "auto" or "manual".
	Approval string `json:"approval"`
	// Certificates summarises the target app's certificates as last read from Graph.
	Certificates CertificateSummary `json:"certificates"`
	// Rotations counts rotations by state; every state is present, zero included.
	Rotations map[string]int `json:"rotations"`
	// LastSync is the last read of the target app from Graph.
	LastSync SyncStatus `json:"lastSync"`
	// Credential is the agent's own sign-in credential; nil before one exists.
	Credential *CredentialSummary `json:"credential,omitempty"`
	// Problems lists what needs a person, most urgent first; empty (never null) when all is
	// well.
	Problems []StatusProblem `json:"problems"`
	// Targets is every target's own status, in config order. The fields above (target,
	// dropFolder, approval, certificates, rotations, lastSync) describe the first target,
	// as they did before there could be several; rotations counts all of them.
	Targets []TargetStatus `json:"targets"`
}

// TargetStatus is one target's part of the status.
type TargetStatus struct {
	Name     string `json:"name"`
	TenantID string `json:"tenantId"`
	// Target is the app registration.
	Target       Target             `json:"target"`
	DropFolder   string             `json:"dropFolder"`
	Approval     string             `json:"approval"`
	Certificates CertificateSummary `json:"certificates"`
	// Rotations counts this target's rotations by state.
	Rotations map[string]int `json:"rotations"`
	LastSync  SyncStatus     `json:"lastSync"`
	// Retire is how superseded certificates are removed from the app.
	Retire RetireStatus `json:"retire"`
	// Provenance is whether certificates must come signed, and the pinned keys; absent
	// when no key is pinned and nothing is required.
	Provenance *ProvenanceStatus `json:"provenance,omitempty"`
	// Source is the fetch of the provider's next certificate; absent without source.url.
	Source *SourceStatus `json:"source,omitempty"`
}

// ProvenanceStatus is a target's provenance settings.
type ProvenanceStatus struct {
	// Required is provenance.required.
	Required bool `json:"required"`
	// Keys are the pinned keys.
	Keys []PinnedKey `json:"keys"`
	// WaitSeconds is provenance.wait in seconds.
	WaitSeconds int64 `json:"waitSeconds"`
}

// PinnedKey is one of the provider's pinned signing keys.
type PinnedKey struct {
	// Name is the key file's name, or "provenance.keys[N]".
	Name string `json:"name"`
	// Algorithm is "ECDSA P-256", "ECDSA P-384", "Ed25519", "RSA 3072" or "RSA-PSS 3072".
	Algorithm string `json:"algorithm"`
	// Fingerprint is "SHA256:" and the SHA-256 of its DER SubjectPublicKeyInfo in hex.
	Fingerprint string `json:"fingerprint"`
}

// SourceStatus is the fetch of a target's next certificate from the provider (source.url).
type SourceStatus struct {
	URL             string `json:"url"`
	IntervalSeconds int64  `json:"intervalSeconds"`
	// LastCheck is when a round last ended (successful or not), LastSuccess when one last
	// succeeded, LastChange when new content was last fetched, NextCheck when the next round
	// is due; each absent before the first.
	LastCheck   *time.Time `json:"lastCheck,omitempty"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastChange  *time.Time `json:"lastChange,omitempty"`
	NextCheck   *time.Time `json:"nextCheck,omitempty"`
	// Error is why the last round failed; absent when it succeeded.
	Error string `json:"error,omitempty"`
	// Refused is why the certificate published now was refused; absent when it was taken.
	Refused *certs.Reason `json:"refused,omitempty"`
	// RotationID is the rotation the certificate published now started or matched.
	RotationID string `json:"rotationId,omitempty"`
}

// RetireStatus is a target's retire settings, and in a dry run what would be removed.
type RetireStatus struct {
	Enabled bool `json:"enabled"`
	DryRun  bool `json:"dryRun"`
	// AfterDays is retire.after in days.
	AfterDays int `json:"afterDays"`
	// WouldRetire lists, in a dry run, the certificates that would be removed now.
	WouldRetire []Certificate `json:"wouldRetire,omitempty"`
}

// Target is an app registration.
type Target struct {
	// Name is the target's name in the config ("default" for a single target).
	Name string `json:"name,omitempty"`
	// AppID is the client id people know the app by.
	AppID string `json:"appId"`
	// ObjectID is the application object's id, once the app was read.
	ObjectID    string `json:"objectId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// CertificateSummary is the status's view of the target app's certificates.
type CertificateSummary struct {
	// Count is how many certificate credentials the app holds.
	Count int `json:"count"`
	// NextExpiry is the earliest endDateTime among them; absent when there are none.
	NextExpiry *time.Time `json:"nextExpiry,omitempty"`
	// DaysLeft is the whole days from now until NextExpiry (negative once expired); absent
	// when there are no certificates.
	DaysLeft *int `json:"daysLeft,omitempty"`
	// NextExpiryThumbprint and NextExpiryDisplayName name the certificate that expires
	// first.
	NextExpiryThumbprint  string `json:"nextExpiryThumbprint,omitempty"`
	NextExpiryDisplayName string `json:"nextExpiryDisplayName,omitempty"`
}

// SyncStatus describes the last read of the target app from Graph.
type SyncStatus struct {
	// At is when the last read finished, successful or not; absent before the first.
	At *time.Time `json:"at,omitempty"`
	// OK reports whether that read succeeded.
	OK bool `json:"ok"`
	// LastSuccess is when a read last succeeded; absent if none did yet.
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	// Error says why the last read failed; absent when it succeeded.
	Error *certs.Reason `json:"error,omitempty"`
}

// CredentialSummary is the status's view of the agent's own sign-in credential.
type CredentialSummary struct {
	Thumbprint string    `json:"thumbprint"`
	NotAfter   time.Time `json:"notAfter"`
	// DaysRemaining is the whole days from now until NotAfter, negative once expired.
	DaysRemaining int `json:"daysRemaining"`
}

// Severity ranks a StatusProblem: the agent's own vocabulary (agent/health).
type Severity = health.Severity

// Severities, most urgent first.
const (
	// SeverityCritical: act now, something is broken or about to break.
	SeverityCritical = health.Critical
	// SeverityWarning: act soon.
	SeverityWarning = health.Warning
	// SeverityInfo: a person's step is due, nothing is at risk yet.
	SeverityInfo = health.Info
)

// Status problem codes. Stable: scripts switch on them. The agent's own vocabulary
// (agent/health), repeated here for API clients.
const (
	ProblemCertificateExpiring       = health.CertificateExpiring
	ProblemCertificateExpired        = health.CertificateExpired
	ProblemNoCertificates            = health.NoCertificates
	ProblemAgentCredentialExpiring   = health.AgentCredentialExpiring
	ProblemAgentCredentialMissing    = health.AgentCredentialMissing
	ProblemGraphUnreachable          = health.GraphUnreachable
	ProblemRotationFailed            = health.RotationFailed
	ProblemAwaitingApproval          = health.AwaitingApproval
	ProblemAwaitingConfirmation      = health.AwaitingConfirmation
	ProblemDropFolderUnavailable     = health.DropFolderUnavailable
	ProblemArchiveUnwritable         = health.ArchiveUnwritable
	ProblemStoreError                = health.StoreError
	ProblemNotConfigured             = health.NotConfigured
	ProblemConfigInvalid             = health.ConfigInvalid
	ProblemStartFailed               = health.StartFailed
	ProblemAppFull                   = health.AppFull
	ProblemCredentialRenewalWaiting  = health.CredentialRenewalWaiting
	ProblemAgentCredentialSuperseded = health.AgentCredentialSuperseded
	ProblemDropEntriesIgnored        = health.DropEntriesIgnored
	ProblemRetireDryRun              = health.RetireDryRun
	ProblemAuditTrailUnwritable      = health.AuditTrailUnwritable
	ProblemWebhookFailing            = health.WebhookFailing
	ProblemWebhookUnsigned           = health.WebhookUnsigned
	ProblemSourceUnreachable         = health.SourceUnreachable
	ProblemSourceRefused             = health.SourceRefused
)

// StatusProblem is one thing in the status that needs a person.
type StatusProblem struct {
	// Code is one of the Problem* constants (more may be added).
	Code string `json:"code"`
	// Severity is critical, warning or info.
	Severity Severity `json:"severity"`
	// Message tells a person what is wrong and what to do.
	Message string `json:"message"`
	// Target names the target the problem is about, when it is about one.
	Target string `json:"target,omitempty"`
}

// SortProblems orders problems most urgent first (critical, warning, info), keeping the
// given order within a severity.
func SortProblems(p []StatusProblem) {
	slices.SortStableFunc(p, func(a, b StatusProblem) int {
		return cmp.Compare(a.Severity.Rank(), b.Severity.Rank())
	})
}

// Certificate is one certificate credential of a target app, as last read from Graph.
type Certificate struct {
	// Target names the target whose app holds it.
	Target string `json:"target,omitempty"`
	// KeyID is Graph's keyId of the credential.
	KeyID string `json:"keyId"`
	// Thumbprint is the SHA-1 thumbprint, upper-case hex; empty when Graph did not tell.
	Thumbprint    string    `json:"thumbprint"`
	DisplayName   string    `json:"displayName"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	// DaysRemaining is the whole days from now until EndDateTime, negative once expired.
	DaysRemaining int `json:"daysRemaining"`
	// AddedByAgent reports whether certagent put the credential on the app.
	AddedByAgent bool `json:"addedByAgent"`
	// RotationID is the rotation that added it, when AddedByAgent.
	RotationID string `json:"rotationId,omitempty"`
}

// CertificateList is the body of GET /api/v1/certificates.
type CertificateList struct {
	Items []Certificate `json:"items"`
	// SyncedAt is when the items were read from Graph; absent before the first read.
	SyncedAt *time.Time `json:"syncedAt,omitempty"`
}

// Rotation is the life of one provider certificate (docs/contract.md, "Rotations").
type Rotation struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	Certificate certs.Certificate `json:"certificate"`
	Source      Source            `json:"source"`
	Target      Target            `json:"target"`
	// KeyID is Graph's keyId of the credential, once applied.
	KeyID string `json:"keyId,omitempty"`
	// AlreadyPresent reports whether the certificate was on the app before certagent
	// wrote it (then nothing was written).
	AlreadyPresent bool `json:"alreadyPresent"`
	// Reason says why the rotation was rejected or failed.
	Reason    *certs.Reason `json:"reason,omitempty"`
	History   []Event       `json:"history"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// Source says where a rotation's certificate came from.
type Source struct {
	// Kind is "drop_folder", "api" or "pull".
	Kind string `json:"kind"`
	// FileName is the dropped file's name, the name given with the API request, or the last
	// segment of a pulled certificate's URL.
	FileName string `json:"fileName,omitempty"`
	// ArchivedAs is the file's name inside processed/ once the drop folder filed it.
	ArchivedAs string `json:"archivedAs,omitempty"`
	// URL is where a pulled certificate was fetched from.
	URL string `json:"url,omitempty"`
	// SignedBy is the SHA-256 fingerprint of the pinned key that signed the certificate
	// ("SHA256:" and 64 hex digits); absent when it came unsigned.
	SignedBy string `json:"signedBy,omitempty"`
}

// Event is one entry of a rotation's history.
type Event struct {
	At    time.Time `json:"at"`
	State string    `json:"state"`
	Actor string    `json:"actor"`
	Note  string    `json:"note,omitempty"`
}

// RotationList is the body of GET /api/v1/rotations.
type RotationList struct {
	// Items are oldest first.
	Items []Rotation `json:"items"`
}

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	// Seq increases strictly with every record; it is the audit log's paging cursor.
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// Action is what happened, for example "rotation.state" or "graph.write".
	Action string `json:"action"`
	// Actor is "agent", "intake", "api", or "api:<name>".
	Actor string `json:"actor"`
	// Outcome is "ok", "refused" or "error".
	Outcome     string             `json:"outcome"`
	RotationID  string             `json:"rotationId,omitempty"`
	State       string             `json:"state,omitempty"`
	File        string             `json:"file,omitempty"`
	KeyID       string             `json:"keyId,omitempty"`
	Certificate *certs.Certificate `json:"certificate,omitempty"`
	Code        string             `json:"code,omitempty"`
	Message     string             `json:"message,omitempty"`
	// AppID is the app registration the entry is about, when it is about one.
	AppID string `json:"appId,omitempty"`
}

// AuditList is the body of GET /api/v1/audit: a page of the audit log, newest first.
type AuditList struct {
	Items []AuditEntry `json:"items"`
	// Next, when present, is the cursor of the next (older) page: pass it as ?before=.
	// It is absent on the last page.
	Next uint64 `json:"next,omitempty"`
}

// Credential is the body of GET /api/v1/credential: the agent's own sign-in credential.
type Credential struct {
	// Method is how the agent signs in to Entra ID: "certificate".
	Method string `json:"method"`
	// ClientID is the agent's own app registration, when known.
	ClientID   string    `json:"clientId,omitempty"`
	Thumbprint string    `json:"thumbprint"`
	Subject    string    `json:"subject"`
	NotBefore  time.Time `json:"notBefore"`
	NotAfter   time.Time `json:"notAfter"`
	// NextRenewal is when the agent will renew the credential by itself.
	NextRenewal time.Time `json:"nextRenewal"`
	// DaysRemaining is the whole days from now until NotAfter, negative once expired.
	DaysRemaining int `json:"daysRemaining"`
}

// Accepted is the body of a 202 response: the work was queued.
type Accepted struct {
	// Message says what was queued.
	Message string `json:"message"`
}

// SubmitRequest is the JSON body of POST /api/v1/rotations. (The route also takes the
// certificate itself as the body: DER, PEM or base64.)
type SubmitRequest struct {
	// Certificate is the certificate as PEM or as the base64 of its DER. Required.
	Certificate string `json:"certificate"`
	// Signature is the provider's detached signature of the certificate file (name.cer.sig):
	// its text as it is when it is base64 (cosign, openssl base64), otherwise the base64 of
	// its bytes. It signs the file's exact bytes: Certificate as sent, or the bytes its
	// base64 stands for.
	Signature string `json:"signature,omitempty"`
	// FileName names the certificate's file, for the history and the audit log.
	FileName string `json:"fileName,omitempty"`
	// Target names the target the certificate is for; without it, the target whose policy
	// names the certificate (with one target: that one).
	Target string `json:"target,omitempty"`
}

// RetireRequest is the optional JSON body of POST /api/v1/certificates/{keyId}/retire.
type RetireRequest struct {
	// Note is kept in the audit log.
	Note string `json:"note,omitempty"`
}

// ActionRequest is the optional JSON body of the approve, reject, confirm and retry routes.
type ActionRequest struct {
	// Note is kept in the rotation's history and the audit log.
	Note string `json:"note,omitempty"`
}

// Problem is an error response (RFC 7807, media type application/problem+json).
type Problem struct {
	// Type is a URI naming the kind of problem: "urn:certagent:problem:<code>".
	Type string `json:"type"`
	// Title is a short summary of the kind of problem; the same for every Code.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence to a person.
	Detail string `json:"detail"`
	// Code is the stable machine-readable code: one of the Code* constants or, on a refused
	// submission, one of the certificate verdict codes.
	Code string `json:"code"`
	// Certificate holds the facts of a refused certificate, when the input held one.
	Certificate *certs.Certificate `json:"certificate,omitempty"`
	// State is the rotation's current state, on an invalid_state problem.
	State string `json:"state,omitempty"`
}

// ProblemTypePrefix starts every Problem.Type.
const ProblemTypePrefix = "urn:certagent:problem:"

// Problem codes of the API itself (a refused submission uses the certificate verdict codes
// of package certs instead).
const (
	CodeInvalidRequest       = "invalid_request"        // 400
	CodeUnauthorized         = "unauthorized"           // 401
	CodeForbidden            = "forbidden"              // 403
	CodeNotFound             = "not_found"              // 404
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeInvalidState         = "invalid_state"          // 409
	CodeTooLarge             = "too_large"              // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeRateLimited          = "rate_limited"           // 429
	CodeInternal             = "internal"               // 500
	CodeNotReady             = "not_ready"              // 503 on /readyz
	CodeUnavailable          = "unavailable"            // 503
	CodeRetireRefused        = "retire_refused"         // 409: a retire guard said no
)
