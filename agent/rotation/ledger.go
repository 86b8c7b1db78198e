package rotation

import (
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Graph has no ETag or version on an application (docs/graph.md, "Consistency"), and a read
// shortly after a write may come from a replica that has not seen it. A read-modify-write
// built on such a read puts back a credential a person just removed, or drops one a person
// just added. The Ledger is what the engine remembers about the app's credentials between
// reads, so that it can tell a read that is behind from one that shows a real change:
//
//   - a credential it has seen on the app (live) and that a read lacks: the read is behind,
//     or a person removed it; only several reads in a row lacking it make it gone;
//   - a credential it has seen removed (gone) and that a read shows: the read is behind;
//   - a credential it wrote itself, acknowledged by Graph (written), and that a read lacks:
//     the read is behind, never a reason to write again.
//
// The ledger is part of the Snapshot, so it survives restarts. It is not safe for concurrent
// use; the engine guards it.

// KeyState is what the ledger knows about one keyId.
type KeyState string

const (
	// KeyLive: seen on the app by a read the engine trusted.
	KeyLive KeyState = "live"
	// KeyGone: seen on the app once, then missing from several reads in a row.
	KeyGone KeyState = "gone"
	// KeyWritten: sent by this agent in a write Graph acknowledged, not yet seen by a read.
	KeyWritten KeyState = "written"
	// KeyRetiring: being removed by this agent (retire); a read may show it or not until the
	// removal is read back.
	KeyRetiring KeyState = "retiring"
)

// LedgerEntry is the ledger's knowledge of one credential.
type LedgerEntry struct {
	State      KeyState `json:"state"`
	Thumbprint string   `json:"thumbprint,omitempty"`
	// Since is when the credential entered State.
	Since time.Time `json:"since"`
	// FirstSeen is when a read first showed it on the app (zero in ledgers saved before it
	// was kept: Since stands in).
	FirstSeen time.Time `json:"firstSeen,omitzero"`
}

// Seen returns when the credential was first seen on the app.
func (e LedgerEntry) Seen() time.Time {
	if e.FirstSeen.IsZero() {
		return e.Since
	}
	return e.FirstSeen
}

// Ledger maps keyIds (lower case) to what the engine knows of them.
type Ledger struct {
	Keys map[string]LedgerEntry `json:"keys,omitempty"`
}

// retireGrace is how long a credential being retired may still show on reads before the
// ledger takes it for live again: the removal did not land (the agent stopped before it
// wrote, or the write failed), and the credential counts as on the app once more.
const retireGrace = 2 * time.Minute

// goneRetention is how long a gone keyId is remembered (a read that old cannot be served by
// any replica).
const goneRetention = 30 * 24 * time.Hour

// Verdict is what the ledger makes of one read.
type Verdict struct {
	// Behind lists keyIds showing the read is behind: gone ones it shows, written ones it lacks.
	Behind []string
	// Missing lists live keyIds the read lacks: behind, or removed by a person.
	Missing []string
	// New lists keyIds the ledger does not know: added outside the agent (or by this agent
	// in a write whose answer was lost).
	New []string
}

// Consistent reports whether the read may be the app's current state.
func (v Verdict) Consistent() bool { return len(v.Behind) == 0 && len(v.Missing) == 0 }

func lower(id string) string { return strings.ToLower(id) }

// Judge compares a read with the ledger.
func (l *Ledger) Judge(app certs.Application) Verdict {
	var v Verdict
	present := map[string]bool{}
	for _, c := range app.KeyCredentials {
		id := lower(c.KeyID)
		present[id] = true
		e, ok := l.Keys[id]
		switch {
		case !ok:
			v.New = append(v.New, id)
		case e.State == KeyGone:
			v.Behind = append(v.Behind, id)
		}
	}
	// A retiring credential may or may not show: neither makes the read behind.
	for id, e := range l.Keys {
		if present[id] {
			continue
		}
		switch e.State {
		case KeyWritten:
			v.Behind = append(v.Behind, id)
		case KeyLive:
			v.Missing = append(v.Missing, id)
		}
	}
	slices.Sort(v.Behind)
	slices.Sort(v.Missing)
	slices.Sort(v.New)
	return v
}

func (l *Ledger) set(id string, e LedgerEntry) {
	if l.Keys == nil {
		l.Keys = map[string]LedgerEntry{}
	}
	l.Keys[lower(id)] = e
}

// Learn records a trusted read: every credential on it is live, except one being retired
// for less than retireGrace (a replica may still show it). It returns the credentials being
// retired that the read lacks: their removal is read back, and they are now gone.
func (l *Ledger) Learn(app certs.Application, now time.Time) (retired []LedgerEntryID) {
	present := map[string]bool{}
	for _, c := range app.KeyCredentials {
		present[lower(c.KeyID)] = true
	}
	for id, e := range l.Keys {
		if e.State == KeyRetiring && !present[id] {
			retired = append(retired, LedgerEntryID{KeyID: id, LedgerEntry: e})
			e.State, e.Since = KeyGone, now
			l.Keys[id] = e
		}
	}
	slices.SortFunc(retired, func(a, b LedgerEntryID) int { return strings.Compare(a.KeyID, b.KeyID) })
	for _, c := range app.KeyCredentials {
		e, ok := l.Keys[lower(c.KeyID)]
		if ok && (e.State == KeyLive || e.State == KeyRetiring && now.Sub(e.Since) <= retireGrace) {
			continue
		}
		first := now
		if ok && e.State == KeyRetiring {
			first = e.Seen() // the same credential, still on the app since then
		}
		l.set(c.KeyID, LedgerEntry{State: KeyLive, Thumbprint: c.Thumbprint(), Since: now, FirstSeen: first})
	}
	l.prune(now)
	return retired
}

// Gone records that keyId was removed from the app.
func (l *Ledger) Gone(keyID string, now time.Time) {
	e := l.Keys[lower(keyID)]
	e.State, e.Since = KeyGone, now
	l.set(keyID, e)
}

// Revive records that a gone keyId is on the app again (a person put it back with the same
// keyId, through Graph).
func (l *Ledger) Revive(keyID string, now time.Time) {
	e := l.Keys[lower(keyID)]
	e.State, e.Since, e.FirstSeen = KeyLive, now, now
	l.set(keyID, e)
}

// Retiring records that the agent is about to remove keyID itself.
func (l *Ledger) Retiring(keyID string, now time.Time) {
	e := l.Keys[lower(keyID)]
	e.FirstSeen = e.Seen()
	e.State, e.Since = KeyRetiring, now
	l.set(keyID, e)
}

// Wrote records a write Graph acknowledged: its credentials that the ledger does not hold
// as live become written.
func (l *Ledger) Wrote(creds []certs.KeyCredential, now time.Time) {
	for _, c := range creds {
		if e, ok := l.Keys[lower(c.KeyID)]; ok && e.State == KeyLive {
			continue
		}
		l.set(c.KeyID, LedgerEntry{State: KeyWritten, Thumbprint: c.Thumbprint(), Since: now})
	}
}

// Forget drops a written keyId whose write turned out not to have landed, so that it no
// longer makes reads look behind.
func (l *Ledger) Forget(keyID string) {
	if e, ok := l.Keys[lower(keyID)]; ok && e.State == KeyWritten {
		delete(l.Keys, lower(keyID))
	}
}

// State returns what the ledger knows of keyId ("" when nothing).
func (l *Ledger) State(keyID string) KeyState { return l.Keys[lower(keyID)].State }

// Clone returns a deep copy.
func (l *Ledger) Clone() Ledger {
	if l == nil || l.Keys == nil {
		return Ledger{}
	}
	out := Ledger{Keys: make(map[string]LedgerEntry, len(l.Keys))}
	for k, v := range l.Keys {
		out.Keys[k] = v
	}
	return out
}

func (l *Ledger) prune(now time.Time) {
	for id, e := range l.Keys {
		if e.State == KeyGone && now.Sub(e.Since) > goneRetention {
			delete(l.Keys, id)
		}
	}
}
