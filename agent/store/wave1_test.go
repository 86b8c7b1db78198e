package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aucloud/certagent/agent/rotation"
)

// wave1App is the app of the rotations in testdata/wave1.db, a state file the first released
// agent (schema version 1, commit ff41597) wrote: three rotations (confirmed, applied,
// pending_approval) and their audit entries.
const wave1App = "33333333-3333-4333-8333-333333333333"

// An agent upgraded from the first release opens its old state file: the audit is chained,
// the certificates are indexed by app, and nothing is lost or changed on the way.
func TestWaveOneFileMigrates(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "wave1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "certagent.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if ro.Schema() != 1 {
		t.Fatalf("testdata/wave1.db is schema %d, want 1", ro.Schema())
	}
	before, err := ro.List(context.Background(), rotation.Filter{})
	ro.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, quiet())
	if err != nil {
		t.Fatalf("opening the wave-one file: %v", err)
	}
	ctx := context.Background()
	if s.Schema() != SchemaVersion {
		t.Errorf("schema after Open = %d, want %d", s.Schema(), SchemaVersion)
	}
	after, err := s.List(ctx, rotation.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	wantStates := []rotation.State{rotation.StateConfirmed, rotation.StateApplied, rotation.StatePendingApproval}
	if len(after) != len(wantStates) || len(before) != len(after) {
		t.Fatalf("rotations after migration = %d (before %d), want %d", len(after), len(before), len(wantStates))
	}
	for i, r := range after {
		if r.State != wantStates[i] || r.Target.AppID != wave1App || r.ID != before[i].ID ||
			r.Certificate != before[i].Certificate || string(r.DER) != string(before[i].DER) || len(r.History) != len(before[i].History) {
			t.Errorf("rotation %d after migration = %s %s on %s; before it was %s %s", i, r.ID, r.State, r.Target.AppID, before[i].ID, before[i].State)
		}
		got, err := s.ByThumbprint(ctx, wave1App, r.Certificate.Thumbprint)
		if err != nil || got.ID != r.ID {
			t.Errorf("ByThumbprint(%s) after migration = %s, %v; want %s", r.Certificate.Thumbprint, got.ID, err, r.ID)
		}
	}

	// The old index no longer decides: the same certificate may now go to a second app, and
	// is still a duplicate on the first.
	dup := after[0].Clone()
	dup.ID = rotation.NewGUID()
	if got, created, err := s.Create(ctx, dup); err != nil || created || got.ID != after[0].ID {
		t.Errorf("Create(same certificate, same app) = %s, created %v, %v; want the existing %s", got.ID, created, err, after[0].ID)
	}
	dup.Target.AppID = rotation.NewGUID()
	if _, created, err := s.Create(ctx, dup); err != nil || !created {
		t.Errorf("Create(same certificate, another app) = created %v, %v; want a new rotation", created, err)
	}
	s.Close()

	rep := reportOf(t, path)
	if !rep.Intact() || rep.Store.Entries == 0 {
		t.Errorf("audit after migration: %+v", rep)
	}
}
