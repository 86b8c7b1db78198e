package expiry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/store"
)

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func cert(app, thumb string, notAfter time.Time) Cert {
	return Cert{Target: "exchange", TenantID: "contoso.onmicrosoft.com", AppID: app, KeyID: "key-" + thumb, Thumbprint: thumb, NotAfter: notAfter}
}

func days(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, fmt.Sprintf("%s:%d", w.Thumbprint, w.ThresholdDays()))
	}
	return out
}

func TestDecide(t *testing.T) {
	now := epoch
	in := func(d float64) time.Time { return now.Add(time.Duration(d * float64(Day))) }
	tests := []struct {
		name  string
		certs []Cert
		fired Fired
		want  []string
		// wantFired is the Days of each Key after, when set.
		wantFired map[string][]int
	}{
		{"far away", []Cert{cert("A", "T1", in(31))}, nil, nil, map[string][]int{}},
		{"exactly 30 days", []Cert{cert("A", "T1", in(30))}, nil, []string{"T1:30"}, map[string][]int{"A/T1": {30}}},
		{"29 days", []Cert{cert("A", "T1", in(29))}, nil, []string{"T1:30"}, nil},
		{"30 fired, 20 days", []Cert{cert("A", "T1", in(20))}, Fired{"A/T1": {AppID: "A", Days: []int{30}}}, nil, map[string][]int{"A/T1": {30}}},
		{"30 fired, 13 days", []Cert{cert("A", "T1", in(13))}, Fired{"A/T1": {AppID: "A", Days: []int{30}}}, []string{"T1:14"}, map[string][]int{"A/T1": {30, 14}}},
		{"first seen 5 days before: 7 only, all three fired", []Cert{cert("A", "T1", in(5))}, nil, []string{"T1:7"}, map[string][]int{"A/T1": {30, 14, 7}}},
		{"12 hours left", []Cert{cert("A", "T1", in(0.5))}, Fired{"A/T1": {AppID: "A", Days: []int{30, 14, 7}}}, []string{"T1:1"}, map[string][]int{"A/T1": {30, 14, 7, 1}}},
		{"expired: nothing", []Cert{cert("A", "T1", in(-1))}, nil, nil, map[string][]int{}},
		{"a newer one on the app: the old one is superseded", []Cert{cert("A", "OLD", in(5)), cert("A", "NEW", in(300))}, nil, nil, map[string][]int{}},
		{"two apps, each its newest", []Cert{cert("A", "T1", in(10)), cert("B", "T2", in(2)), cert("B", "T3", in(3))}, nil, []string{"T1:14", "T3:7"}, nil},
		{"state of a certificate gone from its app is dropped; other apps' kept",
			[]Cert{cert("A", "T9", in(100))},
			Fired{"A/T1": {AppID: "A", Days: []int{30}}, "Z/T5": {AppID: "Z", Days: []int{30}}},
			nil, map[string][]int{"Z/T5": {30}}},
		{"no thumbprint: the keyId", []Cert{{AppID: "A", KeyID: "K1", NotAfter: in(3)}}, nil, []string{":7"}, map[string][]int{"A/key-k1": {30, 14, 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := Decide(now, tt.certs, DefaultThresholds, tt.fired)
			if !slices.Equal(days(got), tt.want) {
				t.Errorf("Decide warnings = %v, want %v", days(got), tt.want)
			}
			if tt.wantFired != nil {
				gotFired := map[string][]int{}
				for k, f := range next {
					gotFired[k] = f.Days
				}
				if fmt.Sprint(gotFired) != fmt.Sprint(tt.wantFired) {
					t.Errorf("Decide fired = %v, want %v", gotFired, tt.wantFired)
				}
			}
		})
	}
	// DaysLeft and the input left alone.
	in0 := Fired{"A/T1": {AppID: "A", Days: []int{30}}}
	ws, _ := Decide(now, []Cert{cert("A", "T1", in(13.5))}, DefaultThresholds, in0)
	if len(ws) != 1 || ws[0].DaysLeft != 13 {
		t.Errorf("Decide = %+v, want one warning with 13 days left", ws)
	}
	if !slices.Equal(in0["A/T1"].Days, []int{30}) {
		t.Errorf("Decide changed its input: %v", in0)
	}
	if ws, _ := Decide(now, []Cert{cert("A", "T1", in(1))}, []time.Duration{}, nil); len(ws) != 0 {
		t.Errorf("Decide with no thresholds = %v, want none", ws)
	}
}

// records captures log records.
type records struct {
	mu sync.Mutex
	rs []map[string]any
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]any{"msg": rec.Message, "level": rec.Level.String()}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	r.rs = append(r.rs, m)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) expiring() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, m := range r.rs {
		if m["event"] == LogEvent {
			out = append(out, m)
		}
	}
	return out
}

// TestThresholdsFireOnceAcrossRestarts walks a fake clock from 40 days before expiry to
// the end, checking every 6 hours and restarting (a new store handle and checker) every
// day: each threshold warns exactly once, to the log with the record the Event Log routing
// reads, and to the webhook.
func TestThresholdsFireOnceAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	notAfter := epoch.Add(40 * Day)
	now := epoch
	list := []Cert{cert("A", "ABCDEF0123", notAfter), cert("A", "OLDER", notAfter.Add(-Day))}
	logs := &records{}
	var notified []Warning
	var st *store.Store
	var c *Checker
	open := func() {
		var err error
		if st, err = store.Open(path, store.Logger(slog.New(slog.DiscardHandler))); err != nil {
			t.Fatal(err)
		}
		if c, err = New(Config{Store: st, Logger: slog.New(logs), Now: func() time.Time { return now },
			Notify: func(_ context.Context, w Warning) error { notified = append(notified, w); return nil }}); err != nil {
			t.Fatal(err)
		}
	}
	open()
	ctx := context.Background()
	for ; now.Before(notAfter.Add(Day)); now = now.Add(6 * time.Hour) {
		if now.Sub(epoch)%Day == 0 {
			st.Close()
			open()
		}
		if _, err := c.Check(ctx, list); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if got, want := days(notified), []string{"ABCDEF0123:30", "ABCDEF0123:14", "ABCDEF0123:7", "ABCDEF0123:1"}; !slices.Equal(got, want) {
		t.Fatalf("webhook warnings = %v, want %v", got, want)
	}
	recs := logs.expiring()
	if len(recs) != 4 {
		t.Fatalf("log records with event=%s = %d, want 4: %v", LogEvent, len(recs), recs)
	}
	r := recs[1]
	if r["level"] != "WARN" || r["target"] != "exchange" || r["thumbprint"] != "ABCDEF0123" || r["days_left"] != int64(14) || r["threshold_days"] != int64(14) || r["app_id"] != "A" {
		t.Errorf("log record = %v", r)
	}
	if w := notified[0]; w.DaysLeft != 30 || w.TenantID != "contoso.onmicrosoft.com" || !w.NotAfter.Equal(notAfter) {
		t.Errorf("first warning = %+v, want 30 days left (checked exactly at the threshold)", w)
	}
}

// TestNotifyFailureRetries: a warning the webhook could not record does not count as given;
// the next check gives it again.
func TestNotifyFailureRetries(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "certagent.db"), store.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fail := true
	calls := 0
	logs := &records{}
	c, _ := New(Config{Store: st, Logger: slog.New(logs), Now: func() time.Time { return epoch },
		Notify: func(context.Context, Warning) error {
			calls++
			if fail {
				return errors.New("store full")
			}
			return nil
		}})
	list := []Cert{cert("A", "T1", epoch.Add(10*Day))}
	ctx := context.Background()
	if ws, err := c.Check(ctx, list); err == nil || len(ws) != 0 || !strings.Contains(err.Error(), "store full") {
		t.Fatalf("Check with a failing Notify = %v, %v; want the error and no warning given", ws, err)
	}
	if len(logs.expiring()) != 0 {
		t.Error("logged a warning the webhook did not take")
	}
	fail = false
	if ws, err := c.Check(ctx, list); err != nil || len(ws) != 1 {
		t.Fatalf("Check after = %v, %v; want the warning", ws, err)
	}
	if ws, _ := c.Check(ctx, list); len(ws) != 0 || calls != 2 {
		t.Errorf("third Check = %v, Notify calls %d; want nothing more", ws, calls)
	}
}

// TestRun: Run checks at start and when woken.
func TestRun(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "certagent.db"), store.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	list := []Cert{cert("A", "T1", time.Now().Add(100*Day))}
	got := make(chan Warning, 4)
	c, _ := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), Interval: time.Hour,
		Certificates: func() []Cert { mu.Lock(); defer mu.Unlock(); return slices.Clone(list) },
		Notify:       func(_ context.Context, w Warning) error { got <- w; return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	mu.Lock()
	list = []Cert{cert("A", "T1", time.Now().Add(3*Day))}
	mu.Unlock()
	c.Wake()
	select {
	case w := <-got:
		if w.ThresholdDays() != 7 {
			t.Errorf("warning = %+v, want 7 days", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no warning after Wake")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
