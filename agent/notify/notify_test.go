package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/internal/syncbuf"
)

// shortBackoff shortens the retry pauses for one test.
func shortBackoff(t *testing.T, d ...time.Duration) {
	old := Backoff
	if len(d) == 0 {
		d = []time.Duration{20 * time.Millisecond}
	}
	Backoff = d
	t.Cleanup(func() { Backoff = old })
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fakeRotations is the engine's List and Execute over a store, confirm only. confirmErr,
// when set, makes Execute fail (a store that cannot write, say).
type fakeRotations struct {
	st         *store.Store
	mu         sync.Mutex
	confirmErr error
	confirms   int
}

func (f *fakeRotations) List(ctx context.Context, flt rotation.Filter) ([]rotation.Rotation, error) {
	return f.st.List(ctx, flt)
}

func (f *fakeRotations) Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.confirmErr != nil {
		return rotation.Rotation{}, f.confirmErr
	}
	if cmd != rotation.CommandConfirm {
		return rotation.Rotation{}, fmt.Errorf("fake: %s not supported", cmd)
	}
	r, err := f.st.Get(ctx, id)
	if err != nil {
		return r, err
	}
	if r.State != rotation.StateApplied {
		return r, &rotation.StateError{ID: id, State: r.State, Command: cmd}
	}
	now := time.Now().UTC()
	r.State, r.UpdatedAt = rotation.StateConfirmed, now
	r.History = append(r.History, rotation.Event{At: now, State: rotation.StateConfirmed, Actor: actor, Note: note})
	f.confirms++
	return r, f.st.Update(ctx, r)
}

// putRotation stores a rotation in state, created at the epoch; history lists its states.
func putRotation(t testing.TB, st *store.Store, state rotation.State, at time.Time, reason *certs.Reason) rotation.Rotation {
	t.Helper()
	der := make([]byte, 600)
	rand.Read(der)
	r := rotation.Rotation{
		ID:          rotation.NewGUID(),
		State:       state,
		Certificate: certs.Certificate{Thumbprint: certs.ThumbprintSHA1(der), SHA256: certs.FingerprintSHA256(der), Subject: "CN=provider", NotAfter: at.Add(365 * 24 * time.Hour).UTC()},
		DER:         der,
		Source:      rotation.Source{Kind: rotation.SourceAPI},
		Target:      rotation.Target{AppID: "11111111-2222-3333-4444-555555555555"},
		KeyID:       rotation.NewGUID(),
		Reason:      reason,
		History:     []rotation.Event{{At: at.UTC(), State: rotation.StateApplying, Actor: "api"}, {At: at.UTC(), State: state, Actor: "agent"}},
		CreatedAt:   at.UTC(),
		UpdatedAt:   at.UTC(),
	}
	if _, _, err := st.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// setState moves r to state at at, as the engine would.
func setState(t testing.TB, st *store.Store, r *rotation.Rotation, state rotation.State, at time.Time, reason *certs.Reason) {
	t.Helper()
	r.State, r.Reason, r.UpdatedAt = state, reason, at.UTC()
	r.History = append(r.History, rotation.Event{At: at.UTC(), State: state, Actor: "agent"})
	if err := st.Update(context.Background(), *r); err != nil {
		t.Fatal(err)
	}
}

// delivery is one request the webhook received.
type delivery struct {
	header http.Header
	body   []byte
	at     time.Time
}

func (d delivery) id() string   { return d.header.Get(HeaderID) }
func (d delivery) kind() string { var e envelope; json.Unmarshal(d.body, &e); return e.Type }

// webhook is a provider's receiver: it records every request and answers with status(i)
// for the i-th (from 0).
type webhook struct {
	mu     sync.Mutex
	got    []delivery
	status func(i int, d delivery) int
	// arrived receives the index of each request, if set (buffered by the test).
	arrived chan int
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{header: r.Header.Clone(), body: body, at: time.Now()}
	w.mu.Lock()
	i := len(w.got)
	w.got = append(w.got, d)
	status := http.StatusNoContent
	if w.status != nil {
		status = w.status(i, d)
	}
	w.mu.Unlock()
	if w.arrived != nil {
		w.arrived <- i
	}
	rw.WriteHeader(status)
}

func (w *webhook) deliveries() []delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]delivery(nil), w.got...)
}

// auditLog collects audit entries.
type auditLog struct {
	mu sync.Mutex
	es []rotation.AuditEntry
}

func (a *auditLog) add(_ context.Context, e rotation.AuditEntry) {
	a.mu.Lock()
	a.es = append(a.es, e)
	a.mu.Unlock()
}

func (a *auditLog) entries() []rotation.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]rotation.AuditEntry(nil), a.es...)
}

// newNotifier builds a notifier on st posting to url.
func newNotifier(t testing.TB, st *store.Store, rots Rotations, url string, audit *auditLog, mod func(*Config)) *Notifier {
	t.Helper()
	if audit == nil {
		audit = &auditLog{}
	}
	cfg := Config{
		URL: url, Timeout: 5 * time.Second, TenantID: "contoso.onmicrosoft.com", UserAgent: "certagent/test",
		Headers:   map[string]string{"Authorization": "Bearer provider-key"},
		Rotations: rots, Store: st, Audit: audit.add,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Rescan: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs n until the returned stop is called (and at the end of the test).
func start(t testing.TB, n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeSecret(t testing.TB, secret string) string {
	p := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func stateOf(t testing.TB, st *store.Store, id string) rotation.State {
	r, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

// TestAppliedDeliveredSignedAndConfirmed: an applied rotation becomes a signed
// certificate.applied delivery that the official library verifies, carrying the certagent
// 1.x fields too, and the rotation is confirmed; the outbox is empty after.
func TestAppliedDeliveredSignedAndConfirmed(t *testing.T) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	rots := &fakeRotations{st: st}
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	audit := &auditLog{}
	n := newNotifier(t, st, rots, srv.URL+"/hooks", audit, func(c *Config) { c.SecretFile = writeSecret(t, testSecret) })
	start(t, n)
	waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	waitFor(t, "the outbox emptied", func() bool { kv, _ := st.ListMeta(context.Background(), outboxPrefix); return len(kv) == 0 })

	ds := wh.deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(ds))
	}
	d := ds[0]
	wv, _ := standardwebhooks.NewWebhook(testSecret)
	if err := wv.Verify(d.body, d.header); err != nil {
		t.Errorf("official library: Verify(delivery) = %v", err)
	}
	if d.header.Get("Authorization") != "Bearer provider-key" || d.header.Get("Content-Type") != "application/json" || d.header.Get("User-Agent") != "certagent/test" {
		t.Errorf("headers = %v", d.header)
	}
	var body map[string]any
	if err := json.Unmarshal(d.body, &body); err != nil {
		t.Fatal(err)
	}
	data, _ := body["data"].(map[string]any)
	if body["type"] != TypeCertificateApplied || body["event"] != TypeCertificateApplied || body["rotationId"] != r.ID || data["rotationId"] != r.ID ||
		data["tenantId"] != "contoso.onmicrosoft.com" || data["appId"] != r.Target.AppID || data["keyId"] != r.KeyID {
		t.Errorf("body = %s", d.body)
	}
	if ev, _ := AppliedEvent(r, Target{TenantID: "contoso.onmicrosoft.com", AppID: r.Target.AppID}); d.id() != ev.ID {
		t.Errorf("webhook-id = %s, want the event's %s", d.id(), ev.ID)
	}
	var ok bool
	for _, e := range audit.entries() {
		ok = ok || (e.Action == rotation.ActionNotify && e.Outcome == rotation.OutcomeOK && e.RotationID == r.ID)
	}
	if !ok {
		t.Errorf("audit = %+v; want a notify ok entry for the rotation", audit.entries())
	}
	if ps := n.Problems(time.Now()); len(ps) != 0 {
		t.Errorf("Problems = %+v, want none (signed, delivered)", ps)
	}
}

// TestRedeliverySameID: a failed attempt is retried after the backoff with the same
// webhook-id and body, a new timestamp, and a signature valid for each.
func TestRedeliverySameID(t *testing.T) {
	shortBackoff(t, 300*time.Millisecond)
	wh := &webhook{status: func(i int, _ delivery) int {
		if i < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	rots := &fakeRotations{st: st}
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	audit := &auditLog{}
	n := newNotifier(t, st, rots, srv.URL, audit, func(c *Config) { c.SecretFile = writeSecret(t, testSecret) })
	start(t, n)
	waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	ds := wh.deliveries()
	if len(ds) != 3 {
		t.Fatalf("deliveries = %d, want 3 (two failures, one success)", len(ds))
	}
	wv, _ := standardwebhooks.NewWebhook(testSecret)
	for i, d := range ds {
		if d.id() != ds[0].id() || !bytes.Equal(d.body, ds[0].body) {
			t.Errorf("attempt %d: id %s body %s; want the first's %s %s", i, d.id(), d.body, ds[0].id(), ds[0].body)
		}
		if err := wv.Verify(d.body, d.header); err != nil {
			t.Errorf("attempt %d: Verify = %v", i, err)
		}
		if i > 0 {
			// Backoff 300ms, jittered ±10%.
			if gap := d.at.Sub(ds[i-1].at); gap < 270*time.Millisecond {
				t.Errorf("attempt %d came %s after the previous, want at least the backoff (270ms)", i, gap)
			}
		}
	}
	failures := 0
	for _, e := range audit.entries() {
		if e.Action == rotation.ActionNotify && e.Outcome == rotation.OutcomeError {
			failures++
			if !strings.Contains(e.Message, "503") || !strings.Contains(e.Message, ds[0].id()) {
				t.Errorf("failure audit = %q, want the status and the webhook-id", e.Message)
			}
		}
	}
	if failures != 2 {
		t.Errorf("failure audit entries = %d, want 2", failures)
	}
}

// TestUnsigned: without a secret, deliveries carry webhook-id and webhook-timestamp but no
// signature, and status says so (info).
func TestUnsigned(t *testing.T) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	var logBuf syncbuf.Buffer
	n := newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil)) })
	start(t, n)
	waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	d := wh.deliveries()[0]
	if d.header.Get(HeaderSignature) != "" || d.header.Get(HeaderID) == "" || d.header.Get(HeaderTimestamp) == "" {
		t.Errorf("unsigned delivery headers = %v; want id and timestamp, no signature", d.header)
	}
	ps := n.Problems(time.Now())
	if len(ps) != 1 || ps[0].Code != health.WebhookUnsigned || ps[0].Severity != health.Info || !strings.Contains(ps[0].Message, "notify.secret_file") {
		t.Errorf("Problems = %+v, want webhook_unsigned (info) naming notify.secret_file", ps)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), "not signed") {
		t.Errorf("log = %s; want a warning at start that deliveries are not signed", logBuf.String())
	}
}

// TestConfirmAfterCrashBetweenDeliveryAndConfirm: the webhook took the event but the
// confirmation could not be written; the agent stops; the next run confirms the rotation
// from the outbox without posting again.
func TestConfirmAfterCrashBetweenDeliveryAndConfirm(t *testing.T) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "certagent.db")
	st := openStore(t, path)
	rots := &fakeRotations{st: st, confirmErr: errors.New("disk full")}
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	n := newNotifier(t, st, rots, srv.URL, nil, nil)
	stop := start(t, n)
	waitFor(t, "the delivery", func() bool { return len(wh.deliveries()) == 1 })
	waitFor(t, "a confirmation attempt", func() bool {
		kv, _ := st.ListMeta(context.Background(), outboxPrefix)
		return len(kv) == 1 && bytes.Contains(kv[0].Value, []byte(`"delivered"`))
	})
	stop()
	st.Close()

	st = openStore(t, path)
	defer st.Close()
	if got := stateOf(t, st, r.ID); got != rotation.StateApplied {
		t.Fatalf("state after the first run = %s, want applied", got)
	}
	rots = &fakeRotations{st: st}
	start(t, newNotifier(t, st, rots, srv.URL, nil, nil))
	waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	waitFor(t, "the outbox emptied", func() bool { kv, _ := st.ListMeta(context.Background(), outboxPrefix); return len(kv) == 0 })
	if n := len(wh.deliveries()); n != 1 {
		t.Errorf("deliveries = %d, want 1: the second run only confirms", n)
	}
}

// TestFailedOncePerFailure: a failed rotation is told once, however many scans and restarts
// follow; retried and failed again, it is told again, with a new webhook-id; the events of
// one rotation arrive in order.
func TestFailedOncePerFailure(t *testing.T) {
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "certagent.db")
	st := openStore(t, path)
	t0 := time.Now().Add(-time.Hour)
	reason := &certs.Reason{Code: certs.GraphDenied, Message: "Insufficient privileges"}
	r := putRotation(t, st, rotation.StateFailed, t0, reason)
	stop := start(t, newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, nil))
	waitFor(t, "the failure told", func() bool { return len(wh.deliveries()) == 1 })
	time.Sleep(200 * time.Millisecond) // several rescans
	stop()
	st.Close()

	st = openStore(t, path)
	defer st.Close()
	stop = start(t, newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, nil))
	time.Sleep(200 * time.Millisecond)
	if n := len(wh.deliveries()); n != 1 {
		t.Fatalf("deliveries after rescans and a restart = %d, want 1", n)
	}
	// Retried, failed again, retried, applied.
	setState(t, st, &r, rotation.StateApplying, t0.Add(time.Minute), nil)
	setState(t, st, &r, rotation.StateFailed, t0.Add(2*time.Minute), &certs.Reason{Code: certs.GraphUnavailable, Message: "503 after 6 attempts"})
	waitFor(t, "the second failure told", func() bool { return len(wh.deliveries()) == 2 })
	setState(t, st, &r, rotation.StateApplying, t0.Add(3*time.Minute), nil)
	setState(t, st, &r, rotation.StateApplied, t0.Add(4*time.Minute), nil)
	waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	waitFor(t, "the outbox emptied", func() bool { kv, _ := st.ListMeta(context.Background(), outboxPrefix); return len(kv) == 0 })
	stop()

	ds := wh.deliveries()
	kinds := []string{}
	for _, d := range ds {
		kinds = append(kinds, d.kind())
	}
	if want := []string{TypeRotationFailed, TypeRotationFailed, TypeCertificateApplied}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", kinds, want)
	}
	if ds[0].id() == ds[1].id() {
		t.Errorf("two failures share webhook-id %s", ds[0].id())
	}
	var body struct {
		Data FailedData `json:"data"`
	}
	json.Unmarshal(ds[0].body, &body)
	if body.Data.Reason != *reason || body.Data.RotationID != r.ID || !body.Data.FailedAt.Equal(t0.UTC().Truncate(0)) {
		t.Errorf("first failure data = %+v; want reason %v at %s", body.Data, reason, t0.UTC())
	}
}

// TestOrderPerRotation: while a rotation's earlier event is undelivered its later events
// wait; another rotation's events do not.
func TestOrderPerRotation(t *testing.T) {
	shortBackoff(t, 100*time.Millisecond)
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	t0 := time.Now().Add(-time.Hour)
	a := putRotation(t, st, rotation.StateFailed, t0, &certs.Reason{Code: certs.GraphUnavailable, Message: "x"})
	var mu sync.Mutex
	failA := true
	wh := &webhook{status: func(_ int, d delivery) int {
		mu.Lock()
		defer mu.Unlock()
		if failA && bytes.Contains(d.body, []byte(a.ID)) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	n := newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, nil)
	start(t, n)
	waitFor(t, "a's failure attempted", func() bool { return len(wh.deliveries()) >= 1 })
	// a is retried and applied while its failure is still undelivered; b is applied.
	setState(t, st, &a, rotation.StateApplying, t0.Add(time.Minute), nil)
	setState(t, st, &a, rotation.StateApplied, t0.Add(2*time.Minute), nil)
	b := putRotation(t, st, rotation.StateApplied, t0.Add(3*time.Minute), nil)
	n.Wake()
	waitFor(t, "b confirmed", func() bool { return stateOf(t, st, b.ID) == rotation.StateConfirmed })
	time.Sleep(300 * time.Millisecond)
	if got := stateOf(t, st, a.ID); got != rotation.StateApplied {
		t.Fatalf("a = %s while its failure is undelivered; want applied (its certificate.applied waits)", got)
	}
	for _, d := range wh.deliveries() {
		if bytes.Contains(d.body, []byte(a.ID)) && d.kind() != TypeRotationFailed {
			t.Fatalf("a's %s was posted before its rotation.failed was delivered", d.kind())
		}
	}
	mu.Lock()
	failA = false
	mu.Unlock()
	waitFor(t, "a confirmed", func() bool { return stateOf(t, st, a.ID) == rotation.StateConfirmed })
	var seq []string
	for _, d := range wh.deliveries() {
		if bytes.Contains(d.body, []byte(a.ID)) {
			seq = append(seq, d.kind())
		}
	}
	if seq[len(seq)-1] != TypeCertificateApplied || seq[len(seq)-2] != TypeRotationFailed {
		t.Errorf("a's deliveries = %v; want its failure (retried) then applied", seq)
	}
}

// TestGone: a 410 answer stops deliveries until restart, and status says why (critical).
func TestGone(t *testing.T) {
	wh := &webhook{status: func(int, delivery) int { return http.StatusGone }}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	n := newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, func(c *Config) { c.SecretFile = writeSecret(t, testSecret) })
	start(t, n)
	waitFor(t, "the attempt", func() bool { return len(wh.deliveries()) == 1 })
	time.Sleep(200 * time.Millisecond)
	if k := len(wh.deliveries()); k != 1 {
		t.Errorf("attempts after 410 = %d, want 1", k)
	}
	ps := n.Problems(time.Now())
	if len(ps) != 1 || ps[0].Code != health.WebhookFailing || ps[0].Severity != health.Critical || !strings.Contains(ps[0].Message, "410") {
		t.Errorf("Problems = %+v; want webhook_failing critical naming 410", ps)
	}
	if stateOf(t, st, r.ID) != rotation.StateApplied || n.Pending() != 1 {
		t.Errorf("state %s, pending %d; want applied and the event kept", stateOf(t, st, r.ID), n.Pending())
	}
}

// TestRedirectIsFailure: a 3xx is not followed (Standard Webhooks), and the message says to
// update the URL.
func TestRedirectIsFailure(t *testing.T) {
	shortBackoff(t, time.Hour)
	other := &webhook{}
	dst := httptest.NewServer(other)
	defer dst.Close()
	srv := httptest.NewServer(http.RedirectHandler(dst.URL, http.StatusPermanentRedirect))
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	audit := &auditLog{}
	start(t, newNotifier(t, st, &fakeRotations{st: st}, srv.URL, audit, nil))
	waitFor(t, "the failure audited", func() bool { return len(audit.entries()) > 0 })
	if e := audit.entries()[0]; e.Outcome != rotation.OutcomeError || !strings.Contains(e.Message, "308") || !strings.Contains(e.Message, "notify.webhook_url") {
		t.Errorf("audit = %+v; want a failure naming 308 and notify.webhook_url", e)
	}
	if len(other.deliveries()) != 0 {
		t.Error("the redirect was followed")
	}
}

// TestFailingProblem: an event undelivered FailingAfter after its first failure makes a
// warning with the last error.
func TestFailingProblem(t *testing.T) {
	shortBackoff(t, time.Hour)
	wh := &webhook{status: func(int, delivery) int { return http.StatusBadGateway }}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	n := newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, func(c *Config) { c.SecretFile = writeSecret(t, testSecret) })
	start(t, n)
	waitFor(t, "the attempt", func() bool { return len(wh.deliveries()) == 1 })
	waitFor(t, "the failure recorded", func() bool { return len(n.Problems(time.Now().Add(FailingAfter))) == 1 })
	if ps := n.Problems(time.Now()); len(ps) != 0 {
		t.Errorf("Problems right after the failure = %+v, want none yet", ps)
	}
	ps := n.Problems(time.Now().Add(FailingAfter + time.Second))
	if len(ps) != 1 || ps[0].Code != health.WebhookFailing || ps[0].Severity != health.Warning || !strings.Contains(ps[0].Message, "502") {
		t.Errorf("Problems = %+v; want webhook_failing warning naming 502", ps)
	}
}

// TestExpiringDelivered: an expiry warning is recorded, delivered once with its data, and
// removed; recording it again while it waits keeps one.
func TestExpiringDelivered(t *testing.T) {
	shortBackoff(t, 100*time.Millisecond)
	var mu sync.Mutex
	open := false
	wh := &webhook{status: func(int, delivery) int {
		mu.Lock()
		defer mu.Unlock()
		if !open {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	n := newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, nil)
	start(t, n)
	notAfter := time.Now().Add(13*24*time.Hour + time.Hour)
	d := ExpiringData{Target: "exchange", TenantID: "contoso.onmicrosoft.com", AppID: "app-1", KeyID: "key-1", Thumbprint: "ABCDEF", NotAfter: notAfter, DaysLeft: 13, ThresholdDays: 14}
	ctx := context.Background()
	for range 3 {
		if err := n.Expiring(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if p := n.Pending(); p != 1 {
		t.Errorf("Pending after recording one warning three times = %d, want 1", p)
	}
	waitFor(t, "an attempt", func() bool { return len(wh.deliveries()) >= 1 })
	mu.Lock()
	open = true
	mu.Unlock()
	waitFor(t, "the outbox emptied", func() bool { kv, _ := st.ListMeta(ctx, outboxPrefix); return len(kv) == 0 && n.Pending() == 0 })
	ds := wh.deliveries()
	last := ds[len(ds)-1]
	var body struct {
		Type      string       `json:"type"`
		Timestamp time.Time    `json:"timestamp"`
		Data      ExpiringData `json:"data"`
	}
	if err := json.Unmarshal(last.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != TypeCertificateExpiring || body.Data.ThresholdDays != 14 || body.Data.DaysLeft != 13 || body.Data.Thumbprint != "ABCDEF" || body.Data.Target != "exchange" || !body.Data.NotAfter.Equal(notAfter) {
		t.Errorf("body = %s", last.body)
	}
	// Another threshold of the same certificate is another event.
	d.ThresholdDays, d.DaysLeft = 7, 6
	e1, _ := ExpiringEvent(d, time.Now())
	if e1.ID == last.id() {
		t.Error("two thresholds share a webhook-id")
	}
}

// TestNoURL: without a URL nothing is recorded or sent and Run returns at once.
func TestNoURL(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
	defer st.Close()
	putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	n := newNotifier(t, st, &fakeRotations{st: st}, "", nil, nil)
	if err := n.Expiring(context.Background(), ExpiringData{AppID: "a", Thumbprint: "T", ThresholdDays: 7}); err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kv, _ := st.ListMeta(context.Background(), outboxPrefix); len(kv) != 0 || n.Problems(time.Now()) != nil {
		t.Errorf("outbox %d entries, problems %v; want none", len(kv), n.Problems(time.Now()))
	}
}
