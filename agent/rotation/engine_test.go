package rotation_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/rotation/rotationtest"
	"github.com/aucloud/certagent/internal/certtest"
)

const (
	appID    = "11111111-1111-4111-8111-111111111111"
	objectID = "22222222-2222-4222-8222-222222222222"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture is an engine over a fake tenant and a memory store, with a clock that does not
// move and a Sleep that records instead of waiting.
type fixture struct {
	t      *testing.T
	apps   *rotationtest.FakeApps
	store  *rotationtest.MemStore
	engine *rotation.Engine
	old    certtest.Cert

	mu     sync.Mutex
	sleeps []time.Duration // the engine's backoff between attempts
	// readSleeps are the pauses between reads of one view (ReadOptions).
	readSleeps []time.Duration
}

func newFixture(t *testing.T, edit func(*rotation.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, apps: rotationtest.NewFakeApps(), store: rotationtest.NewMemStore()}
	f.old = certtest.New(now, certtest.CommonName("provider 2026"), certtest.Validity(now.Add(-340*24*time.Hour), now.Add(20*24*time.Hour)))
	f.apps.AddApp(certs.Application{AppID: appID, ObjectID: objectID, DisplayName: "Veeam", KeyCredentials: []certs.KeyCredential{{
		KeyID: "33333333-3333-4333-8333-333333333333", Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: f.old.DER, DisplayName: "old",
	}}})
	cfg := rotation.Config{
		Store:       f.store,
		Graph:       f.apps,
		AppID:       appID,
		Policy:      certpolicy.Default(),
		DisplayName: func(c certs.Certificate, _ time.Time) string { return "certagent " + c.CommonName() },
		Logger:      slog.New(slog.DiscardHandler),
		Now:         func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.sleeps = append(f.sleeps, d)
			f.mu.Unlock()
			return ctx.Err()
		},
	}
	cfg.Read.Sleep = func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.readSleeps = append(f.readSleeps, d)
		f.mu.Unlock()
		return ctx.Err()
	}
	if edit != nil {
		edit(&cfg)
	}
	e, err := rotation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.engine = e
	return f
}

// run runs the engine until every rotation left applying is settled.
func (f *fixture) run() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.engine.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, _ := f.store.List(context.Background(), rotation.Filter{State: rotation.StateApplying})
		if len(rs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("rotations still applying: %+v", rs)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		f.t.Errorf("Run = %v", err)
	}
}

func (f *fixture) submit(c certtest.Cert) rotation.Rotation {
	f.t.Helper()
	x, _ := x509.ParseCertificate(c.DER)
	r, _, err := f.engine.Submit(context.Background(), rotation.Submission{
		Cert: certs.FactsOf(x), DER: c.DER, Source: rotation.Source{Kind: rotation.SourceAPI}, Actor: "test",
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) get(id string) rotation.Rotation {
	f.t.Helper()
	r, err := f.store.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) count(der []byte) int {
	n := 0
	for _, c := range f.apps.Credentials(appID) {
		if c.Thumbprint() == certs.ThumbprintSHA1(der) {
			n++
		}
	}
	return n
}

func newCert(cn string) certtest.Cert {
	return certtest.New(now, certtest.CommonName(cn))
}

func TestApplyAddsAndKeepsOld(t *testing.T) {
	f := newFixture(t, nil)
	c := newCert("new")
	r := f.submit(c)
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateApplied || got.AlreadyPresent || got.KeyID != got.IntentKeyID {
		t.Fatalf("rotation = %s alreadyPresent %v keyId %s intent %s", got.State, got.AlreadyPresent, got.KeyID, got.IntentKeyID)
	}
	if f.count(c.DER) != 1 || f.count(f.old.DER) != 1 {
		t.Errorf("app = new %d, old %d; want 1 and 1", f.count(c.DER), f.count(f.old.DER))
	}
	// Two reads that agree, one write, one verify read.
	if f.apps.Gets() != 3 || f.apps.Replaces() != 1 {
		t.Errorf("Graph calls = %d gets, %d replaces; want 3 and 1", f.apps.Gets(), f.apps.Replaces())
	}
	if got.Target.ObjectID != objectID || got.Target.DisplayName != "Veeam" {
		t.Errorf("target = %+v", got.Target)
	}
	var creds = f.apps.Credentials(appID)
	if dn := creds[len(creds)-1].DisplayName; dn != "certagent new" {
		t.Errorf("displayName = %q", dn)
	}
}

// TestArchivedDuringWriteIsKept: the drop folder records where it filed a rotation's file
// while the engine is writing it to the app; the engine's later updates keep that name.
func TestArchivedDuringWriteIsKept(t *testing.T) {
	for _, transient := range []bool{false, true} {
		f := newFixture(t, nil)
		c := newCert("filed meanwhile")
		x, _ := x509.ParseCertificate(c.DER)
		r, _, err := f.engine.Submit(context.Background(), rotation.Submission{
			Cert: certs.FactsOf(x), DER: c.DER, Source: rotation.Source{Kind: rotation.SourceDropFolder, FileName: "p.cer"}, Actor: "intake",
		})
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error {
			calls++
			if calls == 1 {
				if err := f.engine.Archived(context.Background(), r.ID, "20261125T193000Z_p.cer"); err != nil {
					t.Fatal(err)
				}
				if transient {
					return rotationtest.Unavailable()
				}
			}
			return nil
		}
		f.run()
		got := f.get(r.ID)
		if got.State != rotation.StateApplied || got.Source.ArchivedAs != "20261125T193000Z_p.cer" {
			t.Errorf("transient %v: rotation = %s, archived as %q; want applied, archived as 20261125T193000Z_p.cer", transient, got.State, got.Source.ArchivedAs)
		}
	}
}

func TestDuplicateSubmissionWritesNothing(t *testing.T) {
	f := newFixture(t, nil)
	c := newCert("dup")
	r1 := f.submit(c)
	f.run()
	x, _ := x509.ParseCertificate(c.DER)
	r2, created, err := f.engine.Submit(context.Background(), rotation.Submission{Cert: certs.FactsOf(x), DER: c.DER, Source: rotation.Source{Kind: rotation.SourceDropFolder, FileName: "again.cer"}, Actor: "intake"})
	if err != nil || created || r2.ID != r1.ID {
		t.Fatalf("second Submit = %s created %v err %v", r2.ID, created, err)
	}
	f.run()
	if f.apps.Replaces() != 1 || f.count(c.DER) != 1 {
		t.Errorf("after a duplicate: %d replaces, certificate %d times; want 1 and 1", f.apps.Replaces(), f.count(c.DER))
	}
	audit, _ := f.store.Audit(context.Background(), rotation.AuditQuery{})
	if audit[0].Action != rotation.ActionRotationDup || audit[0].File != "again.cer" {
		t.Errorf("newest audit entry = %+v, want the duplicate", audit[0])
	}
}

func TestAlreadyPresent(t *testing.T) {
	f := newFixture(t, nil)
	c := newCert("by hand")
	creds := append(f.apps.Credentials(appID), certs.KeyCredential{KeyID: "44444444-4444-4444-8444-444444444444", Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: c.DER})
	f.apps.SetCredentials(appID, creds)
	r := f.submit(c)
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateApplied || !got.AlreadyPresent || got.KeyID != "44444444-4444-4444-8444-444444444444" {
		t.Errorf("rotation = %s alreadyPresent %v keyId %s", got.State, got.AlreadyPresent, got.KeyID)
	}
	if f.apps.Replaces() != 0 {
		t.Errorf("%d replaces, want 0", f.apps.Replaces())
	}
}

// TestIntentStoredBeforeWrite: when the PATCH goes out, the store already holds the keyId it
// carries, so a crash at any later instant can be settled.
func TestIntentStoredBeforeWrite(t *testing.T) {
	f := newFixture(t, nil)
	c := newCert("intent")
	var r rotation.Rotation
	f.apps.BeforeReplace = func(ctx context.Context, _ string, creds []certs.KeyCredential) error {
		stored, err := f.store.Get(ctx, r.ID)
		if err != nil {
			return err
		}
		last := creds[len(creds)-1]
		if stored.IntentKeyID == "" || stored.IntentKeyID != last.KeyID {
			t.Errorf("at the write the store holds intent %q; the write carries %q", stored.IntentKeyID, last.KeyID)
		}
		return nil
	}
	r = f.submit(c)
	f.run()
	if f.get(r.ID).State != rotation.StateApplied {
		t.Fatal("not applied")
	}
}

// lostAnswer applies a Replace and then loses the answer, as when the connection dies after
// Graph committed the write.
type lostAnswer struct {
	*rotationtest.FakeApps
	lose int
}

func (l *lostAnswer) Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error {
	if err := l.FakeApps.Replace(ctx, objectID, creds); err != nil {
		return err
	}
	if l.lose > 0 {
		l.lose--
		return rotationtest.Unavailable()
	}
	return nil
}

func TestLostAnswerIsNotWrittenTwice(t *testing.T) {
	var la *lostAnswer
	f := newFixture(t, func(c *rotation.Config) {
		la = &lostAnswer{FakeApps: c.Graph.(*rotationtest.FakeApps), lose: 1}
		c.Graph = la
	})
	c := newCert("lost answer")
	r := f.submit(c)
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateApplied || got.AlreadyPresent {
		t.Fatalf("rotation = %s alreadyPresent %v", got.State, got.AlreadyPresent)
	}
	if f.count(c.DER) != 1 || f.count(f.old.DER) != 1 {
		t.Errorf("app = new %d, old %d; want 1 and 1", f.count(c.DER), f.count(f.old.DER))
	}
}

// TestRestartSettlesApplying: a rotation left applying with an intent (the process died
// around the write) is settled by reading the app: found → applied without a write;
// missing → written again under the same keyId.
func TestRestartSettlesApplying(t *testing.T) {
	for _, landed := range []bool{true, false} {
		name := map[bool]string{true: "write landed", false: "write lost"}[landed]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			c := newCert(name)
			x, _ := x509.ParseCertificate(c.DER)
			const intent = "55555555-5555-4555-8555-555555555555"
			r, _, err := f.store.Create(context.Background(), rotation.Rotation{
				ID: "r1", State: rotation.StateApplying, Certificate: certs.FactsOf(x), DER: c.DER,
				Target: rotation.Target{AppID: appID}, IntentKeyID: intent, CreatedAt: now, UpdatedAt: now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if landed {
				f.apps.SetCredentials(appID, append(f.apps.Credentials(appID), certs.KeyCredential{KeyID: intent, Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: c.DER}))
			}
			f.run()
			got := f.get(r.ID)
			if got.State != rotation.StateApplied || got.KeyID != intent || got.AlreadyPresent {
				t.Errorf("rotation = %s keyId %s alreadyPresent %v; want applied under %s", got.State, got.KeyID, got.AlreadyPresent, intent)
			}
			wantReplaces := map[bool]int{true: 0, false: 1}[landed]
			if f.apps.Replaces() != wantReplaces {
				t.Errorf("%d replaces, want %d", f.apps.Replaces(), wantReplaces)
			}
			if f.count(c.DER) != 1 || f.count(f.old.DER) != 1 {
				t.Errorf("app = new %d, old %d; want 1 and 1", f.count(c.DER), f.count(f.old.DER))
			}
		})
	}
}

func TestTransientThenSuccessHonoursRetryAfter(t *testing.T) {
	f := newFixture(t, nil)
	n := 0
	f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error {
		n++
		if n <= 2 {
			return rotationtest.Throttled(7 * time.Second)
		}
		return nil
	}
	r := f.submit(newCert("throttled"))
	f.run()
	if got := f.get(r.ID); got.State != rotation.StateApplied || got.Attempts != 3 {
		t.Fatalf("rotation = %s after %d attempts; want applied after 3", got.State, got.Attempts)
	}
	if len(f.sleeps) != 2 || f.sleeps[0] < 7*time.Second || f.sleeps[1] < 7*time.Second {
		t.Errorf("sleeps = %v; want two of at least Retry-After (7s)", f.sleeps)
	}
}

func TestPermanentFailure(t *testing.T) {
	var outcomes []rotation.State
	f := newFixture(t, func(c *rotation.Config) {
		c.OnOutcome = func(r rotation.Rotation) { outcomes = append(outcomes, r.State) }
	})
	f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error { return rotationtest.Denied() }
	c := newCert("denied")
	r := f.submit(c)
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateFailed || got.Reason == nil || got.Reason.Code != certs.GraphDenied {
		t.Fatalf("rotation = %s %+v; want failed graph_denied", got.State, got.Reason)
	}
	if f.apps.Replaces() != 1 || len(f.sleeps) != 0 {
		t.Errorf("a permanent failure was retried: %d replaces, sleeps %v", f.apps.Replaces(), f.sleeps)
	}
	// A person retries once the cause is fixed.
	f.apps.BeforeReplace = nil
	if _, err := f.engine.Execute(context.Background(), r.ID, rotation.CommandRetry, "admin", "fixed ownership"); err != nil {
		t.Fatal(err)
	}
	f.run()
	if got := f.get(r.ID); got.State != rotation.StateApplied || got.Reason != nil {
		t.Errorf("after retry rotation = %s %+v", got.State, got.Reason)
	}
	if f.count(c.DER) != 1 {
		t.Errorf("certificate on the app %d times", f.count(c.DER))
	}
	// The notifier hears of both outcomes at once, the failure as well as the success.
	if fmt.Sprint(outcomes) != "[failed applied]" {
		t.Errorf("OnOutcome saw %v, want [failed applied]", outcomes)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, func(c *rotation.Config) { c.MaxAttempts = 3 })
	f.apps.BeforeGet = func(context.Context, string) error { return rotationtest.Unavailable() }
	r := f.submit(newCert("down"))
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateFailed || got.Reason.Code != certs.GraphUnavailable || !strings.Contains(got.Reason.Message, "3 attempts") {
		t.Errorf("rotation = %s %+v", got.State, got.Reason)
	}
	if len(f.sleeps) != 2 {
		t.Errorf("sleeps = %v, want 2 (between 3 attempts)", f.sleeps)
	}
}

// staleReads serves a saved, out-of-date copy of the app for the next n Gets, like a
// lagging Graph replica right after a write.
type staleReads struct {
	*rotationtest.FakeApps
	mu  sync.Mutex
	old certs.Application
	n   int
}

func (s *staleReads) Get(ctx context.Context, id string) (certs.Application, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 {
		s.n--
		return s.old, nil
	}
	return s.FakeApps.Get(ctx, id)
}

// TestStaleReadsNeverDropCredentials: the second rotation's read comes from a replica that
// has not seen the first write; written back, it would remove the first certificate.
func TestStaleReadsNeverDropCredentials(t *testing.T) {
	var sr *staleReads
	f := newFixture(t, func(c *rotation.Config) {
		sr = &staleReads{FakeApps: c.Graph.(*rotationtest.FakeApps)}
		c.Graph = sr
	})
	before, _ := f.apps.Get(context.Background(), appID)
	a, b := newCert("first"), newCert("second")
	ra := f.submit(a)
	f.run()
	sr.mu.Lock()
	sr.old, sr.n = before, 2
	sr.mu.Unlock()
	rb := f.submit(b)
	f.run()
	for _, r := range []rotation.Rotation{f.get(ra.ID), f.get(rb.ID)} {
		if r.State != rotation.StateApplied {
			t.Errorf("%s = %s %+v", r.Certificate.Subject, r.State, r.Reason)
		}
	}
	if f.count(a.DER) != 1 || f.count(b.DER) != 1 || f.count(f.old.DER) != 1 {
		t.Errorf("app = first %d, second %d, old %d; want 1 each", f.count(a.DER), f.count(b.DER), f.count(f.old.DER))
	}
	// Replication lag also hides a write from its own read-back: FakeApps' lag.
	f.apps.StaleReads = 2
	c := newCert("third")
	rc := f.submit(c)
	f.run()
	if got := f.get(rc.ID); got.State != rotation.StateApplied || f.count(c.DER) != 1 || f.count(a.DER) != 1 {
		t.Errorf("third = %s; on the app %d times; first %d times", got.State, f.count(c.DER), f.count(a.DER))
	}
}

// TestVerifyCatchesLostCredential: someone removes a credential between the agent's write
// and its read-back; the rotation fails loudly instead of claiming success.
func TestVerifyCatchesLostCredential(t *testing.T) {
	f := newFixture(t, func(c *rotation.Config) { c.Read.Reads = 4 })
	c := newCert("verify")
	wrote := false
	f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error { wrote = true; return nil }
	f.apps.BeforeGet = func(context.Context, string) error {
		if wrote {
			var keep []certs.KeyCredential
			for _, k := range f.apps.Credentials(appID) {
				if k.Thumbprint() != certs.ThumbprintSHA1(f.old.DER) {
					keep = append(keep, k)
				}
			}
			f.apps.SetCredentials(appID, keep)
		}
		return nil
	}
	r := f.submit(c)
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateFailed || got.Reason.Code != certs.VerifyFailed {
		t.Errorf("rotation = %s %+v; want failed verify_failed", got.State, got.Reason)
	}
}

func TestPolicyRecheckBeforeWrite(t *testing.T) {
	f := newFixture(t, func(c *rotation.Config) { c.ManualApproval = true })
	c := certtest.New(now, certtest.Validity(now.Add(-time.Hour), now.Add(40*24*time.Hour)))
	r := f.submit(c)
	if r.State != rotation.StatePendingApproval {
		t.Fatalf("state = %s, want pending_approval", r.State)
	}
	// Approved 20 days later: only 20 days of validity are left, under the policy's 30.
	later := now.Add(20 * 24 * time.Hour)
	f.engine = mustEngine(t, f, func(cfg *rotation.Config) { cfg.Now = func() time.Time { return later } })
	if _, err := f.engine.Execute(context.Background(), r.ID, rotation.CommandApprove, "admin", ""); err != nil {
		t.Fatal(err)
	}
	f.run()
	got := f.get(r.ID)
	if got.State != rotation.StateRejected || got.Reason.Code != certs.ExpiresTooSoon {
		t.Errorf("rotation = %s %+v; want rejected expires_too_soon", got.State, got.Reason)
	}
	if last := got.History[len(got.History)-1]; last.Actor != rotation.ActorPolicy {
		t.Errorf("rejected by %q, want policy", last.Actor)
	}
	if f.apps.Replaces() != 0 {
		t.Error("an expiring certificate was written")
	}
}

func TestPersonActions(t *testing.T) {
	tests := []struct {
		from   rotation.State
		action rotation.Command
		want   rotation.State // "" = refused
	}{
		{rotation.StatePendingApproval, rotation.CommandApprove, rotation.StateApplying},
		{rotation.StatePendingApproval, rotation.CommandReject, rotation.StateRejected},
		{rotation.StatePendingApproval, rotation.CommandConfirm, ""},
		{rotation.StatePendingApproval, rotation.CommandRetry, ""},
		{rotation.StateApplying, rotation.CommandApprove, ""},
		{rotation.StateApplying, rotation.CommandReject, ""},
		{rotation.StateApplying, rotation.CommandConfirm, ""},
		{rotation.StateApplying, rotation.CommandRetry, ""},
		{rotation.StateApplied, rotation.CommandConfirm, rotation.StateConfirmed},
		{rotation.StateApplied, rotation.CommandReject, ""},
		{rotation.StateApplied, rotation.CommandApprove, ""},
		{rotation.StateApplied, rotation.CommandRetry, ""},
		{rotation.StateConfirmed, rotation.CommandConfirm, ""},
		{rotation.StateConfirmed, rotation.CommandReject, ""},
		{rotation.StateRejected, rotation.CommandApprove, ""},
		{rotation.StateRejected, rotation.CommandRetry, ""},
		{rotation.StateFailed, rotation.CommandRetry, rotation.StateApplying},
		{rotation.StateFailed, rotation.CommandReject, rotation.StateRejected},
		{rotation.StateFailed, rotation.CommandConfirm, ""},
		{rotation.StateFailed, "delete", ""},
	}
	for _, tt := range tests {
		f := newFixture(t, nil)
		c := newCert(string(tt.from) + string(tt.action))
		x, _ := x509.ParseCertificate(c.DER)
		if _, _, err := f.store.Create(context.Background(), rotation.Rotation{ID: "r", State: tt.from, Certificate: certs.FactsOf(x), DER: c.DER, Target: rotation.Target{AppID: appID}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		got, err := f.engine.Execute(context.Background(), "r", tt.action, "api:alice", "note")
		if tt.want == "" {
			if !errors.Is(err, rotation.ErrInvalidState) {
				t.Errorf("Act(%s, %s) = %v, want ErrInvalidState", tt.from, tt.action, err)
			}
			if f.get("r").State != tt.from {
				t.Errorf("Act(%s, %s) changed the state", tt.from, tt.action)
			}
			continue
		}
		if err != nil || got.State != tt.want {
			t.Errorf("Act(%s, %s) = %s, %v; want %s", tt.from, tt.action, got.State, err, tt.want)
			continue
		}
		last := got.History[len(got.History)-1]
		if last.Actor != "api:alice" || last.Note != "note" || last.State != tt.want {
			t.Errorf("Act(%s, %s) history = %+v", tt.from, tt.action, last)
		}
	}
	f := newFixture(t, nil)
	if _, err := f.engine.Execute(context.Background(), "nope", rotation.CommandApprove, "a", ""); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("Act on unknown id = %v, want ErrNotFound", err)
	}
}

func TestSyncRecordsOutsideChanges(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.apps.SetCredentials(appID, nil) // a person removed the old certificate in the portal
	snap, err := f.engine.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.App.KeyCredentials) != 0 {
		t.Errorf("snapshot holds %d credentials, want 0", len(snap.App.KeyCredentials))
	}
	audit, _ := f.store.Audit(ctx, rotation.AuditQuery{})
	if len(audit) == 0 || audit[0].Action != rotation.ActionExternalChange || !strings.Contains(audit[0].Message, "removed keyId 33333333") {
		t.Errorf("audit = %+v, want an outside-change entry", audit)
	}
}

func TestStopDuringBackoffLeavesApplying(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	f.engine = mustEngine(t, f, func(c *rotation.Config) {
		c.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); <-ctx.Done(); return ctx.Err() }
	})
	f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error { return rotationtest.Unavailable() }
	r := f.submit(newCert("stopping"))
	if err := f.engine.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.get(r.ID)
	if got.State != rotation.StateApplying || got.IntentKeyID == "" {
		t.Errorf("after a stop: %s intent %q; want applying with its intent", got.State, got.IntentKeyID)
	}
}

func mustEngine(t *testing.T, f *fixture, edit func(*rotation.Config)) *rotation.Engine {
	cfg := rotation.Config{
		Store: f.store, Graph: f.apps, AppID: appID, Policy: certpolicy.Default(),
		DisplayName: func(c certs.Certificate, _ time.Time) string { return c.CommonName() },
		Logger:      slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
	}
	edit(&cfg)
	e, err := rotation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRestartAfterExpiryTrustsTheApp: the agent died around a write and restarts after the
// certificate fell out of policy. If the write landed, the rotation is applied (the app holds
// it); if it did not, nothing is written and the rotation is rejected by the policy.
func TestRestartAfterExpiryTrustsTheApp(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(map[bool]string{true: "write landed", false: "write lost"}[landed], func(t *testing.T) {
			later := now.Add(340 * 24 * time.Hour) // under 30 days of validity left
			f := newFixture(t, func(c *rotation.Config) { c.Now = func() time.Time { return later } })
			c := newCert("expiring")
			x, _ := x509.ParseCertificate(c.DER)
			const intent = "66666666-6666-4666-8666-666666666666"
			f.store.Create(context.Background(), rotation.Rotation{ID: "r1", State: rotation.StateApplying, Certificate: certs.FactsOf(x), DER: c.DER,
				Target: rotation.Target{AppID: appID}, IntentKeyID: intent, CreatedAt: now, UpdatedAt: now})
			if landed {
				f.apps.SetCredentials(appID, append(f.apps.Credentials(appID), certs.KeyCredential{KeyID: intent, Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: c.DER}))
			}
			f.run()
			got := f.get("r1")
			switch {
			case landed && (got.State != rotation.StateApplied || got.KeyID != intent):
				t.Errorf("rotation = %s %s; want applied under %s", got.State, got.KeyID, intent)
			case !landed && (got.State != rotation.StateRejected || got.Reason.Code != certs.ExpiresTooSoon):
				t.Errorf("rotation = %s %+v; want rejected expires_too_soon", got.State, got.Reason)
			}
			if f.apps.Replaces() != 0 {
				t.Errorf("%d writes, want 0", f.apps.Replaces())
			}
		})
	}
}

// credentialFor returns a credential for c as a person in the portal would add it.
func credentialFor(c certtest.Cert, keyID, name string) certs.KeyCredential {
	return certs.KeyCredential{KeyID: keyID, Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: c.DER, DisplayName: name}
}

// TestConcurrentAddIsNeverDropped: a person adds a credential in the portal just before the
// agent's rotation; the reads the write is built on come from replicas that have not seen it
// yet. Written back as read, the person's credential would silently disappear (the defect
// found in [J]). The agent keeps it (here: a read shows it after the write, and the agent puts
// it back), says so in the audit log, and writes its own certificate once.
func TestConcurrentAddIsNeverDropped(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.engine.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	person := newCert("added in the portal")
	f.apps.StaleReads = 2
	f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
		return append(cs, credentialFor(person, "44444444-4444-4444-8444-444444444444", "portal"))
	})
	c := newCert("rotation")
	r := f.submit(c)
	f.run()
	if got := f.get(r.ID); got.State != rotation.StateApplied {
		t.Fatalf("rotation = %s %+v", got.State, got.Reason)
	}
	if f.count(person.DER) != 1 || f.count(c.DER) != 1 || f.count(f.old.DER) != 1 {
		t.Errorf("app = person's %d, rotation's %d, old %d; want 1 each", f.count(person.DER), f.count(c.DER), f.count(f.old.DER))
	}
	if !f.audited(rotation.ActionExternalChange, "44444444-4444-4444-8444-444444444444") {
		t.Error("the audit log does not mention the person's credential")
	}
}

// TestPersonRemovalIsNotWrittenBack: a person removes a credential just before the rotation,
// and one read still shows it. Written on that read, the rotation would put it back. The two
// reads a write needs disagree, so the agent reads on until the removal is certain, and
// records it.
func TestPersonRemovalIsNotWrittenBack(t *testing.T) {
	f := newFixture(t, nil)
	extra := newCert("to be removed")
	f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
		return append(cs, credentialFor(extra, "55555555-5555-4555-8555-555555555555", "removed later"))
	})
	if _, err := f.engine.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.apps.StaleReads = 1
	f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
		return slices.DeleteFunc(cs, func(k certs.KeyCredential) bool { return k.KeyID == "55555555-5555-4555-8555-555555555555" })
	})
	c := newCert("rotation")
	r := f.submit(c)
	f.run()
	if got := f.get(r.ID); got.State != rotation.StateApplied {
		t.Fatalf("rotation = %s %+v", got.State, got.Reason)
	}
	if f.count(extra.DER) != 0 {
		t.Error("the credential the person removed is back on the app")
	}
	if !f.audited(rotation.ActionExternalChange, "removed keyId 55555555-5555-4555-8555-555555555555") {
		t.Error("the audit log does not record the removal")
	}
}

// TestUnsettledReadsAreNeverWrittenOn: reads that keep disagreeing (a credential comes and
// goes) never lead to a write; the attempt is transient and the rotation fails only after
// every attempt, with a reason that says why.
func TestUnsettledReadsAreNeverWrittenOn(t *testing.T) {
	f := newFixture(t, func(c *rotation.Config) { c.MaxAttempts = 2 })
	flip := newCert("flapping")
	k := credentialFor(flip, "66666666-6666-4666-8666-666666666666", "flapping")
	n := 0
	f.apps.BeforeGet = func(context.Context, string) error {
		n++
		f.apps.SetCredentials(appID, nil)
		if n%2 == 0 {
			f.apps.SetCredentials(appID, []certs.KeyCredential{k})
		}
		return nil
	}
	r := f.submit(newCert("rotation"))
	f.run()
	got := f.get(r.ID)
	if f.apps.Replaces() != 0 {
		t.Errorf("%d writes on views that never settled", f.apps.Replaces())
	}
	if got.State != rotation.StateFailed || got.Reason == nil || !strings.Contains(got.Reason.Message, "did not settle") {
		t.Errorf("rotation = %s %+v; want failed, saying the reads did not settle", got.State, got.Reason)
	}
}

// TestLaggingReadBackIsNotWrittenAgain: the write is acknowledged but stays invisible for
// longer than one attempt's reads. The next attempt takes its absence as the reads being
// behind, not as a reason to write again.
func TestLaggingReadBackIsNotWrittenAgain(t *testing.T) {
	f := newFixture(t, nil)
	f.apps.StaleReads = 15
	c := newCert("lagging")
	r := f.submit(c)
	f.run()
	if got := f.get(r.ID); got.State != rotation.StateApplied {
		t.Fatalf("rotation = %s %+v", got.State, got.Reason)
	}
	if f.apps.Replaces() != 1 || f.count(c.DER) != 1 {
		t.Errorf("%d writes, certificate on the app %d times; want 1 and 1", f.apps.Replaces(), f.count(c.DER))
	}
}

// audited reports whether an audit entry with action mentions s.
func (f *fixture) audited(action rotation.Action, s string) bool {
	es, err := f.store.Audit(context.Background(), rotation.AuditQuery{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range es {
		if e.Action == action && strings.Contains(e.Message, s) {
			return true
		}
	}
	return false
}

// retireFixture is an engine with retiring on, a policy naming the provider's certificates
// by subject ("provider *"), and a clock the test moves.
func retireFixture(t *testing.T, enabled, dryRun bool) (*fixture, *time.Time) {
	clock := now
	f := newFixture(t, func(c *rotation.Config) {
		c.Now = func() time.Time { return clock }
		p := certpolicy.Default()
		p.AllowedSubjects = []string{"provider *"}
		c.Retire = rotation.RetirePolicy{Enabled: enabled, DryRun: dryRun, After: 14 * 24 * time.Hour, Names: p.Names}
	})
	return f, &clock
}

// TestRetireSupersededCertificate: once a newer certificate of the provider has been
// confirmed for retire.after, the older one the policy names is removed by read-modify-write,
// with every other credential kept and the audit entry written first; one the policy does
// not name stays.
func TestRetireSupersededCertificate(t *testing.T) {
	f, clock := retireFixture(t, true, false)
	ctx := context.Background()
	stranger := newCert("someone else's integration")
	f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
		return append(cs, credentialFor(stranger, "77777777-7777-4777-8777-777777777777", "other"))
	})
	if _, err := f.engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	next := certtest.New(now, certtest.CommonName("provider 2027"))
	r := f.submit(next)
	f.run()
	// Too early: nothing is retired before the new one is confirmed, or before retire.after.
	f.engine.RetireDue(ctx)
	if _, err := f.engine.Execute(ctx, r.ID, rotation.CommandConfirm, "api:alice", "told the provider"); err != nil {
		t.Fatal(err)
	}
	*clock = clock.Add(13 * 24 * time.Hour)
	f.engine.RetireDue(ctx)
	if f.count(f.old.DER) != 1 {
		t.Fatal("retired before retire.after")
	}
	*clock = clock.Add(2 * 24 * time.Hour)
	if _, err := f.engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.engine.RetireDue(ctx)
	if f.count(f.old.DER) != 0 || f.count(next.DER) != 1 || f.count(stranger.DER) != 1 {
		t.Errorf("app = old %d, new %d, stranger %d; want 0, 1, 1", f.count(f.old.DER), f.count(next.DER), f.count(stranger.DER))
	}
	if !f.audited(rotation.ActionRetire, "retiring keyId 33333333-3333-4333-8333-333333333333") || !f.audited(rotation.ActionRetire, "retired keyId 33333333") {
		t.Error("the audit log lacks the retire entries")
	}
	// A read that still shows the retired credential is behind: the next rotation does not
	// write it back.
	f.apps.StaleReads = 1
	later := certtest.New(now, certtest.CommonName("provider 2028"))
	f.submit(later)
	f.run()
	if f.count(f.old.DER) != 0 {
		t.Error("a stale read put the retired certificate back")
	}
}

// TestRetireGuards: by hand or not, the agent never retires the last valid certificate, one
// the policy does not name, one it first saw less than retire.after ago, or an unfinished
// rotation's; a dry run removes nothing.
func TestRetireGuards(t *testing.T) {
	ctx := context.Background()
	t.Run("last valid", func(t *testing.T) {
		f, clock := retireFixture(t, true, false)
		f.apps.SetCredentials(appID, nil)
		only := certtest.New(now, certtest.CommonName("provider only"))
		f.apps.SetCredentials(appID, []certs.KeyCredential{credentialFor(only, "88888888-8888-4888-8888-888888888888", "only")})
		f.engine.Sync(ctx)
		*clock = clock.Add(30 * 24 * time.Hour)
		_, err := f.engine.Retire(ctx, "88888888-8888-4888-8888-888888888888", "api:bob", "by hand")
		if !errors.Is(err, rotation.ErrRetireRefused) || !strings.Contains(err.Error(), "without a valid certificate") {
			t.Errorf("Retire(last) = %v", err)
		}
		if f.count(only.DER) != 1 {
			t.Error("the last certificate was removed")
		}
	})
	t.Run("not named by the policy", func(t *testing.T) {
		f, clock := retireFixture(t, true, false)
		other := newCert("someone else")
		f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
			return append(cs, credentialFor(other, "99999999-9999-4999-8999-999999999999", "other"))
		})
		f.engine.Sync(ctx)
		*clock = clock.Add(30 * 24 * time.Hour)
		_, err := f.engine.Retire(ctx, "99999999-9999-4999-8999-999999999999", "api:bob", "by hand")
		if !errors.Is(err, rotation.ErrRetireRefused) || !strings.Contains(err.Error(), "policy does not name") {
			t.Errorf("Retire(unnamed) = %v", err)
		}
	})
	t.Run("seen too recently", func(t *testing.T) {
		f, _ := retireFixture(t, true, false)
		f.engine.Sync(ctx)
		_, err := f.engine.Retire(ctx, "33333333-3333-4333-8333-333333333333", "api:bob", "by hand")
		if !errors.Is(err, rotation.ErrRetireRefused) || !strings.Contains(err.Error(), "first seen") {
			t.Errorf("Retire(recent) = %v", err)
		}
	})
	t.Run("by hand", func(t *testing.T) {
		f, clock := retireFixture(t, false, false)
		extra := certtest.New(now, certtest.CommonName("provider extra"))
		f.apps.Edit(appID, func(cs []certs.KeyCredential) []certs.KeyCredential {
			return append(cs, credentialFor(extra, "aaaaaaaa-9999-4999-8999-999999999999", "extra"))
		})
		f.engine.Sync(ctx)
		*clock = clock.Add(15 * 24 * time.Hour)
		if _, err := f.engine.Retire(ctx, "aaaaaaaa-9999-4999-8999-999999999999", "api:bob", "by hand"); err != nil {
			t.Fatal(err)
		}
		if f.count(extra.DER) != 0 || f.count(f.old.DER) != 1 {
			t.Errorf("after retiring by hand: extra %d, old %d", f.count(extra.DER), f.count(f.old.DER))
		}
	})
	t.Run("dry run", func(t *testing.T) {
		f, clock := retireFixture(t, true, true)
		f.engine.Sync(ctx)
		next := certtest.New(now, certtest.CommonName("provider 2027"))
		r := f.submit(next)
		f.run()
		f.engine.Execute(ctx, r.ID, rotation.CommandConfirm, "api:alice", "")
		*clock = clock.Add(30 * 24 * time.Hour)
		f.engine.Sync(ctx)
		f.engine.RetireDue(ctx)
		if f.count(f.old.DER) != 1 {
			t.Error("a dry run removed a certificate")
		}
		c, err := f.engine.RetireCandidates(ctx, f.engine.Snapshot().App, *clock)
		if err != nil || len(c) != 1 || c[0].Credential.KeyID != "33333333-3333-4333-8333-333333333333" {
			t.Errorf("RetireCandidates = %+v, %v; want the old certificate", c, err)
		}
	})
}

// TestRetireSurvivesCrash: the agent is killed at each step of a retire and started again on
// what it had persisted (the store and the last saved snapshot). It never removes anything
// but the credential it was retiring, removes it once, records it as retired (never as an
// outside change), and an interrupted retire that never wrote is done again.
func TestRetireSurvivesCrash(t *testing.T) {
	const oldKey = "33333333-3333-4333-8333-333333333333"
	errCrash := errors.New("killed")
	for _, step := range []string{"before the write", "after the write, before the read-back", "lagging read-back"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			clock := now
			var saved rotation.Snapshot
			edit := func(c *rotation.Config) {
				c.Now = func() time.Time { return clock }
				p := certpolicy.Default()
				p.AllowedSubjects = []string{"provider *"}
				c.Retire = rotation.RetirePolicy{Enabled: true, After: 14 * 24 * time.Hour, Names: p.Names}
				c.OnSnapshot = func(s rotation.Snapshot) { saved = s }
			}
			f := newFixture(t, edit)
			next := certtest.New(now, certtest.CommonName("provider 2027"))
			r := f.submit(next)
			f.run()
			if _, err := f.engine.Execute(ctx, r.ID, rotation.CommandConfirm, "api:alice", "told"); err != nil {
				t.Fatal(err)
			}
			clock = clock.Add(15 * 24 * time.Hour)
			if _, err := f.engine.Sync(ctx); err != nil {
				t.Fatal(err)
			}

			wrote := false
			switch step {
			case "before the write":
				f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error { return errCrash }
			case "after the write, before the read-back":
				f.apps.BeforeReplace = func(context.Context, string, []certs.KeyCredential) error { wrote = true; return nil }
				f.apps.BeforeGet = func(context.Context, string) error {
					if wrote {
						return errCrash
					}
					return nil
				}
			case "lagging read-back":
				f.apps.StaleReads = 3
			}
			f.engine.RetireDue(ctx)
			f.apps.BeforeReplace, f.apps.BeforeGet = nil, nil
			if step != "lagging read-back" {
				// Killed: a new engine starts from the store and the snapshot it saved last.
				f.engine = mustEngine(t, f, edit)
				f.engine.Restore(saved)
				clock = clock.Add(time.Minute)
				if _, err := f.engine.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				f.engine.RetireDue(ctx)
			}
			if f.count(f.old.DER) != 0 || f.count(next.DER) != 1 {
				t.Errorf("app = old %d, new %d; want the old one retired and the new one kept", f.count(f.old.DER), f.count(next.DER))
			}
			if !f.audited(rotation.ActionRetire, "retired keyId "+oldKey) {
				t.Error("the retire is not recorded as done")
			}
			if f.audited(rotation.ActionExternalChange, "removed keyId "+oldKey) {
				t.Error("the agent's own retire is recorded as a change made outside certagent")
			}
			if _, err := f.engine.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			snap := f.engine.Snapshot()
			if got := snap.Ledger.State(oldKey); got != rotation.KeyGone {
				t.Errorf("ledger state of the retired key = %q, want gone", got)
			}
		})
	}
}
