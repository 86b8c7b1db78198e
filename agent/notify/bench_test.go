package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkExpiringDelivered measures one event's way through the outbox: recorded
// (fsynced), posted, signed, to a local webhook, marked delivered and removed (two more
// store writes).
func BenchmarkExpiringDelivered(b *testing.B) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(b, filepath.Join(b.TempDir(), "certagent.db"))
	defer st.Close()
	n := newNotifier(b, st, &fakeRotations{st: st}, srv.URL, nil, func(c *Config) {
		c.SecretFile = writeSecret(b, testSecret)
		c.Logger = slog.New(slog.DiscardHandler)
	})
	stop := start(b, n)
	defer stop()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		d := ExpiringData{AppID: "app", Thumbprint: fmt.Sprintf("T%d", i), NotAfter: time.Now().Add(24 * time.Hour), DaysLeft: 1, ThresholdDays: 1}
		if err := n.Expiring(ctx, d); err != nil {
			b.Fatal(err)
		}
		for n.Pending() > 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	if got := len(wh.deliveries()); got != b.N {
		b.Fatalf("deliveries = %d, want %d", got, b.N)
	}
}

// BenchmarkSign measures one signature of a typical body.
func BenchmarkSign(b *testing.B) {
	s, _ := ParseSecrets([]byte(testSecret))
	body := make([]byte, 900)
	for b.Loop() {
		s.Sign("msg_0123456789abcdef0123456789abcdef", 1700000000, body)
	}
}
