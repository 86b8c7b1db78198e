package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/internal/certtest"
)

// memMeta is the store's meta area in memory.
type memMeta struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memMeta) GetMeta(_ context.Context, k string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[k], nil
}

func (m *memMeta) PutMeta(_ context.Context, k string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	m.m[k] = v
	return nil
}

// provider is the provider's endpoint: a certificate and its signature with ETags.
type provider struct {
	mu       sync.Mutex
	files    map[string][]byte // path → content; absent: 404
	etags    bool
	requests []string // "GET /path If-None-Match"
	status   int      // when set, every answer
}

func (p *provider) set(path string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b == nil {
		delete(p.files, path)
		return
	}
	p.files[path] = b
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("If-None-Match"))
	if p.status != 0 {
		w.WriteHeader(p.status)
		return
	}
	b, ok := p.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if p.etags {
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Write(b)
}

func (p *provider) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.requests
	p.requests = nil
	return out
}

// submits records the Submit calls and answers with reply.
type submits struct {
	mu    sync.Mutex
	calls []string // "cert|sig" (sig "<nil>" when none)
	reply Outcome
}

func (s *submits) submit(_ context.Context, cert, sig []byte, from string) (Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := "<nil>"
	if sig != nil {
		got = string(sig)
	}
	s.calls = append(s.calls, string(cert)+"|"+got)
	return s.reply, nil
}

func (s *submits) taken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

type fixture struct {
	srv  *httptest.Server
	prov *provider
	sub  *submits
	meta *memMeta
	ca   string // the server's CA as a PEM file
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p := &provider{files: map[string][]byte{"/c/next.cer": []byte("cert v1"), "/c/next.cer.sig": []byte("sig v1")}, etags: true}
	srv := httptest.NewTLSServer(p)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "provider-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, prov: p, sub: &submits{}, meta: &memMeta{}, ca: ca}
}

func (fx *fixture) fetcher(t *testing.T, mod func(*Config)) *Fetcher {
	t.Helper()
	cfg := Config{URL: fx.srv.URL + "/c/next.cer", Interval: time.Hour, CAFile: fx.ca, Submit: fx.sub.submit, Meta: fx.meta, Key: "pull/default",
		UserAgent: "certagent/test", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if mod != nil {
		mod(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func codes(ps []health.Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code+"/"+string(p.Severity))
	}
	return strings.Join(out, " ")
}

// TestConditionalFetch: the first round fetches both files and submits them; later rounds ask
// with If-None-Match and submit nothing while nothing changed; a new signature alone fetches
// the certificate again and submits the pair; the state survives a new Fetcher (a restart).
func TestConditionalFetch(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	f := fx.fetcher(t, nil)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fx.sub.taken(); len(got) != 1 || got[0] != "cert v1|sig v1" {
		t.Fatalf("submitted %q", got)
	}
	fx.prov.log()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := fx.prov.log()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[0], `"`) || !strings.HasPrefix(reqs[1], "GET /c/next.cer.sig \"") {
		t.Errorf("second round requests %q, want both conditional", reqs)
	}
	if got := fx.sub.taken(); len(got) != 0 {
		t.Errorf("submitted %q though nothing changed", got)
	}

	fx.prov.set("/c/next.cer.sig", []byte("sig v2"))
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fx.sub.taken(); len(got) != 1 || got[0] != "cert v1|sig v2" {
		t.Errorf("after a new signature submitted %q", got)
	}
	// A restart: the state is in the store.
	g := fx.fetcher(t, nil)
	if err := g.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fx.sub.taken(); len(got) != 0 {
		t.Errorf("after a restart submitted %q again", got)
	}
	if st := g.Status(); st.LastCheck == nil || st.LastSuccess == nil || st.Error != "" || st.URL != fx.srv.URL+"/c/next.cer" || st.IntervalSeconds != 3600 {
		t.Errorf("status = %+v", st)
	}
}

// TestNoETags: a server without ETags costs a download per round and nothing else: the same
// content is not submitted twice.
func TestNoETags(t *testing.T) {
	fx := newFixture(t)
	fx.prov.etags = false
	f := fx.fetcher(t, nil)
	for range 3 {
		if err := f.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.sub.taken(); len(got) != 1 {
		t.Errorf("submitted %q, want once", got)
	}
}

// TestMissingSignature: a 404 for the signature submits the certificate unsigned (the
// target's provenance decides); a 404 for the certificate is a failure, not a submission.
func TestMissingSignature(t *testing.T) {
	fx := newFixture(t)
	fx.prov.set("/c/next.cer.sig", nil)
	f := fx.fetcher(t, nil)
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fx.sub.taken(); len(got) != 1 || got[0] != "cert v1|<nil>" {
		t.Errorf("submitted %q", got)
	}
	fx.prov.set("/c/next.cer", nil)
	err := f.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Poll = %v, want a 404 failure", err)
	}
	if c := codes(f.Problems("default")); c != "source_unreachable/warning" {
		t.Errorf("problems %s", c)
	}
}

// TestFailuresAreProblems: DNS, TLS (the system's roots, or another pinned CA), HTTP errors,
// a redirect to http and files over their limit are failures of the round and a status
// problem until a round works; they never panic or stop anything.
func TestFailuresAreProblems(t *testing.T) {
	fx := newFixture(t)
	// httptest servers share one certificate: another CA is made here.
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(otherCA, certtest.New(time.Now(), certtest.CommonName("another CA")).PEM(), 0o644)
	redirect := httptest.NewTLSServer(http.RedirectHandler("http://127.0.0.1:1/next.cer", http.StatusFound))
	t.Cleanup(redirect.Close)

	tests := []struct {
		name string
		mod  func(*Config)
		prep func()
		want string
	}{
		// No test reaches a DNS server: the lookup's failure is played by the dialer.
		{"unknown host", func(c *Config) {
			c.URL = "https://certs.provider.example/next.cer"
			c.Transport = &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
				return nil, &net.DNSError{Err: "no such host", Name: "certs.provider.example", IsNotFound: true}
			}}
		}, nil, "no such host"},
		{"connection refused", func(c *Config) { c.URL = "https://127.0.0.1:1/next.cer" }, nil, "refused"},
		{"system roots", func(c *Config) { c.CAFile = "" }, nil, "certificate"},
		{"another pinned CA", func(c *Config) { c.CAFile = otherCA }, nil, "certificate"},
		{"missing CA file", func(c *Config) { c.CAFile = otherCA + ".missing" }, nil, "reading source.ca_file"},
		{"server error", nil, func() { fx.prov.status = http.StatusServiceUnavailable }, "503"},
		{"redirect to http", func(c *Config) {
			c.URL = redirect.URL + "/next.cer"
			c.CAFile = ""
			c.Transport = redirect.Client().Transport
		}, nil, "not https"},
		{"certificate too large", nil, func() { fx.prov.set("/c/next.cer", make([]byte, certs.MaxFileSize+1)) }, "over the limit"},
		{"signature too large", nil, func() { fx.prov.set("/c/next.cer.sig", make([]byte, certs.MaxSignatureSize+1)) }, "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx.prov.status = 0
			fx.prov.set("/c/next.cer", []byte("cert v1"))
			fx.prov.set("/c/next.cer.sig", []byte("sig v1"))
			if tt.prep != nil {
				tt.prep()
			}
			f := fx.fetcher(t, tt.mod)
			err := f.Poll(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Poll = %v, want %q", err, tt.want)
			}
			ps := f.Problems("exchange")
			if c := codes(ps); c != "source_unreachable/warning" || !strings.Contains(ps[0].Message, "exchange") {
				t.Errorf("problems %s %+v", c, ps)
			}
			if st := f.Status(); st.Error == "" || st.LastSuccess != nil {
				t.Errorf("status = %+v", st)
			}
		})
	}
	fx.sub.taken()
	fx.prov.status = 0
	fx.prov.set("/c/next.cer", []byte("cert v1"))
	fx.prov.set("/c/next.cer.sig", []byte("sig v1"))
	f := fx.fetcher(t, nil)
	fx.prov.status = http.StatusBadGateway
	f.Poll(context.Background())
	fx.prov.status = 0
	if err := f.Poll(context.Background()); err != nil || len(f.Problems("x")) != 0 {
		t.Errorf("after recovery: %v, problems %s", err, codes(f.Problems("x")))
	}
}

// TestRefusedIsAProblem: a certificate the target refused is a status problem until the
// provider publishes one that is taken: critical for a signature refusal.
func TestRefusedIsAProblem(t *testing.T) {
	fx := newFixture(t)
	fx.sub.reply = Outcome{Reason: &certs.Reason{Code: certs.SignatureInvalid, Message: "not the provider's"}}
	f := fx.fetcher(t, nil)
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := codes(f.Problems("x")); c != "source_refused/critical" {
		t.Errorf("problems %s", c)
	}
	// The same content is not submitted (nor audited) again.
	f.Poll(context.Background())
	if got := fx.sub.taken(); len(got) != 1 {
		t.Errorf("submitted %q", got)
	}
	fx.sub.reply = Outcome{Reason: &certs.Reason{Code: certs.Expired, Message: "expired"}}
	fx.prov.set("/c/next.cer", []byte("cert v2"))
	f.Poll(context.Background())
	if c := codes(f.Problems("x")); c != "source_refused/warning" {
		t.Errorf("problems %s", c)
	}
	fx.sub.reply = Outcome{RotationID: "r1", Created: true}
	fx.prov.set("/c/next.cer", []byte("cert v3"))
	f.Poll(context.Background())
	if ps := f.Problems("x"); len(ps) != 0 || f.Status().RotationID != "r1" {
		t.Errorf("problems %s, status %+v", codes(ps), f.Status())
	}
}

// TestRunAndFetch: Run fetches at start, Fetch asks for a round at once, and Run ends with its
// context.
func TestRunAndFetch(t *testing.T) {
	fx := newFixture(t)
	f := fx.fetcher(t, func(c *Config) { c.Interval = 24 * time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, func() bool { return len(fx.sub.taken()) == 1 })
	fx.prov.set("/c/next.cer", []byte("cert v2"))
	f.Fetch()
	waitFor(t, func() bool { return len(fx.sub.taken()) == 1 })
	if st := f.Status(); st.NextCheck == nil || st.NextCheck.Before(time.Now().Add(21*time.Hour)) {
		t.Errorf("next check %v, want about a day away", st.NextCheck)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNextDelay(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0.5, day},
		{0, 0, time.Duration(float64(day) * 0.9)},
		{1, 0.5, time.Minute},
		{2, 0.5, 2 * time.Minute},
		{5, 0.5, 16 * time.Minute},
		{20, 0.5, day},
		{100, 0.5, day},
	}
	for _, tt := range tests {
		if got := NextDelay(day, tt.failures, tt.r); got.Round(time.Millisecond) != tt.want.Round(time.Millisecond) {
			t.Errorf("NextDelay(24h, %d, %v) = %v, want %v", tt.failures, tt.r, got, tt.want)
		}
	}
	if got := NextDelay(30*time.Second, 3, 0.5); got != 30*time.Second {
		t.Errorf("NextDelay(30s, 3) = %v, want the interval", got)
	}
}

func TestSignatureURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://p.example/c/next.cer":         "https://p.example/c/next.cer.sig",
		"https://p.example/c/next.cer?k=1&x=2": "https://p.example/c/next.cer.sig?k=1&x=2",
		"https://p.example/c/a%2Fb.cer":        "https://p.example/c/a%2Fb.cer.sig",
	} {
		if got, err := SignatureURL(in); err != nil || got != want {
			t.Errorf("SignatureURL(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
