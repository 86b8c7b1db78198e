package renewal

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
)

// fakeGraph is the agent's own app: addKey records keys, and a key signs in only after
// acceptAfter failed tries (sign-in propagation).
type fakeGraph struct {
	mu          sync.Mutex
	app         certs.Application
	acceptAfter int
	tries       map[string]int
	signInErr   error // when set, every TrySignIn fails with it
}

type notYet struct{}

func (notYet) Error() string   { return "AADSTS700027: not registered" }
func (notYet) AADSTSCode() int { return 700027 }
func (notYet) Transient() bool { return false }
func (notYet) Reason() certs.Reason {
	return certs.Reason{Code: certs.AuthFailed, Message: "not registered"}
}

func (g *fakeGraph) Get(context.Context, string) (certs.Application, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.app
	a.KeyCredentials = append([]certs.KeyCredential(nil), a.KeyCredentials...)
	return a, nil
}

func (g *fakeGraph) AddKey(_ context.Context, _ string, c *x509.Certificate, name string) (certs.KeyCredential, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := certs.KeyCredential{KeyID: rotation.NewGUID(), Key: c.Raw, DisplayName: name}
	g.app.KeyCredentials = append(g.app.KeyCredentials, k)
	return k, nil
}

func (g *fakeGraph) RemoveKey(_ context.Context, _ string, keyID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, k := range g.app.KeyCredentials {
		if k.KeyID == keyID {
			g.app.KeyCredentials = append(g.app.KeyCredentials[:i], g.app.KeyCredentials[i+1:]...)
			return nil
		}
	}
	return errors.New("404 no such key")
}

func (g *fakeGraph) TrySignIn(_ context.Context, c *x509.Certificate, _ crypto.Signer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.signInErr != nil {
		return g.signInErr
	}
	tp := certs.ThumbprintSHA1(c.Raw)
	g.tries[tp]++
	if g.tries[tp] <= g.acceptAfter {
		return notYet{}
	}
	return nil
}

type fixture struct {
	g       *fakeGraph
	r       *Renewer
	src     *credential.Source
	files   credential.Files
	mu      sync.Mutex
	audit   []rotation.AuditEntry
	slept   time.Duration
	now     time.Time
	onSleep func()
}

func newFixture(t *testing.T, acceptAfter int) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{files: credential.Files{Cert: filepath.Join(dir, "agent.pem"), Key: filepath.Join(dir, "agent.key")}, now: time.Now()}
	c, err := credential.Generate(credential.Options{Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := credential.Save(f.files, c); err != nil {
		t.Fatal(err)
	}
	f.src = credential.NewSource(c)
	f.g = &fakeGraph{app: certs.Application{ObjectID: "obj", AppID: "app", KeyCredentials: []certs.KeyCredential{{KeyID: "k1", Key: c.Cert.Raw}}}, acceptAfter: acceptAfter, tries: map[string]int{}}
	f.r, err = New(Config{
		Graph: f.g, ClientID: "app", Source: f.src, Files: f.files, KeyBits: 2048, Validity: 365 * 24 * time.Hour,
		RenewBefore: 30 * 24 * time.Hour, ProveWindow: 10 * time.Minute,
		Audit: func(_ context.Context, e rotation.AuditEntry) {
			f.mu.Lock()
			f.audit = append(f.audit, e)
			f.mu.Unlock()
		},
		Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.now.Add(f.slept)
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.slept += d
			hook := f.onSleep
			f.mu.Unlock()
			if hook != nil {
				hook()
			}
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRenewWaitsForPropagation: a new key Entra does not accept yet is retried with growing
// pauses; the old key stays in use (and status says the renewal waits) until the new one
// signs in.
func TestRenewWaitsForPropagation(t *testing.T) {
	f := newFixture(t, 4)
	old := f.src.Credential()
	sawWaiting := false
	f.onSleep = func() {
		if f.src.Credential() != old {
			t.Error("switched to the new key before it signed in")
		}
		for _, p := range f.r.Problems(f.now) {
			if p.Code == health.CredentialRenewalWaiting {
				sawWaiting = true
			}
		}
	}
	if err := f.r.renew(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if f.src.Credential() == old {
		t.Fatal("still the old credential after a proven renewal")
	}
	if !sawWaiting {
		t.Error("status never said the renewal waits for the new key")
	}
	for _, p := range f.r.Problems(f.now) {
		if p.Code == health.CredentialRenewalWaiting {
			t.Error("still waiting after the renewal")
		}
	}
	if len(f.g.app.KeyCredentials) != 1 || f.g.app.KeyCredentials[0].Thumbprint() != certs.ThumbprintSHA1(f.src.Credential().Cert.Raw) {
		t.Errorf("agent app holds %d keys, want only the new one (the previous one removed)", len(f.g.app.KeyCredentials))
	}
	got, err := credential.Load(f.files)
	if err != nil || got.Cert.Equal(old.Cert) {
		t.Errorf("files hold the old credential after the renewal (%v)", err)
	}
}

// TestRenewGivesUpAfterTheWindow: a key that never becomes usable fails the renewal after
// ProveWindow, keeps the old key, and a later run resumes with the same new key (no second
// addKey).
func TestRenewGivesUpAfterTheWindow(t *testing.T) {
	f := newFixture(t, 1000)
	old := f.src.Credential()
	err := f.r.renew(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "not accepted after") {
		t.Fatalf("renew = %v, want a failure after the window", err)
	}
	if f.src.Credential() != old {
		t.Error("switched to a key that never signed in")
	}
	f.g.acceptAfter = 0
	f.g.tries = map[string]int{}
	if err := f.r.renew(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.g.app.KeyCredentials); n != 1 {
		t.Errorf("agent app holds %d keys after a resumed renewal, want 1 (one new key, added once; the previous removed)", n)
	}
}

// TestRenewStopsOnOtherErrors: an error that is not "not accepted yet" ends the wait.
func TestRenewStopsOnOtherErrors(t *testing.T) {
	f := newFixture(t, 0)
	f.g.signInErr = errors.New("tenant not found")
	if err := f.r.renew(context.Background(), "test"); err == nil || f.slept != 0 {
		t.Errorf("renew = %v after sleeping %s; want an error at once", err, f.slept)
	}
}

// TestStartBusy: a second request while one waits is a *health.BusyError.
func TestStartBusy(t *testing.T) {
	f := newFixture(t, 0)
	if err := f.r.Start("a"); err != nil {
		t.Fatal(err)
	}
	var be *health.BusyError
	if err := f.r.Start("b"); !errors.As(err, &be) {
		t.Errorf("second Start = %v, want a *health.BusyError", err)
	}
}

// TestPreviousRemovedAfterCrash: a crash after the switch but before the previous certificate
// was removed resumes the removal at the next check; a record that names the certificate in
// use (a crash before the switch) never removes it.
func TestPreviousRemovedAfterCrash(t *testing.T) {
	f := newFixture(t, 0)
	old := f.src.Credential()
	f.r.cfg.Graph = &failingRemove{fakeGraph: f.g, err: errors.New("503 unavailable")}
	if err := f.r.renew(context.Background(), "test"); err == nil {
		t.Fatal("renew succeeded although removeKey failed")
	}
	if !hasThumb(f.g.app.KeyCredentials, certs.ThumbprintSHA1(old.Cert.Raw)) {
		t.Fatal("previous removed although removeKey failed")
	}
	var sawProblem bool
	for _, p := range f.r.Problems(f.now) {
		sawProblem = sawProblem || p.Code == health.AgentCredentialSuperseded
	}
	if !sawProblem {
		t.Error("status does not say the previous certificate is left behind")
	}
	f.r.cfg.Graph = f.g // the next check works
	if err := f.r.removePrevious(context.Background(), "agent"); err != nil {
		t.Fatal(err)
	}
	if hasThumb(f.g.app.KeyCredentials, certs.ThumbprintSHA1(old.Cert.Raw)) {
		t.Error("previous still on the app")
	}
	// Problems caches the record: the removal must show at once.
	for _, p := range f.r.Problems(f.now) {
		if p.Code == health.AgentCredentialSuperseded {
			t.Errorf("status still says the previous certificate is left behind: %s", p.Message)
		}
	}
	// A record naming the certificate in use is dropped, never acted on.
	cur := f.src.Credential()
	writePrevious(retireFile(f.files), previous{Thumbprint: certs.ThumbprintSHA1(cur.Cert.Raw)})
	if err := f.r.removePrevious(context.Background(), "agent"); err != nil {
		t.Fatal(err)
	}
	if !hasThumb(f.g.app.KeyCredentials, certs.ThumbprintSHA1(cur.Cert.Raw)) {
		t.Error("removed the certificate in use")
	}
}

type failingRemove struct {
	*fakeGraph
	err error
}

func (f *failingRemove) RemoveKey(context.Context, string, string) error { return f.err }

// goneKey is Graph's 404 for a keyId the app no longer holds.
type goneKey struct{}

func (goneKey) Error() string   { return "404 Request_ResourceNotFound: no such key" }
func (goneKey) Transient() bool { return false }
func (goneKey) Reason() certs.Reason {
	return certs.Reason{Code: certs.AppNotFound, Message: "no such key"}
}

// staleRemoved is the agent's app after its previous certificate was removed, read through
// a replica that still shows it once (Graph's replication lag).
type staleRemoved struct {
	*fakeGraph
	stale certs.Application
	reads int
}

func (s *staleRemoved) Get(ctx context.Context, id string) (certs.Application, error) {
	s.reads++
	if s.reads == 1 {
		return s.stale, nil
	}
	return s.fakeGraph.Get(ctx, id)
}

func (s *staleRemoved) RemoveKey(context.Context, string, string) error { return goneKey{} }

// TestPreviousGoneIsNotRemovedTwice: a restart after the previous certificate was removed,
// whose first read is behind and still shows it, gets Graph's 404 from removeKey. That is
// not a second removal: the audit log says it was gone already, once. Found by the crash
// campaign of `make stress` with replication lag: before, every such restart audited
// "removed the agent's previous certificate" again.
func TestPreviousGoneIsNotRemovedTwice(t *testing.T) {
	f := newFixture(t, 0)
	old := f.src.Credential()
	stale, _ := f.g.Get(context.Background(), "app")
	if err := f.r.renew(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	removed := func() int {
		n := 0
		for _, e := range f.audit {
			if strings.HasPrefix(e.Message, "removed the agent's previous certificate") {
				n++
			}
		}
		return n
	}
	if removed() != 1 {
		t.Fatalf("renewal audited %d removals, want 1", removed())
	}
	// The crash: the record of the previous certificate is still there at the next start.
	writePrevious(retireFile(f.files), previous{Thumbprint: certs.ThumbprintSHA1(old.Cert.Raw), NotAfter: old.Cert.NotAfter})
	f.r.cfg.Graph = &staleRemoved{fakeGraph: f.g, stale: stale}
	if err := f.r.removePrevious(context.Background(), "agent"); err != nil {
		t.Fatal(err)
	}
	if n := removed(); n != 1 {
		t.Errorf("after the restart %d removals audited, want still 1", n)
	}
	if _, err := readPrevious(retireFile(f.files)); err == nil {
		t.Error("the record of the previous certificate is still there")
	}
}

// staleAdded is the agent's app after an addKey that landed, read through replicas that do
// not show the new key for the first reads (Graph's replication lag).
type staleAdded struct {
	*fakeGraph
	stale  certs.Application
	behind int // reads still served stale
}

func (s *staleAdded) Get(ctx context.Context, id string) (certs.Application, error) {
	if s.behind > 0 {
		s.behind--
		return s.stale, nil
	}
	return s.fakeGraph.Get(ctx, id)
}

// TestResumedRenewalDoesNotAddTwice: the agent is killed right after its addKey landed; at
// the restart the first reads of its app are behind and do not show the new key. The
// renewal must not add the same certificate a second time. Found by the crash campaign of
// `make stress` with replication lag (the agent's app held its new certificate twice).
func TestResumedRenewalDoesNotAddTwice(t *testing.T) {
	f := newFixture(t, 0)
	stale, _ := f.g.Get(context.Background(), "app")
	// The renewal that is killed: its new key saved and added, nothing after.
	crashing := &crashAfterAddKey{fakeGraph: f.g}
	f.r.cfg.Graph = crashing
	if err := f.r.renew(context.Background(), "test"); err == nil {
		t.Fatal("the renewal went on after the kill")
	}
	next, err := credential.Load(NextFiles(f.files))
	if err != nil {
		t.Fatal(err)
	}
	newThumb := certs.ThumbprintSHA1(next.Cert.Raw)
	// The restart: three reads behind.
	f.r.cfg.Graph = &staleAdded{fakeGraph: f.g, stale: stale, behind: 3}
	if err := f.r.renew(context.Background(), "agent"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range f.g.app.KeyCredentials {
		if k.Thumbprint() == newThumb {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the agent's app holds its new certificate %d times, want 1", n)
	}
}

// crashAfterAddKey adds the key, then stands for the process dying before it hears back.
type crashAfterAddKey struct{ *fakeGraph }

func (c *crashAfterAddKey) AddKey(ctx context.Context, id string, cert *x509.Certificate, name string) (certs.KeyCredential, error) {
	c.fakeGraph.AddKey(ctx, id, cert, name)
	return certs.KeyCredential{}, errors.New("killed: the answer never came")
}
