package store

import (
	"context"
	"testing"

	"github.com/aucloud/certagent/agent/rotation"
)

// TestCachedScan checks that Scan shows what List does, and that a rotation it showed is not
// changed by a later write (callers keep what they were shown).
func TestCachedScan(t *testing.T) {
	ctx := context.Background()
	c := NewCached(openTemp(t))
	a, b := testRotation(), testRotation()
	for _, r := range []rotation.Rotation{a, b} {
		if _, _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var shown []*rotation.Rotation
	if err := c.Scan(ctx, func(r *rotation.Rotation) { shown = append(shown, r) }); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, rotation.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(shown) != 2 || len(list) != 2 || shown[0].ID != list[0].ID || shown[1].ID != list[1].ID {
		t.Fatalf("Scan showed %d rotations, List %d, or in another order", len(shown), len(list))
	}
	first := shown[0]
	u := list[0]
	u.State = rotation.StateApplied
	u.History = append(u.History, rotation.Event{At: epoch, State: rotation.StateApplied, Actor: "engine"})
	if err := c.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	if first.State != rotation.StateApplying || len(first.History) != 1 {
		t.Errorf("a rotation Scan showed changed after a write: state %s, %d events", first.State, len(first.History))
	}
	var states []rotation.State
	c.Scan(ctx, func(r *rotation.Rotation) { states = append(states, r.State) })
	if len(states) != 2 || states[0] != rotation.StateApplied {
		t.Errorf("Scan after the write shows states %v, want the update first", states)
	}
}
