package rotationtest

import (
	"context"
	"errors"
	"testing"

	"github.com/aucloud/certagent/agent/rotation"
)

func TestMemStore(t *testing.T) {
	TestStore(t, func(t *testing.T) rotation.Store { return NewMemStore() })
}

func TestMemStoreBeforeWrite(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	boom := errors.New("disk full")
	var calls []string
	m.BeforeWrite = func(method string) error {
		calls = append(calls, method)
		return boom
	}
	r := newRotation(suiteEpoch)
	if _, _, err := m.Create(ctx, r, entry(rotation.ActionRotationState, "x")); !errors.Is(err, boom) {
		t.Errorf("Create = %v, want %v", err, boom)
	}
	if err := m.Append(ctx, entry(rotation.ActionAgentStart, "x")); !errors.Is(err, boom) {
		t.Errorf("Append = %v, want %v", err, boom)
	}
	m.BeforeWrite = nil
	mustCreate(t, m, r)
	m.BeforeWrite = func(method string) error {
		calls = append(calls, method)
		return boom
	}
	changed := r.Clone()
	changed.State = rotation.StateApplied
	if err := m.Update(ctx, changed); !errors.Is(err, boom) {
		t.Errorf("Update = %v, want %v", err, boom)
	}
	if want := []string{"Create", "Append", "Update"}; len(calls) != 3 || calls[0] != want[0] || calls[1] != want[1] || calls[2] != want[2] {
		t.Errorf("BeforeWrite calls = %v, want %v", calls, want)
	}
	got, err := m.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, "Get after a failed Update", got, r)
	if log := allAudit(t, m); len(log) != 0 {
		t.Errorf("audit log after failed writes = %+v, want empty", log)
	}
}
