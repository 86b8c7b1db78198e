package logevent

import (
	"log/slog"
	"regexp"
	"testing"
	"time"
)

// TestIDsAreStableAndDistinct holds the IDs monitoring rules match on: distinct, event IDs
// within EventCreate.exe's 1-1000 message range, MESSAGE_IDs 128-bit hex.
func TestIDsAreStableAndDistinct(t *testing.T) {
	want := map[Kind]uint32{
		Started: 100, Stopped: 101, NotConfigured: 110, ConfigInvalid: 111, StartFailed: 112,
		RotationApplied: 200, RotationFailed: 201, CertificateExpiring: 300,
	}
	if got := len(Kinds()); got != len(want) {
		t.Errorf("len(Kinds()) = %d, want %d", got, len(want))
	}
	ids, mids := map[uint32]Kind{}, map[string]Kind{}
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, k := range Kinds() {
		if k.EventID() != want[k] {
			t.Errorf("%s.EventID() = %d, want %d", k, k.EventID(), want[k])
		}
		if k.EventID() < 1 || k.EventID() > 1000 || k.EventID() == OtherErrorID {
			t.Errorf("%s.EventID() = %d: outside 1-1000 or taken", k, k.EventID())
		}
		if o, dup := ids[k.EventID()]; dup {
			t.Errorf("%s and %s share event ID %d", k, o, k.EventID())
		}
		ids[k.EventID()] = k
		if !hex.MatchString(k.MessageID()) {
			t.Errorf("%s.MessageID() = %q, want 32 hex digits", k, k.MessageID())
		}
		if o, dup := mids[k.MessageID()]; dup {
			t.Errorf("%s and %s share MESSAGE_ID %s", k, o, k.MessageID())
		}
		mids[k.MessageID()] = k
	}
	if Kind("nonsense").Known() || Kind("nonsense").EventID() != 0 {
		t.Error("an unknown kind is known")
	}
}

func TestOf(t *testing.T) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "rotation applied", 0)
	if got := Of(r); got != "" {
		t.Errorf("Of(no event) = %q", got)
	}
	r.AddAttrs(slog.String("key_id", "x"), Attr(RotationApplied))
	if got := Of(r); got != RotationApplied {
		t.Errorf("Of = %q, want %q", got, RotationApplied)
	}
	if got := In([]slog.Attr{slog.Int("n", 1), Attr(Stopped)}); got != Stopped {
		t.Errorf("In = %q, want %q", got, Stopped)
	}
}
