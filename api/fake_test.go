package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/syncbuf"
)

// fakeBackend plays every role the handlers call (StatusSource, CertificateSource,
// RotationService, DropFolder, CredentialService, AuditLog), made of function fields; a nil
// field answers with an error (or a zero value where the method has no error).
type fakeBackend struct {
	StatusFunc           func(ctx context.Context) apitype.Status
	CertificatesFunc     func(ctx context.Context, refresh bool) (apitype.CertificateList, error)
	RotationsFunc        func(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error)
	RotationFunc         func(ctx context.Context, id string) (rotation.Rotation, error)
	SubmitFunc           func(ctx context.Context, s Submission) (SubmitResult, error)
	ExecuteFunc          func(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error)
	ScanFunc             func(ctx context.Context) error
	CredentialFunc       func(ctx context.Context) (apitype.Credential, error)
	RotateCredentialFunc func(ctx context.Context, actor string) error
	AuditFunc            func(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error)
	RetireFunc           func(ctx context.Context, target, keyID, actor, note string) (apitype.Certificate, error)

	// targets records the target each call named, in order.
	targetsMu sync.Mutex
	targets   []string
	ReadyFunc func(ctx context.Context) error
}

var (
	_ StatusSource      = (*fakeBackend)(nil)
	_ CertificateSource = (*fakeBackend)(nil)
	_ RotationService   = (*fakeBackend)(nil)
	_ DropFolder        = (*fakeBackend)(nil)
	_ CredentialService = (*fakeBackend)(nil)
	_ AuditLog          = (*fakeBackend)(nil)
)

// plays makes fb serve every role of cfg.
func (fb *fakeBackend) plays(cfg Config) Config {
	cfg.Status, cfg.Certificates, cfg.Rotations, cfg.DropFolder, cfg.Credential, cfg.Audit = fb, fb, fb, fb, fb, fb
	return cfg
}

var errNotImplemented = errors.New("fake backend: not implemented")

func (f *fakeBackend) Status(ctx context.Context) apitype.Status {
	if f.StatusFunc == nil {
		return apitype.Status{}
	}
	return f.StatusFunc(ctx)
}

func (f *fakeBackend) named(target string) {
	f.targetsMu.Lock()
	f.targets = append(f.targets, target)
	f.targetsMu.Unlock()
}

func (f *fakeBackend) namedTargets() []string {
	f.targetsMu.Lock()
	defer f.targetsMu.Unlock()
	return append([]string(nil), f.targets...)
}

func (f *fakeBackend) Retire(ctx context.Context, target, keyID, actor, note string) (apitype.Certificate, error) {
	if f.RetireFunc == nil {
		return apitype.Certificate{}, errNotImplemented
	}
	return f.RetireFunc(ctx, target, keyID, actor, note)
}

func (f *fakeBackend) Certificates(ctx context.Context, target string, refresh bool) (apitype.CertificateList, error) {
	f.named(target)
	if f.CertificatesFunc == nil {
		return apitype.CertificateList{}, errNotImplemented
	}
	return f.CertificatesFunc(ctx, refresh)
}

func (f *fakeBackend) Rotations(ctx context.Context, fl rotation.Filter, target string) ([]rotation.Rotation, error) {
	f.named(target)
	if f.RotationsFunc == nil {
		return nil, errNotImplemented
	}
	return f.RotationsFunc(ctx, fl)
}

func (f *fakeBackend) Rotation(ctx context.Context, id string) (rotation.Rotation, error) {
	if f.RotationFunc == nil {
		return rotation.Rotation{}, errNotImplemented
	}
	return f.RotationFunc(ctx, id)
}

func (f *fakeBackend) Submit(ctx context.Context, s Submission) (SubmitResult, error) {
	if f.SubmitFunc == nil {
		return SubmitResult{}, errNotImplemented
	}
	return f.SubmitFunc(ctx, s)
}

func (f *fakeBackend) Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error) {
	if f.ExecuteFunc == nil {
		return rotation.Rotation{}, errNotImplemented
	}
	return f.ExecuteFunc(ctx, id, cmd, actor, note)
}

func (f *fakeBackend) Scan(ctx context.Context) error {
	if f.ScanFunc == nil {
		return nil
	}
	return f.ScanFunc(ctx)
}

func (f *fakeBackend) Credential(ctx context.Context) (apitype.Credential, error) {
	if f.CredentialFunc == nil {
		return apitype.Credential{}, errNotImplemented
	}
	return f.CredentialFunc(ctx)
}

func (f *fakeBackend) RotateCredential(ctx context.Context, actor string) error {
	if f.RotateCredentialFunc == nil {
		return errNotImplemented
	}
	return f.RotateCredentialFunc(ctx, actor)
}

func (f *fakeBackend) Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	if f.AuditFunc == nil {
		return nil, errNotImplemented
	}
	return f.AuditFunc(ctx, q)
}

func (f *fakeBackend) Ready(ctx context.Context) error {
	if f.ReadyFunc == nil {
		return nil
	}
	return f.ReadyFunc(ctx)
}

// Fixed test data: times and facts are constants so that rendered JSON is stable.
var (
	t0        = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	testToken = []byte("0123456789abcdef0123456789abcdef")
	testHost  = "127.0.0.1:8471"

	factsA = certs.Certificate{
		Thumbprint:   "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
		SHA256:       "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
		Subject:      "CN=Backup Provider 2027,O=Provider Ltd",
		Issuer:       "CN=Provider Issuing CA,O=Provider Ltd",
		SerialNumber: "3E8",
		NotBefore:    time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC),
		KeyAlgorithm: "RSA",
		KeyBits:      2048,
	}
)

// sampleRotation is an applied rotation with every field the API shows, plus the internal
// ones it must not show.
func sampleRotation() rotation.Rotation {
	return rotation.Rotation{
		ID:          "7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f",
		State:       rotation.StateApplied,
		Certificate: factsA,
		DER:         []byte("secret-looking DER bytes"),
		Source:      rotation.Source{Kind: rotation.SourceDropFolder, FileName: "provider.cer", ArchivedAs: "20261125T193000Z_provider.cer"},
		Target:      rotation.Target{AppID: "11111111-2222-3333-4444-555555555555", ObjectID: "66666666-7777-8888-9999-000000000000", DisplayName: "M365 Backup"},
		KeyID:       "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		IntentKeyID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		Attempts:    1,
		History: []rotation.Event{
			{At: t0, State: rotation.StateApplying, Actor: "intake", Note: "dropped as provider.cer"},
			{At: t0.Add(3 * time.Second), State: rotation.StateApplied, Actor: "agent", Note: "read back from Graph"},
		},
		CreatedAt: t0,
		UpdatedAt: t0.Add(3 * time.Second),
	}
}

// sampleStatus is a status with problems in no particular order.
func sampleStatus() apitype.Status {
	next := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	synced := t0.Add(-5 * time.Minute)
	days := 2
	return apitype.Status{
		StartedAt:     t0.Add(-3 * time.Hour),
		UptimeSeconds: 3 * 3600,
		TenantID:      "99999999-8888-7777-6666-555555555555",
		Target:        apitype.Target{AppID: "11111111-2222-3333-4444-555555555555", ObjectID: "66666666-7777-8888-9999-000000000000", DisplayName: "M365 Backup"},
		DropFolder:    "/var/lib/certagent/drop",
		Approval:      "manual",
		Certificates: apitype.CertificateSummary{
			Count: 2, NextExpiry: &next, DaysLeft: &days,
			NextExpiryThumbprint: "0F0E0D0C0B0A09080706050403020100FFEEDDCC", NextExpiryDisplayName: "Provider 2026",
		},
		Rotations: map[string]int{"pending_approval": 1, "confirmed": 3},
		LastSync:  apitype.SyncStatus{At: &synced, OK: true, LastSuccess: &synced},
		Credential: &apitype.CredentialSummary{
			Thumbprint: "FFEEDDCCBBAA99887766554433221100FFEEDDCC", NotAfter: time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC), DaysRemaining: 156,
		},
		Targets: []apitype.TargetStatus{{
			Name: "default", TenantID: "99999999-8888-7777-6666-555555555555",
			Target:     apitype.Target{Name: "default", AppID: "11111111-2222-3333-4444-555555555555", ObjectID: "66666666-7777-8888-9999-000000000000", DisplayName: "M365 Backup"},
			DropFolder: "/var/lib/certagent/drop", Approval: "manual",
			Certificates: apitype.CertificateSummary{
				Count: 2, NextExpiry: &next, DaysLeft: &days,
				NextExpiryThumbprint: "0F0E0D0C0B0A09080706050403020100FFEEDDCC", NextExpiryDisplayName: "Provider 2026",
			},
			Rotations: map[string]int{"pending_approval": 1, "confirmed": 3},
			LastSync:  apitype.SyncStatus{At: &synced, OK: true, LastSuccess: &synced},
			Retire:    apitype.RetireStatus{AfterDays: 14},
		}},
		Problems: []apitype.StatusProblem{
			{Code: apitype.ProblemAwaitingApproval, Severity: apitype.SeverityInfo, Message: "1 rotation waits for approval"},
			{Code: apitype.ProblemCertificateExpiring, Severity: apitype.SeverityCritical, Message: "the certificate \"Provider 2026\" expires in 2 days"},
		},
	}
}

// logBuffer collects log records as JSON lines, safe for concurrent use.
type logBuffer struct{ syncbuf.Buffer }

// records returns the logged records decoded.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// newTestHandler returns the API handler over fb, logging to logs when it is not nil.
func newTestHandler(t testing.TB, fb *fakeBackend, logs io.Writer, mods ...func(*Config)) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if logs != nil {
		logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := (fb).plays(Config{Token: testToken, Logger: logger, Version: "1.2.3-test", ListenAddr: "127.0.0.1:8471"})
	for _, m := range mods {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// req describes a test request; the zero value is an authorised GET from the loopback host.
type req struct {
	method  string
	path    string
	body    io.Reader
	ctype   string
	header  map[string]string
	host    string // "" means testHost
	noToken bool
}

// serve sends r to h and returns the recorded response.
func serve(t testing.TB, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	hr := httptest.NewRequest(method, r.path, r.body)
	hr.Host = testHost
	if r.host != "" {
		hr.Host = r.host
	}
	if r.host == "-" {
		hr.Host = ""
	}
	if !r.noToken {
		hr.Header.Set("Authorization", "Bearer "+string(testToken))
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return rec
}

// problemOf decodes a problem response, checking its media type and its fixed members.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder) apitype.Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, rec.Body)
	}
	var p apitype.Problem
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding problem %s: %v", rec.Body, err)
	}
	if p.Status != rec.Code {
		t.Errorf("problem status = %d, response status %d", p.Status, rec.Code)
	}
	if p.Type != apitype.ProblemTypePrefix+p.Code || p.Title == "" || p.Detail == "" || p.Code == "" {
		t.Errorf("problem %+v: want type %s<code>, a title, a detail and a code", p, apitype.ProblemTypePrefix)
	}
	return p
}

// wantProblem checks that rec is a problem with status and code.
func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) apitype.Problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	p := problemOf(t, rec)
	if p.Code != code {
		t.Fatalf("problem code = %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	return p
}

// decode decodes a JSON success response into v, strictly.
func decode(t *testing.T, rec *httptest.ResponseRecorder, status int, v any) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body, err)
	}
}
