package graph_test

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// source is a CredentialSource whose certificate a test can swap.
type source struct {
	mu   sync.Mutex
	cert *x509.Certificate
	key  crypto.Signer
}

func newSource(c certtest.Cert) *source { return &source{cert: c.Cert, key: c.Key} }

func (s *source) Current() (*x509.Certificate, crypto.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.key
}

func (s *source) Set(c certtest.Cert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert, s.key = c.Cert, c.Key
}

// observations records Config.Observe calls.
type observations struct {
	mu   sync.Mutex
	seen []string
}

func (o *observations) observe(op, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, op+"/"+outcome)
}

func (o *observations) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seen)
}

func (o *observations) count(s string) int {
	n := 0
	for _, x := range o.list() {
		if x == s {
			n++
		}
	}
	return n
}

// env is a started emulator with a tenant of test apps, and the certificates behind them:
//
//	agent      the agent's own app, Application.ReadWrite.OwnedBy, certificate "agent"
//	target     owned by agent, certificates "provider old" and "provider backup"
//	foreign    not owned by agent, certificate "foreign"
type env struct {
	e      *emulator.Emulator
	tenant string
	apps   map[string]emulator.ApplicationView
	certs  map[string]certtest.Cert
	now    time.Time
}

func newEnv(t testing.TB, opts ...emulator.Option) *env {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	env := &env{apps: map[string]emulator.ApplicationView{}, certs: map[string]certtest.Cert{}, now: now}
	for _, name := range []string{"agent", "provider old", "provider backup", "foreign"} {
		env.certs[name] = certtest.New(now, certtest.CommonName(name))
	}
	kc := func(names ...string) []emulator.SeedKeyCredential {
		var out []emulator.SeedKeyCredential
		for _, n := range names {
			out = append(out, emulator.SeedKeyCredential{Certificate: env.certs[n].DER, DisplayName: n})
		}
		return out
	}
	seed := emulator.Seed{
		Domain: "contoso.onmicrosoft.com",
		Applications: []emulator.SeedApplication{
			{DisplayName: "agent", GraphRoles: []string{emulator.RoleApplicationReadWriteOwned}, KeyCredentials: kc("agent")},
			{DisplayName: "target", Owners: []string{"agent"}, KeyCredentials: kc("provider old", "provider backup")},
			{DisplayName: "foreign", KeyCredentials: kc("foreign")},
		},
	}
	all := append([]emulator.Option{
		emulator.WithSeed(seed),
		emulator.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}, opts...)
	dir := t.TempDir()
	reusePKI(t, dir)
	e, err := emulator.New(dir, all...)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	savePKI(t, dir)
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("emulator Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("emulator Close: %v", err)
		}
	})
	env.e = e
	env.tenant = e.TenantID()
	for _, a := range e.State().Tenants[0].Applications {
		env.apps[a.DisplayName] = a
	}
	return env
}

// config returns a client configuration for the agent app signing in with src.
func (env *env) config(t testing.TB, src graph.CredentialSource) graph.Config {
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, bench := t.(*testing.B); bench {
		logger = slog.New(slog.DiscardHandler)
	}
	return graph.Config{
		TenantID:      env.tenant,
		ClientID:      env.apps["agent"].AppID,
		AuthorityHost: env.e.URL() + "/",
		GraphURL:      env.e.URL(),
		Credential:    src,
		RootCAs:       env.e.CertPool(),
		Timeout:       20 * time.Second,
		Logger:        logger,
	}
}

// client returns a client for the agent app signing in with its registered certificate,
// after applying mods to the configuration.
func (env *env) client(t testing.TB, mods ...func(*graph.Config)) *graph.Client {
	t.Helper()
	cfg := env.config(t, newSource(env.certs["agent"]))
	for _, m := range mods {
		m(&cfg)
	}
	c, err := graph.New(cfg)
	if err != nil {
		t.Fatalf("graph.New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// graphRequests returns the emulator's log of Graph requests (not the token endpoint's), as
// "METHOD path status" lines.
func (env *env) graphRequests() []string {
	var out []string
	for _, r := range env.e.Requests() {
		if strings.HasPrefix(r.Path, "/v1.0/") {
			out = append(out, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
		}
	}
	return out
}

// tokenRequests counts the token requests the emulator answered.
func (env *env) tokenRequests() int {
	n := 0
	for _, r := range env.e.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/token") {
			n++
		}
	}
	return n
}

// thumbprints returns the thumbprints of an app's credentials as the emulator holds them.
func (env *env) thumbprints(t *testing.T, app string) []string {
	t.Helper()
	v, err := env.e.Application(env.apps[app].AppID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range v.KeyCredentials {
		out = append(out, k.Thumbprint)
	}
	return out
}

// pkiFiles are the emulator's key material. Its token-signing key is RSA and slow to make,
// so every emulator after the first reuses the first one's (its tenant state is not copied).
var pkiFiles = []string{"ca.pem", "ca.key", "server.pem", "server.key", "signing.pem", "signing.key"}

var (
	pkiMu  sync.Mutex
	pkiDir string // set by TestMain
	pkiSet bool
)

func reusePKI(t testing.TB, dir string) {
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if !pkiSet {
		return
	}
	for _, f := range pkiFiles {
		b, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func savePKI(t testing.TB, dir string) {
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if pkiSet || pkiDir == "" {
		return
	}
	for _, f := range pkiFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkiDir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pkiSet = true
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "graph-test-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pkiDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func thumb(c certtest.Cert) string { return certs.ThumbprintSHA1(c.DER) }

// graphError asserts err is a *graph.Error and returns it.
func graphError(t *testing.T, err error) *graph.Error {
	t.Helper()
	ge, ok := err.(*graph.Error)
	if !ok {
		t.Fatalf("error %v (%T) is not a *graph.Error", err, err)
	}
	return ge
}
