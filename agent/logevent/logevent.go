// Package logevent names the log records an operator's tools watch for (the service started,
// a rotation was applied, the config is invalid...): a record carries its Kind in the
// attribute Key, and each Kind has a stable Windows Event Log event ID and a stable journald
// MESSAGE_ID (docs/contract.md, "Service"). It is a leaf: any package may log an event.
package logevent

import (
	"log/slog"
	"slices"
)

// Key is the attribute that carries a record's Kind.
const Key = "event"

// Kind is what a log record reports, for the Event Log and the journal. Stable: monitoring
// rules match on the IDs.
type Kind string

// Kinds of events.
const (
	// Started: the service is up (serving the API, with the agent or on standby).
	Started Kind = "started"
	// Stopped: the service stopped, normally.
	Stopped Kind = "stopped"
	// NotConfigured: the service runs on standby because the config is missing or
	// incomplete; the record names what to set.
	NotConfigured Kind = "not_configured"
	// ConfigInvalid: the config cannot be used; the record names file and line.
	ConfigInvalid Kind = "config_invalid"
	// StartFailed: the config is complete but the agent could not start (a missing
	// credential, a damaged store, a taken port...); the service waits on standby and tries
	// again.
	StartFailed Kind = "start_failed"
	// RotationApplied: a certificate is on the app registration.
	RotationApplied Kind = "rotation_applied"
	// RotationFailed: a rotation failed; a person should retry or reject it.
	RotationFailed Kind = "rotation_failed"
	// CertificateExpiring: a certificate that matters (the newest on the target app, or the
	// agent's own) expires soon or has expired.
	CertificateExpiring Kind = "certificate_expiring"
)

// OtherErrorID is the event ID of an error record that has no Kind.
const OtherErrorID = 900

type info struct {
	id uint32
	// messageID is the journald MESSAGE_ID: 128 bits as 32 lower-case hex digits.
	messageID string
}

var kinds = map[Kind]info{
	Started:             {100, "71b2009afd2241f89fc778796ec2b2f3"},
	Stopped:             {101, "7cc7aa4df3ea485788246909ee4200da"},
	NotConfigured:       {110, "bb2da1ac03194abe8a0636ae6fe5e61d"},
	ConfigInvalid:       {111, "f26f7fbbc19f48f2a467fd41602be184"},
	StartFailed:         {112, "2c841c5411384410bf0abe3b59e5cc60"},
	RotationApplied:     {200, "b84b9328cdc24203a1ffea48fee66d59"},
	RotationFailed:      {201, "657b60cf19384e2d88db95234884fcc6"},
	CertificateExpiring: {300, "43b8081dd16944cabbb2f322d4490a30"},
}

// Kinds returns every Kind, by event ID.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b Kind) int { return int(kinds[a].id) - int(kinds[b].id) })
	return ks
}

// Known reports whether k is one of the kinds above.
func (k Kind) Known() bool { _, ok := kinds[k]; return ok }

// EventID returns the Windows Event Log event ID of k, or 0 for an unknown kind. The IDs are
// below 1000, the range that EventCreate.exe (the message file of the CertAgent source) has
// a "%1" message for.
func (k Kind) EventID() uint32 { return kinds[k].id }

// MessageID returns the journald MESSAGE_ID of k, or "" for an unknown kind.
func (k Kind) MessageID() string { return kinds[k].messageID }

// Attr returns the attribute that marks a record as k.
func Attr(k Kind) slog.Attr { return slog.String(Key, string(k)) }

// Of returns the Kind of r (its Key attribute at the top level), or "".
func Of(r slog.Record) Kind {
	var k Kind
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == Key {
			k = Kind(a.Value.String())
			return false
		}
		return true
	})
	return k
}

// In returns the Kind among attrs (as given to a Handler's WithAttrs), or "".
func In(attrs []slog.Attr) Kind {
	for _, a := range attrs {
		if a.Key == Key {
			return Kind(a.Value.String())
		}
	}
	return ""
}
