package rotation

import (
	"context"
	"fmt"
	"slices"

	"github.com/aucloud/certagent/agent/certs"
)

// Sync reads the target app until a view settles (see ReadApp), updates the snapshot, and
// records in the audit log any credential that appeared or disappeared without certagent
// writing it.
func (e *Engine) Sync(ctx context.Context) (Snapshot, error) {
	e.graphMu.Lock()
	defer e.graphMu.Unlock()
	ledger := e.ledger()
	app, changes, err := ReadApp(ctx, e.cfg.Graph, e.cfg.AppID, &ledger, e.cfg.Read)
	e.setLedger(ledger)
	e.recordChanges(ctx, changes)
	if err != nil {
		if ctx.Err() == nil { // a stop is not a Graph failure
			e.observeErr(err)
		}
		return e.Snapshot(), err
	}
	e.observe(app)
	return e.Snapshot(), nil
}

// recordChanges writes what reads showed changing outside the agent to the log and the
// audit log.
func (e *Engine) recordChanges(ctx context.Context, c Changes) {
	for _, k := range c.Retired {
		e.audit(ctx, AuditEntry{Action: ActionRetire, Actor: ActorAgent, Outcome: OutcomeOK, KeyID: k.KeyID,
			Message: fmt.Sprintf("retired keyId %s (thumbprint %s) from app %s: read back without it after the agent stopped during the retire", k.KeyID, k.Thumbprint, e.cfg.AppID)})
		e.log.Info("certificate retired (read back after a restart)", "app_id", e.cfg.AppID, "key_id", k.KeyID)
	}
	if c.Empty() {
		return
	}
	e.log.Info("app credentials changed outside certagent", "app_id", e.cfg.AppID, "added", len(c.Added), "removed", len(c.Removed), "overwritten", len(c.Overwritten))
	e.audit(ctx, AuditEntry{Action: ActionExternalChange, Actor: ActorAgent, Outcome: OutcomeOK, Message: c.Describe(e.cfg.AppID)})
}

// Snapshot returns the target app as last read. SyncedAt is zero before the first read.
func (e *Engine) Snapshot() Snapshot {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	s := e.snap
	s.App.KeyCredentials = slices.Clone(s.App.KeyCredentials)
	s.Ledger = s.Ledger.Clone()
	return s
}

// Restore seeds the snapshot from an earlier run: status has an answer before the first
// read, and the ledger judges the first reads.
func (e *Engine) Restore(s Snapshot) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.snap.SyncedAt.IsZero() {
		e.snap = s
		e.snap.Ledger = s.Ledger.Clone()
		e.snapChanges.Add(1)
	}
}

// ledger returns a copy of the engine's ledger. Callers hold graphMu.
func (e *Engine) ledger() Ledger {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return e.snap.Ledger.Clone()
}

// persistLedger stores l and saves the snapshot with it at once (OnSnapshot), so that a
// crash right after cannot forget what the ledger now expects. Callers hold graphMu.
func (e *Engine) persistLedger(l Ledger) {
	e.setLedger(l)
	if e.cfg.OnSnapshot != nil {
		e.cfg.OnSnapshot(e.Snapshot())
	}
}

// RetireDue retires what automatic retiring allows now (nothing unless RetirePolicy.Enabled
// and not DryRun). The target calls it after each read of the app.
func (e *Engine) RetireDue(ctx context.Context) { e.retireDue(ctx) }

// setLedger stores l as the engine's ledger. Callers hold graphMu.
func (e *Engine) setLedger(l Ledger) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	e.snap.Ledger = l
	e.snapChanges.Add(1)
}

// observe records a successful read of the app.
func (e *Engine) observe(app certs.Application) {
	creds := make([]certs.KeyCredential, len(app.KeyCredentials))
	for i, c := range app.KeyCredentials {
		creds[i] = c.Clone()
	}
	app.KeyCredentials = creds
	e.snapMu.Lock()
	e.snap = Snapshot{App: app, SyncedAt: e.now(), Ledger: e.snap.Ledger}
	s := e.snap
	s.Ledger = s.Ledger.Clone()
	e.snapChanges.Add(1)
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
	s.Ledger = s.Ledger.Clone()
	e.snapChanges.Add(1)
	e.snapMu.Unlock()
	if e.cfg.OnSnapshot != nil {
		e.cfg.OnSnapshot(s)
	}
}
