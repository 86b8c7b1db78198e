// Package health is how the agent says what is wrong with it: problems that need a person,
// with stable codes and severities, and the errors its parts return when they cannot do what
// was asked (not ready, unavailable, too soon, busy). The API maps these errors to HTTP
// statuses in one place; nothing outside api/ chooses a status.
package health

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Severity ranks a Problem.
type Severity string

// Severities, most urgent first.
const (
	// Critical: act now, something is broken or about to break.
	Critical Severity = "critical"
	// Warning: act soon.
	Warning Severity = "warning"
	// Info: a person's step is due, nothing is at risk yet.
	Info Severity = "info"
)

// Rank orders severities: 0 for critical, 1 for warning, 2 for info, 3 for anything else.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	case Info:
		return 2
	}
	return 3
}

// Problem codes. Stable: scripts switch on them (docs/contract.md, "Status problems").
const (
	// CertificateExpiring: the newest certificate on the target app expires soon.
	CertificateExpiring = "certificate_expiring"
	// CertificateExpired: the newest certificate on the target app has expired.
	CertificateExpired = "certificate_expired"
	// NoCertificates: the target app holds no certificate at all.
	NoCertificates = "no_certificates"
	// AppFull: the target app holds as many credentials as Entra allows; a rotation failed
	// for it.
	AppFull = "app_full"
	// AgentCredentialExpiring: the agent's own sign-in credential expires soon and was not
	// renewed.
	AgentCredentialExpiring = "agent_credential_expiring"
	// CredentialRenewalWaiting: the agent added its new certificate to its app and waits for
	// Entra ID to accept it at sign-in.
	CredentialRenewalWaiting = "credential_renewal_waiting"
	// AgentCredentialSuperseded: the agent's previous certificate is still on its app after a
	// renewal, because removing it failed.
	AgentCredentialSuperseded = "agent_credential_superseded"
	// AgentCredentialMissing: the agent has no sign-in credential yet.
	AgentCredentialMissing = "agent_credential_missing"
	// GraphUnreachable: the last read of the target app from Graph failed.
	GraphUnreachable = "graph_unreachable"
	// RotationFailed: a rotation failed; a person may retry or reject it.
	RotationFailed = "rotation_failed"
	// AwaitingApproval: a rotation waits for a person's approval.
	AwaitingApproval = "awaiting_approval"
	// AwaitingConfirmation: a certificate is on the app; a person should tell the provider
	// and confirm.
	AwaitingConfirmation = "awaiting_confirmation"
	// DropFolderUnavailable: the drop folder cannot be read.
	DropFolderUnavailable = "drop_folder_unavailable"
	// ArchiveUnwritable: files cannot be moved into processed/ or rejected/.
	ArchiveUnwritable = "archive_unwritable"
	// DropEntriesIgnored: the drop folder holds entries named like certificates that the
	// agent never takes in: folders, and hidden files (a name starting with ".").
	DropEntriesIgnored = "drop_entries_ignored"
	// RetireDryRun: retire.dry_run lists the certificates it would remove.
	RetireDryRun = "retire_dry_run"
	// StoreError: the agent cannot read its own store.
	StoreError = "store_error"
	// AuditTrailUnwritable: the audit trail's JSON-lines files beside the store are not
	// being written (they do not continue the store, or writing them fails).
	AuditTrailUnwritable = "audit_trail_unwritable"
	// WebhookFailing: notifications to the provider's webhook keep failing, or stopped
	// because it answered 410 Gone.
	WebhookFailing = "webhook_failing"
	// WebhookUnsigned: notifications to the provider's webhook are sent without a
	// signature (no notify.secret_file).
	WebhookUnsigned = "webhook_unsigned"
	// SourceUnreachable: fetching a target's source.url (or its .sig) failed: DNS, TLS, a
	// 404 or 5xx, a file too large; the agent keeps trying with backoff.
	SourceUnreachable = "source_unreachable"
	// SourceRefused: the certificate published at a target's source.url was refused (a bad
	// or missing signature, the policy); critical when its signature was refused.
	SourceRefused = "source_refused"
	// NotConfigured: the service runs on standby because required config keys are empty or
	// the config file does not exist; the message names each key and the fix.
	NotConfigured = "not_configured"
	// ConfigInvalid: the config (or the installer's values for it) cannot be used; the
	// message names file, line and key. The service keeps its standby or its running agent.
	ConfigInvalid = "config_invalid"
	// StartFailed: the config is complete but the agent could not start (a damaged store, a
	// taken port...); the service waits on standby and tries again.
	StartFailed = "start_failed"
)

// Codes lists every problem code above, for the documents and tests that must name them all.
var Codes = []string{
	CertificateExpiring, CertificateExpired, NoCertificates, AppFull,
	AgentCredentialExpiring, CredentialRenewalWaiting, AgentCredentialSuperseded, AgentCredentialMissing,
	GraphUnreachable, RotationFailed, AwaitingApproval, AwaitingConfirmation,
	DropFolderUnavailable, ArchiveUnwritable, DropEntriesIgnored, RetireDryRun,
	StoreError, AuditTrailUnwritable, WebhookFailing, WebhookUnsigned,
	SourceUnreachable, SourceRefused,
	NotConfigured, ConfigInvalid, StartFailed,
}

// Problem is one thing that needs a person.
type Problem struct {
	// Code is one of the codes above (more may be added).
	Code string
	// Severity is Critical, Warning or Info.
	Severity Severity
	// Message tells a person what is wrong and what to do.
	Message string
}

// Sort orders problems most urgent first, keeping the given order within a severity.
func Sort(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Severity.Rank(), b.Severity.Rank()) })
}

// NotReadyError says why the agent cannot do its work now (GET /readyz: 503 not_ready).
type NotReadyError struct {
	// Problems are what keeps it from working; empty while it starts.
	Problems []Problem
}

func (e *NotReadyError) Error() string {
	if len(e.Problems) == 0 {
		return "the agent is starting"
	}
	var msgs []string
	for _, p := range e.Problems {
		msgs = append(msgs, p.Message)
	}
	return strings.Join(msgs, "; ")
}

// UnavailableError says that a part of the agent cannot do what was asked now, and why
// (503, with the problem's code).
type UnavailableError struct {
	Problem Problem
	// Err is the cause, for the log; may be nil.
	Err error
}

func (e *UnavailableError) Error() string { return e.Problem.Message }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// TooSoonError says that something was asked again too soon (429, Retry-After).
type TooSoonError struct {
	// Detail says what and when to try again, in words.
	Detail string
	// Wait is how long until it may be asked again.
	Wait time.Duration
}

func (e *TooSoonError) Error() string { return e.Detail }

// BusyError says that what was asked is under way already (409).
type BusyError struct {
	// What is under way, in words.
	What string
}

func (e *BusyError) Error() string { return e.What + " is under way" }

// NotFoundError says that what was asked for does not exist (404).
type NotFoundError struct {
	// What is missing, in words.
	What string
}

func (e *NotFoundError) Error() string { return e.What }
