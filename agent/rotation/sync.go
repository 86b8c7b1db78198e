package rotation

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aucloud/certagent/agent/certs"
)

// Sync reads the target app once, updates the snapshot, and records in the audit log any
// credential that appeared or disappeared since the last read without certagent writing it.
func (e *Engine) Sync(ctx context.Context) (Snapshot, error) {
	e.graphMu.Lock()
	defer e.graphMu.Unlock()
	app, err := e.cfg.Graph.Get(ctx, e.cfg.AppID)
	if err != nil {
		if ctx.Err() == nil { // a stop is not a Graph failure
			e.observeErr(err)
		}
		return e.Snapshot(), err
	}
	prev, hadPrev := e.Snapshot(), e.hasRead()
	e.observe(app)
	if hadPrev {
		added, removed := diffKeyIDs(prev.App.KeyCredentials, app.KeyCredentials)
		if len(added)+len(removed) > 0 {
			msg := describeChange(app, added, removed)
			e.log.Info("app credentials changed outside certagent", "app_id", e.cfg.AppID, "added", len(added), "removed", len(removed))
			e.audit(ctx, AuditEntry{Action: ActionExternalChange, Actor: ActorAgent, Outcome: OutcomeOK, Message: msg})
		}
	}
	return e.Snapshot(), nil
}

// Snapshot returns the target app as last read. SyncedAt is zero before the first read.
func (e *Engine) Snapshot() Snapshot {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	s := e.snap
	s.App.KeyCredentials = slices.Clone(s.App.KeyCredentials)
	return s
}

// Restore seeds the snapshot from an earlier run (for status before the first read). It does
// not seed the stale-read guard: only a read in this run does.
func (e *Engine) Restore(s Snapshot) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.snap.SyncedAt.IsZero() {
		e.snap = s
	}
}

func (e *Engine) hasRead() bool {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return e.known != nil
}

func (e *Engine) knownKeyIDs() []string {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return slices.Clone(e.known)
}

// observe records a successful read of the app.
func (e *Engine) observe(app certs.Application) {
	creds := make([]certs.KeyCredential, len(app.KeyCredentials))
	for i, c := range app.KeyCredentials {
		creds[i] = c.Clone()
	}
	app.KeyCredentials = creds
	e.snapMu.Lock()
	e.snap = Snapshot{App: app, SyncedAt: e.now()}
	e.known = keyIDs(creds)
	if e.known == nil {
		e.known = []string{}
	}
	s := e.snap
	e.snapMu.Unlock()
	if e.cfg.OnSnapshot != nil {
		e.cfg.OnSnapshot(s)
	}
}

// observeErr records a failed read, keeping the last good app.
func (e *Engine) observeErr(err error) {
	reason := ErrorReason(err)
	e.snapMu.Lock()
	e.snap.Err = &reason
	e.snap.ErrAt = e.now()
	s := e.snap
	e.snapMu.Unlock()
	if e.cfg.OnSnapshot != nil {
		e.cfg.OnSnapshot(s)
	}
}

func diffKeyIDs(before, after []certs.KeyCredential) (added, removed []certs.KeyCredential) {
	for _, c := range after {
		if indexKeyID(before, c.KeyID) < 0 {
			added = append(added, c)
		}
	}
	for _, c := range before {
		if indexKeyID(after, c.KeyID) < 0 {
			removed = append(removed, c)
		}
	}
	return added, removed
}

func describeChange(app certs.Application, added, removed []certs.KeyCredential) string {
	var parts []string
	for _, c := range added {
		parts = append(parts, fmt.Sprintf("added keyId %s (thumbprint %s, %q)", c.KeyID, c.Thumbprint(), c.DisplayName))
	}
	for _, c := range removed {
		parts = append(parts, fmt.Sprintf("removed keyId %s (thumbprint %s, %q)", c.KeyID, c.Thumbprint(), c.DisplayName))
	}
	return fmt.Sprintf("app %s changed outside certagent: %s", app.AppID, strings.Join(parts, "; "))
}
