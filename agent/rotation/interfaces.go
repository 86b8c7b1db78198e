package rotation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// ErrNotFound is returned by a Store (and the Engine) when no rotation has the asked id.
var ErrNotFound = errors.New("rotation not found")

// Filter selects rotations in Store.List. The zero Filter selects all.
type Filter struct {
	// State, when set, keeps only rotations in that state.
	State State
}

// AuditQuery pages through the audit log, newest first.
type AuditQuery struct {
	// Before, when non-zero, keeps only entries with Seq < Before.
	Before uint64
	// Limit caps the number of entries; zero means 100.
	Limit int
}

// Store keeps rotations and the audit log. Implementations are safe for concurrent use, and
// every method is atomic: after a crash at any instant, a call either took full effect or
// none.
type Store interface {
	// Create stores r, with its audit entries, unless a rotation for the same certificate
	// on the same app (CertKey) exists; then it stores nothing and returns the existing
	// rotation and false. The same certificate may be rotated onto several apps.
	Create(ctx context.Context, r Rotation, audit ...AuditEntry) (Rotation, bool, error)
	// Get returns the rotation with id, or ErrNotFound.
	Get(ctx context.Context, id string) (Rotation, error)
	// ByThumbprint returns the rotation of a certificate thumbprint on the app appID, or
	// ErrNotFound.
	ByThumbprint(ctx context.Context, appID, thumbprint string) (Rotation, error)
	// Update replaces the stored rotation with r.ID (ErrNotFound if none) and appends the
	// audit entries, in one transaction. Its certificate and app cannot change.
	Update(ctx context.Context, r Rotation, audit ...AuditEntry) error
	// List returns the rotations that match f, oldest first.
	List(ctx context.Context, f Filter) ([]Rotation, error)
	// Append adds entries to the audit log. Each gets the next Seq.
	Append(ctx context.Context, audit ...AuditEntry) error
	// Audit returns audit entries newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// Scanner is a Store that can show its rotations without copying them, for the reads that
// only count or look (the status, the metrics: every API request and scrape). Scan calls fn
// for each rotation, oldest first. The rotation is shared: fn must change neither it nor
// anything it points to, and must not call the store. fn may keep r to read later: a
// Scanner never changes a rotation it has shown (a write replaces its list).
type Scanner interface {
	Scan(ctx context.Context, fn func(*Rotation)) error
}

// KeyCredentials reads and writes an application's keyCredentials in Graph. Implementations
// are safe for concurrent use.
//
// Errors: an error for which IsTransient reports true (throttling, 5xx, timeouts, resets) is
// worth retrying, after RetryAfter when it tells; anything else is permanent. Errors carry
// Graph's code and message (see ErrorCode).
type KeyCredentials interface {
	// Get reads the application whose appId (client id) is appID, with every key credential
	// and its key bytes.
	Get(ctx context.Context, appID string) (certs.Application, error)
	// Replace sets the application's whole keyCredentials collection to creds (Graph's PATCH
	// replaces it: a credential left out is removed). objectID is the application's object id.
	Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error
}

// IsTransient reports whether err is worth retrying: it or an error it wraps has a
// Transient() bool method that says so.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// RetryAfter returns how long the server asked to wait before retrying (0 when it did not
// say): from a RetryAfter() time.Duration method on err or an error it wraps.
func RetryAfter(err error) time.Duration {
	var t interface{ RetryAfter() time.Duration }
	if errors.As(err, &t) {
		return t.RetryAfter()
	}
	return 0
}

// ErrorReason returns the stable code and message for a failure: from a Reason()
// certs.Reason method on err or an error it wraps, otherwise a generic "graph_error".
func ErrorReason(err error) certs.Reason {
	var t interface{ Reason() certs.Reason }
	if errors.As(err, &t) {
		return t.Reason()
	}
	return certs.Reason{Code: certs.GraphError, Message: err.Error()}
}

// ErrInvalidState is returned (wrapped in a *StateError) when a command does not fit the
// rotation's state, for example approving a rotation that is already applied.
var ErrInvalidState = errors.New("command not allowed in this state")

// StateError says which command a rotation's state refused.
type StateError struct {
	ID      string
	State   State
	Command Command
}

func (e *StateError) Error() string {
	return "rotation " + e.ID + " is " + string(e.State) + ": cannot " + string(e.Command)
}

// Unwrap lets errors.Is(err, ErrInvalidState) match.
func (e *StateError) Unwrap() error { return ErrInvalidState }

// CertKey names what a Store keeps one rotation for: one certificate on one app. The app id
// is case-folded (Graph prints GUIDs in lower case, people may not) and the thumbprint
// normalized; "" when either is missing.
func CertKey(appID, thumbprint string) string {
	app, thumb := strings.ToLower(strings.TrimSpace(appID)), certs.NormalizeThumbprint(thumbprint)
	if app == "" || thumb == "" {
		return ""
	}
	return app + "/" + thumb
}
