package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
)

func TestRoutesSorted(t *testing.T) {
	less := func(a, b route) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.method, b.method)
	}
	if !slices.IsSortedFunc(routes, less) {
		sorted := slices.Clone(routes)
		slices.SortStableFunc(sorted, less)
		var want []string
		for _, r := range sorted {
			want = append(want, r.method+" "+r.path)
		}
		t.Errorf("routes are not sorted by path, then method; want the order:\n%s", strings.Join(want, "\n"))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		key := r.method + " " + r.path
		if seen[key] || seen[r.operationID] {
			t.Errorf("route %s (%s) is listed twice", key, r.operationID)
		}
		seen[key], seen[r.operationID] = true, true
		if r.mutating != (r.method == http.MethodPost) {
			t.Errorf("route %s: mutating = %v; every POST route, and only those, mutate", key, r.mutating)
		}
		if r.public && !slices.Contains([]string{"/livez", "/readyz"}, r.path) {
			t.Errorf("route %s is public; only /livez and /readyz may be", key)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger}), ""},
		{"ok listen localhost", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger, ListenAddr: "localhost:8471"}), ""},
		{"ok listen ipv6", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger, ListenAddr: "[::1]:8471"}), ""},
		{"no roles", Config{Token: testToken, Logger: logger}, "Status, Certificates, Rotations, DropFolder, Credential and Audit are required"},
		{"no logger", (&fakeBackend{}).plays(Config{Token: testToken}), "Logger is required"},
		{"no token", (&fakeBackend{}).plays(Config{Logger: logger}), "Token must be at least"},
		{"short token", (&fakeBackend{}).plays(Config{Token: []byte("short"), Logger: logger}), "Token must be at least"},
		{"listen not loopback", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger, ListenAddr: "0.0.0.0:8471"}), "not a loopback address"},
		{"listen name", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger, ListenAddr: "example.com:8471"}), "not a loopback address"},
		{"listen no port", (&fakeBackend{}).plays(Config{Token: testToken, Logger: logger, ListenAddr: "127.0.0.1"}), "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New() = %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestServerLimits(t *testing.T) {
	var s http.Server
	ServerLimits(&s)
	if s.ReadHeaderTimeout != ReadHeaderTimeout || s.ReadTimeout != ReadTimeout || s.WriteTimeout != WriteTimeout ||
		s.IdleTimeout != IdleTimeout || s.MaxHeaderBytes != MaxHeaderBytes {
		t.Errorf("ServerLimits set %v %v %v %v %d", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Errorf("a limit is not set")
	}
}

func TestBrowserChecks(t *testing.T) {
	h := newTestHandler(t, &fakeBackend{}, nil, func(c *Config) { c.ListenAddr = "127.0.0.2:9000" })
	tests := []struct {
		name   string
		host   string
		header map[string]string
		want   int // on /livez; /api/v1/status answers the same when want is 403
	}{
		{"loopback ip", "127.0.0.1:8471", nil, 200},
		{"loopback ip no port", "127.0.0.1", nil, 200},
		{"localhost", "localhost:8471", nil, 200},
		{"localhost upper case", "LOCALHOST:8471", nil, 200},
		{"ipv6", "[::1]:8471", nil, 200},
		{"ipv6 no port", "[::1]", nil, 200},
		{"configured listen host", "127.0.0.2:9000", nil, 200},
		{"any port", "localhost:1", nil, 200},
		{"foreign name", "evil.example:8471", nil, 403},
		{"rebinding name", "127.0.0.1.nip.io:8471", nil, 403},
		{"localhost suffix", "localhost.evil.example", nil, 403},
		{"trailing dot", "localhost.:8471", nil, 403},
		{"other loopback ip not configured", "127.0.0.3:8471", nil, 403},
		{"lan ip", "192.168.1.10:8471", nil, 403},
		{"empty host", "-", nil, 403},
		{"bad port", "localhost:http", nil, 403},
		{"long port", "localhost:123456", nil, 403},
		{"origin", "127.0.0.1:8471", map[string]string{"Origin": "http://evil.example"}, 403},
		{"origin null", "127.0.0.1:8471", map[string]string{"Origin": "null"}, 403},
		{"origin self", "127.0.0.1:8471", map[string]string{"Origin": "http://127.0.0.1:8471"}, 403},
		{"referer", "127.0.0.1:8471", map[string]string{"Referer": "http://evil.example/page"}, 403},
		{"sec-fetch-site cross-site", "127.0.0.1:8471", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"sec-fetch-site same-origin", "127.0.0.1:8471", map[string]string{"Sec-Fetch-Site": "same-origin"}, 403},
		{"sec-fetch-site none", "127.0.0.1:8471", map[string]string{"Sec-Fetch-Site": "none"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, h, req{path: "/livez", host: tt.host, header: tt.header, noToken: true})
			if rec.Code != tt.want {
				t.Fatalf("GET /livez with Host %q %v = %d, want %d", tt.host, tt.header, rec.Code, tt.want)
			}
			if tt.want != 403 {
				return
			}
			wantProblem(t, rec, 403, apitype.CodeForbidden)
			// Before the token check: with or without the token, the same 403.
			for _, noToken := range []bool{false, true} {
				rec := serve(t, h, req{path: "/api/v1/status", host: tt.host, header: tt.header, noToken: noToken})
				wantProblem(t, rec, 403, apitype.CodeForbidden)
			}
			rec = serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan", host: tt.host, header: tt.header})
			wantProblem(t, rec, 403, apitype.CodeForbidden)
		})
	}
}

func TestAuth(t *testing.T) {
	fb := &fakeBackend{StatusFunc: func(context.Context) apitype.Status { return sampleStatus() }}
	h := newTestHandler(t, fb, nil, func(c *Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") })
	})
	tok := string(testToken)
	tests := []struct {
		name      string
		auth      []string // Authorization headers
		wantCode  int
		wantChall string // WWW-Authenticate
	}{
		{"no token", nil, 401, `Bearer realm="certagent"`},
		{"right token", []string{"Bearer " + tok}, 200, ""},
		{"scheme case-insensitive", []string{"bearer " + tok}, 200, ""},
		{"wrong token", []string{"Bearer " + strings.ToUpper(tok)}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"token prefix", []string{"Bearer " + tok[:20]}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"token longer", []string{"Bearer " + tok + "x"}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"empty bearer", []string{"Bearer "}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"basic", []string{"Basic " + tok}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"bare token", []string{tok}, 401, `Bearer realm="certagent", error="invalid_token"`},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, 401, `Bearer realm="certagent", error="invalid_token"`},
	}
	paths := []string{"/api/v1/status", "/metrics", "/api/v1/openapi.json", "/api/v1/no-such-route", "/elsewhere"}
	for _, tt := range tests {
		for _, path := range paths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Host = testHost
				if tt.auth != nil {
					r.Header["Authorization"] = tt.auth
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				want := tt.wantCode
				if want == 200 && strings.Contains(path, "no-such") || want == 200 && path == "/elsewhere" {
					want = 404
				}
				if rec.Code != want {
					t.Fatalf("GET %s with %q = %d, want %d; body %s", path, tt.auth, rec.Code, want, rec.Body)
				}
				if want == 401 {
					wantProblem(t, rec, 401, apitype.CodeUnauthorized)
					if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantChall {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
					}
					if strings.Contains(rec.Body.String(), tok[:8]) {
						t.Errorf("401 body holds the token: %s", rec.Body)
					}
				}
			})
		}
	}
	// Public routes need no token.
	for _, path := range []string{"/livez", "/readyz"} {
		if rec := serve(t, h, req{path: path, noToken: true}); rec.Code != 200 {
			t.Errorf("GET %s without a token = %d, want 200", path, rec.Code)
		}
	}
}

func TestNoCORSAndSecurityHeaders(t *testing.T) {
	h := newTestHandler(t, &fakeBackend{StatusFunc: func(context.Context) apitype.Status { return sampleStatus() }}, nil)
	for _, r := range []req{
		{path: "/api/v1/status"},
		{method: http.MethodOptions, path: "/api/v1/status"},
		{method: http.MethodOptions, path: "/api/v1/rotations", header: map[string]string{"Access-Control-Request-Method": "POST"}},
		{path: "/api/v1/status", header: map[string]string{"Origin": "http://evil.example"}},
		{path: "/livez", noToken: true},
		{path: "/nope"},
	} {
		rec := serve(t, h, r)
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s %s: response has CORS header %s", r.method, r.path, k)
			}
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: security headers missing: %v", r.method, r.path, rec.Header())
		}
	}
}

func TestUnknownRouteAndMethods(t *testing.T) {
	h := newTestHandler(t, &fakeBackend{}, nil)
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{http.MethodGet, "/api/v1/nope", 404, ""},
		{http.MethodGet, "/api/v2/status", 404, ""},
		{http.MethodGet, "/api/v1/status/", 404, ""},
		{http.MethodGet, "/", 404, ""},
		{http.MethodPost, "/api/v1/rotations/x/explode", 404, ""},
		{http.MethodGet, "/api/v1/scan", 405, "POST"},
		{http.MethodPut, "/api/v1/scan", 405, "POST"},
		{http.MethodGet, "/api/v1/credential/rotate", 405, "POST"},
		{http.MethodGet, "/api/v1/rotations/x/approve", 405, "POST"},
		{http.MethodDelete, "/api/v1/rotations/x", 405, "GET"},
		{http.MethodPatch, "/api/v1/rotations/x/confirm", 405, "POST"},
		{http.MethodPut, "/api/v1/rotations", 405, "GET, POST"},
		{http.MethodPost, "/api/v1/status", 405, "GET"},
		{http.MethodHead, "/api/v1/status", 405, "GET"},
		{http.MethodOptions, "/api/v1/status", 405, "GET"},
		{http.MethodPost, "/livez", 405, "GET"},
		{http.MethodDelete, "/metrics", 405, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := serve(t, h, req{method: tt.method, path: tt.path})
			if tt.method == http.MethodHead {
				if rec.Code != tt.want || rec.Body.Len() != 0 {
					t.Fatalf("HEAD = %d with %d body bytes, want %d and none", rec.Code, rec.Body.Len(), tt.want)
				}
			} else {
				code := apitype.CodeNotFound
				if tt.want == 405 {
					code = apitype.CodeMethodNotAllowed
				}
				wantProblem(t, rec, tt.want, code)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	fb := &fakeBackend{StatusFunc: func(context.Context) apitype.Status { return sampleStatus() }}
	h := newTestHandler(t, fb, nil)
	rec := serve(t, h, req{path: "/api/v1/status"})
	var got apitype.Status
	decode(t, rec, 200, &got)
	if got.Version != "1.2.3-test" {
		t.Errorf("version = %q, want the configured 1.2.3-test", got.Version)
	}
	for _, st := range rotation.States {
		if _, ok := got.Rotations[string(st)]; !ok {
			t.Errorf("rotations lacks state %s: %v", st, got.Rotations)
		}
	}
	if got.Rotations["pending_approval"] != 1 || got.Rotations["confirmed"] != 3 || got.Rotations["failed"] != 0 {
		t.Errorf("rotations = %v", got.Rotations)
	}
	if len(got.Problems) != 2 || got.Problems[0].Severity != apitype.SeverityCritical {
		t.Errorf("problems = %+v, want the critical one first", got.Problems)
	}
	checkGolden(t, "status.json", rec.Body.Bytes())

	// The backend's version wins; no problems is [], never null; unknown states are dropped.
	fb.StatusFunc = func(context.Context) apitype.Status {
		return apitype.Status{Version: "9.9.9", Rotations: map[string]int{"bogus": 4}, StartedAt: t0.In(time.FixedZone("x", 3600))}
	}
	rec = serve(t, h, req{path: "/api/v1/status"})
	body := rec.Body.String()
	if !strings.Contains(body, `"problems":[]`) || !strings.Contains(body, `"version":"9.9.9"`) || strings.Contains(body, "bogus") {
		t.Errorf("status body:\n%s", body)
	}
	if !strings.Contains(body, `"startedAt":"2026-11-25T19:30:00Z"`) {
		t.Errorf("startedAt not in UTC:\n%s", body)
	}
}

func TestCertificates(t *testing.T) {
	var gotRefresh []bool
	synced := t0
	fb := &fakeBackend{CertificatesFunc: func(_ context.Context, refresh bool) (apitype.CertificateList, error) {
		gotRefresh = append(gotRefresh, refresh)
		return apitype.CertificateList{SyncedAt: &synced, Items: []apitype.Certificate{{
			KeyID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Thumbprint: factsA.Thumbprint, DisplayName: "CN=Backup Provider 2027",
			StartDateTime: factsA.NotBefore, EndDateTime: factsA.NotAfter, DaysRemaining: 340, AddedByAgent: true,
			RotationID: "7d9f1c2e-5b1a-4c3e-9f0d-2a6b8c4d1e0f",
		}}}, nil
	}}
	h := newTestHandler(t, fb, nil)
	rec := serve(t, h, req{path: "/api/v1/certificates"})
	var list apitype.CertificateList
	decode(t, rec, 200, &list)
	checkGolden(t, "certificates.json", rec.Body.Bytes())
	for _, q := range []string{"?refresh=true", "?refresh=1", "?refresh=false"} {
		decode(t, serve(t, h, req{path: "/api/v1/certificates" + q}), 200, &list)
	}
	if want := []bool{false, true, true, false}; !slices.Equal(gotRefresh, want) {
		t.Errorf("refresh passed = %v, want %v", gotRefresh, want)
	}
	for _, q := range []string{"?refresh=yes", "?refresh=true&refresh=true", "?refesh=true", "?%zz"} {
		wantProblem(t, serve(t, h, req{path: "/api/v1/certificates" + q}), 400, apitype.CodeInvalidRequest)
	}
	if len(gotRefresh) != 4 {
		t.Errorf("the backend was called for a refused request")
	}

	// Rate limiting and Graph trouble come from the backend as the agent's own errors.
	fb.CertificatesFunc = func(context.Context, bool) (apitype.CertificateList, error) {
		return apitype.CertificateList{}, &health.TooSoonError{Detail: "refreshed 3 s ago; wait", Wait: 2500 * time.Millisecond}
	}
	rec = serve(t, h, req{path: "/api/v1/certificates?refresh=true"})
	p := wantProblem(t, rec, 429, apitype.CodeRateLimited)
	if rec.Header().Get("Retry-After") != "3" || p.Detail != "refreshed 3 s ago; wait" {
		t.Errorf("Retry-After = %q, detail %q", rec.Header().Get("Retry-After"), p.Detail)
	}
	fb.CertificatesFunc = func(context.Context, bool) (apitype.CertificateList, error) {
		return apitype.CertificateList{}, &health.UnavailableError{Problem: health.Problem{Code: apitype.CodeUnavailable, Message: "Graph could not be reached"}, Err: errors.New("dial tcp: secret-internal-detail")}
	}
	rec = serve(t, h, req{path: "/api/v1/certificates?refresh=true"})
	wantProblem(t, rec, 503, apitype.CodeUnavailable)
	if strings.Contains(rec.Body.String(), "secret-internal-detail") {
		t.Errorf("the underlying error reached the client: %s", rec.Body)
	}
	// An empty list is [], never null.
	fb.CertificatesFunc = func(context.Context, bool) (apitype.CertificateList, error) { return apitype.CertificateList{}, nil }
	if body := serve(t, h, req{path: "/api/v1/certificates"}).Body.String(); !strings.Contains(body, `"items":[]`) || strings.Contains(body, "syncedAt") {
		t.Errorf("empty list = %s", body)
	}
}

func TestRotations(t *testing.T) {
	var gotFilter []rotation.Filter
	fb := &fakeBackend{
		RotationsFunc: func(_ context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
			gotFilter = append(gotFilter, f)
			return []rotation.Rotation{sampleRotation()}, nil
		},
		RotationFunc: func(_ context.Context, id string) (rotation.Rotation, error) {
			if id == sampleRotation().ID {
				return sampleRotation(), nil
			}
			return rotation.Rotation{}, fmt.Errorf("getting %s: %w", id, rotation.ErrNotFound)
		},
	}
	h := newTestHandler(t, fb, nil)

	rec := serve(t, h, req{path: "/api/v1/rotations"})
	var list apitype.RotationList
	decode(t, rec, 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != sampleRotation().ID {
		t.Fatalf("list = %+v", list)
	}
	decode(t, serve(t, h, req{path: "/api/v1/rotations?state=failed"}), 200, &list)
	if want := []rotation.Filter{{}, {State: rotation.StateFailed}}; !slices.Equal(gotFilter, want) {
		t.Errorf("filters = %v, want %v", gotFilter, want)
	}
	for _, q := range []string{"?state=done", "?state=FAILED", "?state=failed&state=applied", "?status=failed"} {
		p := wantProblem(t, serve(t, h, req{path: "/api/v1/rotations" + q}), 400, apitype.CodeInvalidRequest)
		if q == "?state=done" && !strings.Contains(p.Detail, "pending_approval") {
			t.Errorf("detail %q does not list the states", p.Detail)
		}
	}

	rec = serve(t, h, req{path: "/api/v1/rotations/" + sampleRotation().ID})
	var r apitype.Rotation
	decode(t, rec, 200, &r)
	checkGolden(t, "rotation.json", rec.Body.Bytes())
	body := rec.Body.String()
	for _, hidden := range []string{`"der"`, "intentKeyId", "attempts", "secret-looking"} {
		if strings.Contains(body, hidden) {
			t.Errorf("rotation JSON shows %q:\n%s", hidden, body)
		}
	}

	p := wantProblem(t, serve(t, h, req{path: "/api/v1/rotations/nope"}), 404, apitype.CodeNotFound)
	if !strings.Contains(p.Detail, `"nope"`) {
		t.Errorf("detail = %q, want it to name the id", p.Detail)
	}
}

func TestSubmit(t *testing.T) {
	leaf := certtest.New(t0)
	rot := sampleRotation()
	var got []Submission
	result := SubmitResult{Rotation: rot, Created: true}
	fb := &fakeBackend{SubmitFunc: func(_ context.Context, s Submission) (SubmitResult, error) {
		got = append(got, s)
		return result, nil
	}}
	var logs logBuffer
	h := newTestHandler(t, fb, &logs)

	tests := []struct {
		name     string
		ctype    string
		body     []byte
		header   map[string]string
		wantData []byte
		wantName string
	}{
		{"der", "application/pkix-cert", leaf.DER, nil, leaf.DER, ""},
		{"der octet-stream with name", "application/octet-stream", leaf.DER,
			map[string]string{"Content-Disposition": `attachment; filename="provider 2027.cer"`}, leaf.DER, "provider 2027.cer"},
		{"pem", "application/x-pem-file", leaf.PEM(), nil, leaf.PEM(), ""},
		{"pem text/plain with charset", "text/plain; charset=utf-8", leaf.PEM(), nil, leaf.PEM(), ""},
		{"no content type", "", leaf.PEM(), nil, leaf.PEM(), ""},
		{"windows cer type", "application/x-x509-ca-cert", leaf.DER, nil, leaf.DER, ""},
		{"json", "application/json", mustJSON(t, apitype.SubmitRequest{Certificate: string(leaf.PEM()), FileName: "new.pem"}), nil, leaf.PEM(), "new.pem"},
		{"json path cut to base name", "application/json; charset=utf-8", mustJSON(t, apitype.SubmitRequest{Certificate: "TUlJQw==", FileName: `C:\Users\alice\Downloads\new.cer`}), nil, []byte("TUlJQw=="), "new.cer"},
		{"json unix path", "application/json", []byte(`{"certificate":"TUlJQw==","fileName":"/tmp/x/new.cer"}`), nil, []byte("TUlJQw=="), "new.cer"},
		{"actor header", "application/pkix-cert", leaf.DER, map[string]string{ActorHeader: `CONTOSO\alice`}, leaf.DER, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: bytes.NewReader(tt.body), ctype: tt.ctype, header: tt.header})
			var r apitype.Rotation
			decode(t, rec, 201, &r)
			if loc := rec.Header().Get("Location"); loc != "/api/v1/rotations/"+rot.ID {
				t.Errorf("Location = %q", loc)
			}
			if len(got) != 1 {
				t.Fatalf("backend called %d times", len(got))
			}
			if !bytes.Equal(got[0].Data, tt.wantData) || got[0].FileName != tt.wantName {
				t.Errorf("submission = %q (%d bytes), want name %q and the body's %d bytes", got[0].FileName, len(got[0].Data), tt.wantName, len(tt.wantData))
			}
			wantActor := "api"
			if a := tt.header[ActorHeader]; a != "" {
				wantActor = "api:" + a
			}
			if got[0].Actor != wantActor {
				t.Errorf("actor = %q, want %q", got[0].Actor, wantActor)
			}
		})
	}

	t.Run("existing", func(t *testing.T) {
		result = SubmitResult{Rotation: rot, Created: false}
		defer func() { result = SubmitResult{Rotation: rot, Created: true} }()
		rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: bytes.NewReader(leaf.DER), ctype: "application/pkix-cert"})
		var r apitype.Rotation
		decode(t, rec, 200, &r)
		if rec.Header().Get("Location") != "" || r.ID != rot.ID {
			t.Errorf("existing: Location %q, id %q", rec.Header().Get("Location"), r.ID)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		facts := factsA
		result = SubmitResult{Rejected: &certs.Reason{Code: certs.Expired, Message: "the certificate expired on 2026-01-01"}, Certificate: &facts}
		defer func() { result = SubmitResult{Rotation: rot, Created: true} }()
		rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: bytes.NewReader(leaf.DER), ctype: "application/pkix-cert"})
		p := wantProblem(t, rec, 422, string(certs.Expired))
		if p.Certificate == nil || p.Certificate.Thumbprint != factsA.Thumbprint || p.Detail != "the certificate expired on 2026-01-01" {
			t.Errorf("problem = %+v", p)
		}
		checkGolden(t, "rejected.json", rec.Body.Bytes())
		// Without facts (nothing parsed), no certificate member.
		result = SubmitResult{Rejected: &certs.Reason{Code: certs.NotACertificate, Message: "nothing in the input parses as a certificate"}}
		rec = serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: strings.NewReader("hello"), ctype: "text/plain"})
		if p := wantProblem(t, rec, 422, string(certs.NotACertificate)); p.Certificate != nil {
			t.Errorf("certificate member without facts: %s", rec.Body)
		}
	})

	refusals := []struct {
		name   string
		ctype  string
		body   io.Reader
		header map[string]string
		status int
		code   string
	}{
		{"bad json", "application/json", strings.NewReader(`{"certificate": `), nil, 400, apitype.CodeInvalidRequest},
		{"json syntax", "application/json", strings.NewReader(`{"certificate" "x"}`), nil, 400, apitype.CodeInvalidRequest},
		{"unknown field", "application/json", strings.NewReader(`{"certificate":"x","file":"a.cer"}`), nil, 400, apitype.CodeInvalidRequest},
		{"wrong type", "application/json", strings.NewReader(`{"certificate":42}`), nil, 400, apitype.CodeInvalidRequest},
		{"array", "application/json", strings.NewReader(`["x"]`), nil, 400, apitype.CodeInvalidRequest},
		{"trailing data", "application/json", strings.NewReader(`{"certificate":"x"} {"certificate":"y"}`), nil, 400, apitype.CodeInvalidRequest},
		{"trailing garbage", "application/json", strings.NewReader(`{"certificate":"x"}]`), nil, 400, apitype.CodeInvalidRequest},
		{"missing certificate", "application/json", strings.NewReader(`{"fileName":"a.cer"}`), nil, 400, apitype.CodeInvalidRequest},
		{"empty json body", "application/json", strings.NewReader(``), nil, 400, apitype.CodeInvalidRequest},
		{"empty raw body", "application/pkix-cert", strings.NewReader(""), nil, 400, apitype.CodeInvalidRequest},
		{"control character in name", "application/json", strings.NewReader(`{"certificate":"x","fileName":"a\u0007.cer"}`), nil, 400, apitype.CodeInvalidRequest},
		{"long name", "application/json", strings.NewReader(`{"certificate":"x","fileName":"` + strings.Repeat("a", 256) + `"}`), nil, 400, apitype.CodeInvalidRequest},
		{"dot dot name", "application/octet-stream", strings.NewReader("x"), map[string]string{"Content-Disposition": `attachment; filename=".."`}, 400, apitype.CodeInvalidRequest},
		{"bad content disposition", "application/octet-stream", strings.NewReader("x"), map[string]string{"Content-Disposition": `attachment; filename="x`}, 400, apitype.CodeInvalidRequest},
		{"form", "application/x-www-form-urlencoded", strings.NewReader("certificate=x"), nil, 415, apitype.CodeUnsupportedMediaType},
		{"multipart", "multipart/form-data; boundary=x", strings.NewReader("--x--"), nil, 415, apitype.CodeUnsupportedMediaType},
		{"malformed content type", "application/", strings.NewReader("x"), nil, 415, apitype.CodeUnsupportedMediaType},
		{"too large", "application/octet-stream", bytes.NewReader(make([]byte, MaxBodySize+1)), nil, 413, apitype.CodeTooLarge},
		{"too large unknown length", "application/octet-stream", io.MultiReader(bytes.NewReader(make([]byte, MaxBodySize)), strings.NewReader("x")), nil, 413, apitype.CodeTooLarge},
		{"too large json", "application/json", bytes.NewReader(append(append([]byte(`{"certificate":"`), bytes.Repeat([]byte("A"), MaxBodySize)...), `"}`...)), nil, 413, apitype.CodeTooLarge},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: tt.body, ctype: tt.ctype, header: tt.header})
			wantProblem(t, rec, tt.status, tt.code)
			if len(got) != 0 {
				t.Errorf("the backend was called for a refused request")
			}
		})
	}

	t.Run("exactly the limit", func(t *testing.T) {
		got = nil
		rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: bytes.NewReader(bytes.Repeat([]byte("A"), MaxBodySize)), ctype: "text/plain"})
		if rec.Code != 201 || len(got) != 1 || len(got[0].Data) != MaxBodySize {
			t.Errorf("a body of exactly %d bytes = %d", MaxBodySize, rec.Code)
		}
	})

	t.Run("backend failure leaks nothing", func(t *testing.T) {
		fb.SubmitFunc = func(context.Context, Submission) (SubmitResult, error) {
			return SubmitResult{}, errors.New("bolt: write /var/lib/certagent/state.db: secret-internal-detail")
		}
		defer func() {
			fb.SubmitFunc = func(_ context.Context, s Submission) (SubmitResult, error) { got = append(got, s); return result, nil }
		}()
		rec := serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", body: bytes.NewReader(leaf.DER), ctype: "application/pkix-cert"})
		wantProblem(t, rec, 500, apitype.CodeInternal)
		if strings.Contains(rec.Body.String(), "secret-internal-detail") {
			t.Errorf("internal error reached the client: %s", rec.Body)
		}
	})

	// Mutating calls are logged with method, path, status and actor; the body never is.
	var posts int
	for _, r := range logs.records(t) {
		if r["msg"] != "api call" {
			continue
		}
		posts++
		if r["method"] != "POST" || r["path"] != "/api/v1/rotations" || r["status"] == nil || r["actor"] == nil {
			t.Errorf("log record %v lacks method, path, status or actor", r)
		}
	}
	if posts < len(tests)+len(refusals) {
		t.Errorf("%d mutating calls logged, want at least %d", posts, len(tests)+len(refusals))
	}
	if all := logs.String(); strings.Contains(all, "BEGIN CERTIFICATE") || strings.Contains(all, string(testToken)) {
		t.Errorf("the log holds a certificate body or the token")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestActorHeader(t *testing.T) {
	tests := []struct {
		header, want string
	}{
		{"", "api"},
		{"alice", "api:alice"},
		{`CONTOSO\alice`, `api:CONTOSO\alice`},
		{"  bob  ", "api:bob"},
		{"a\x00b\x1bc\u200bd", "api:abcd"},
		{"\x01\x02", "api"},
		{strings.Repeat("x", 100), "api:" + strings.Repeat("x", 64)},
		{strings.Repeat("é", 70), "api:" + strings.Repeat("é", 64)},
		{"bad\xffutf8", "api:badutf8"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if tt.header != "" {
			r.Header.Set(ActorHeader, tt.header)
		}
		if got := actorOf(r); got != tt.want {
			t.Errorf("actorOf(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestActions(t *testing.T) {
	type call struct {
		id     string
		action rotation.Command
		actor  string
		note   string
	}
	var calls []call
	fb := &fakeBackend{ExecuteFunc: func(_ context.Context, id string, action rotation.Command, actor, note string) (rotation.Rotation, error) {
		calls = append(calls, call{id, action, actor, note})
		switch id {
		case "missing":
			return rotation.Rotation{}, fmt.Errorf("acting: %w", rotation.ErrNotFound)
		case "done":
			r := sampleRotation()
			r.State = rotation.StateConfirmed
			return r, &rotation.StateError{ID: id, State: rotation.StateConfirmed, Command: action}
		}
		r := sampleRotation()
		r.ID = id
		return r, nil
	}}
	var logs logBuffer
	h := newTestHandler(t, fb, &logs)

	for _, action := range rotation.Commands {
		t.Run(string(action), func(t *testing.T) {
			calls = nil
			path := "/api/v1/rotations/r1/" + string(action)
			var r apitype.Rotation
			decode(t, serve(t, h, req{method: http.MethodPost, path: path}), 200, &r)
			decode(t, serve(t, h, req{method: http.MethodPost, path: path, ctype: "application/json", body: strings.NewReader(`{"note":"told the provider by phone"}`), header: map[string]string{ActorHeader: "alice"}}), 200, &r)
			decode(t, serve(t, h, req{method: http.MethodPost, path: path, ctype: "application/json", body: strings.NewReader(`{}`)}), 200, &r)
			decode(t, serve(t, h, req{method: http.MethodPost, path: path, body: strings.NewReader(`{"note":"no content type"}`)}), 200, &r)
			want := []call{
				{"r1", action, "api", ""},
				{"r1", action, "api:alice", "told the provider by phone"},
				{"r1", action, "api", ""},
				{"r1", action, "api", "no content type"},
			}
			if !slices.Equal(calls, want) {
				t.Errorf("calls = %+v, want %+v", calls, want)
			}

			p := wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations/done/" + string(action)}), 409, apitype.CodeInvalidState)
			if p.State != "confirmed" || !strings.Contains(p.Detail, "cannot "+string(action)) {
				t.Errorf("409 problem = %+v", p)
			}
			wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations/missing/" + string(action)}), 404, apitype.CodeNotFound)

			calls = nil
			for _, bad := range []struct {
				ctype, body string
				status      int
			}{
				{"application/json", `{"note":"x","extra":1}`, 400},
				{"application/json", `{"note":`, 400},
				{"application/json", `{"note":5}`, 400},
				{"application/json", `{"note":"a"} x`, 400},
				{"application/json", `{"note":"line\nbreak"}`, 400},
				{"application/json", `{"note":"` + strings.Repeat("n", 1001) + `"}`, 400},
				{"text/plain", `note`, 415},
				{"application/x-www-form-urlencoded", `note=x`, 415},
			} {
				rec := serve(t, h, req{method: http.MethodPost, path: path, ctype: bad.ctype, body: strings.NewReader(bad.body)})
				if rec.Code != bad.status {
					t.Errorf("body %q (%s) = %d, want %d", bad.body, bad.ctype, rec.Code, bad.status)
				}
				problemOf(t, rec)
			}
			wantProblem(t, serve(t, h, req{method: http.MethodPost, path: path, ctype: "application/json", body: bytes.NewReader(make([]byte, MaxBodySize+1))}), 413, apitype.CodeTooLarge)
			if len(calls) != 0 {
				t.Errorf("the backend was called for refused requests: %+v", calls)
			}
		})
	}

	found := false
	for _, r := range logs.records(t) {
		if r["msg"] == "api call" && r["path"] == "/api/v1/rotations/r1/approve" && r["actor"] == "api:alice" && r["status"] == float64(200) && r["rotation_id"] == "r1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log record for alice's approve call:\n%s", logs.String())
	}
}

func TestScanAndCredential(t *testing.T) {
	scans := 0
	var rotateActors []string
	fb := &fakeBackend{
		ScanFunc: func(context.Context) error { scans++; return nil },
		CredentialFunc: func(context.Context) (apitype.Credential, error) {
			return apitype.Credential{
				Method: "certificate", ClientID: "12121212-3434-5656-7878-909090909090",
				Thumbprint: "FFEEDDCCBBAA99887766554433221100FFEEDDCC", Subject: "CN=certagent",
				NotBefore: t0.Add(-24 * time.Hour), NotAfter: time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC),
				NextRenewal: time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), DaysRemaining: 156,
			}, nil
		},
		RotateCredentialFunc: func(_ context.Context, actor string) error {
			rotateActors = append(rotateActors, actor)
			if len(rotateActors) > 1 {
				return &health.BusyError{What: "a renewal"}
			}
			return nil
		},
	}
	h := newTestHandler(t, fb, nil)

	var acc apitype.Accepted
	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan"}), 202, &acc)
	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan", ctype: "application/json", body: strings.NewReader("{}")}), 202, &acc)
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan", ctype: "application/json", body: strings.NewReader(`{"now":true}`)}), 400, apitype.CodeInvalidRequest)
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan", body: bytes.NewReader(make([]byte, MaxBodySize+1))}), 413, apitype.CodeTooLarge)
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/scan?force=1"}), 400, apitype.CodeInvalidRequest)
	if scans != 2 {
		t.Errorf("scans = %d, want 2", scans)
	}

	rec := serve(t, h, req{path: "/api/v1/credential"})
	var cred apitype.Credential
	decode(t, rec, 200, &cred)
	checkGolden(t, "credential.json", rec.Body.Bytes())

	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/credential/rotate", header: map[string]string{ActorHeader: "bob"}}), 202, &acc)
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/credential/rotate"}), 409, apitype.CodeInvalidState)
	if !slices.Equal(rotateActors, []string{"api:bob", "api"}) {
		t.Errorf("rotate actors = %q", rotateActors)
	}

	fb.CredentialFunc = func(context.Context) (apitype.Credential, error) {
		return apitype.Credential{}, &health.NotFoundError{What: "the agent has no credential yet: run certagent credential init"}
	}
	wantProblem(t, serve(t, h, req{path: "/api/v1/credential"}), 404, apitype.CodeNotFound)
}

func TestAudit(t *testing.T) {
	// The fake log has entries with Seq 1..250.
	var queries []rotation.AuditQuery
	fb := &fakeBackend{AuditFunc: func(_ context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
		queries = append(queries, q)
		top := uint64(250)
		if q.Before > 0 && q.Before-1 < top {
			top = q.Before - 1
		}
		var out []rotation.AuditEntry
		for seq := top; seq >= 1 && len(out) < q.Limit; seq-- {
			out = append(out, rotation.AuditEntry{Seq: seq, At: t0.Add(time.Duration(seq) * time.Second), Action: rotation.ActionRotationState, Actor: "agent", Outcome: rotation.OutcomeOK})
		}
		return out, nil
	}}
	h := newTestHandler(t, fb, nil)

	// Walk the whole log, page by page, following next.
	var seqs []uint64
	path := "/api/v1/audit?limit=100"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var page apitype.AuditList
		decode(t, serve(t, h, req{path: path}), 200, &page)
		for _, e := range page.Items {
			seqs = append(seqs, e.Seq)
		}
		if page.Next == 0 {
			break
		}
		path = fmt.Sprintf("/api/v1/audit?limit=100&before=%d", page.Next)
	}
	if len(seqs) != 250 || seqs[0] != 250 || seqs[249] != 1 || !slices.IsSortedFunc(seqs, func(a, b uint64) int { return int(b) - int(a) }) {
		t.Errorf("walked %d entries, from %d to %d; want 250 to 1, newest first", len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	if queries[0].Limit != 101 || queries[0].Before != 0 || queries[1].Before != 151 {
		t.Errorf("queries = %+v", queries)
	}

	// Default limit; exactly a page left gives no next.
	var page apitype.AuditList
	decode(t, serve(t, h, req{path: "/api/v1/audit"}), 200, &page)
	if len(page.Items) != 100 || page.Next != 151 {
		t.Errorf("default page: %d items, next %d", len(page.Items), page.Next)
	}
	page = apitype.AuditList{}
	decode(t, serve(t, h, req{path: "/api/v1/audit?before=11&limit=10"}), 200, &page)
	if len(page.Items) != 10 || page.Next != 0 {
		t.Errorf("last exact page: %d items, next %d; want 10 and none", len(page.Items), page.Next)
	}
	rec := serve(t, h, req{path: "/api/v1/audit?limit=2&before=3"})
	checkGolden(t, "audit.json", rec.Body.Bytes())

	for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=1001", "before=0", "before=-5", "before=x", "after=3", "limit=1&limit=2"} {
		wantProblem(t, serve(t, h, req{path: "/api/v1/audit?" + q}), 400, apitype.CodeInvalidRequest)
	}
}

func TestHealthAndMeta(t *testing.T) {
	ready := error(nil)
	fb := &fakeBackend{ReadyFunc: func(context.Context) error { return ready }}
	h := newTestHandler(t, fb, nil)
	var hb apitype.Health
	decode(t, serve(t, h, req{path: "/livez", noToken: true}), 200, &hb)
	if hb.Status != "ok" {
		t.Errorf("livez = %+v", hb)
	}
	decode(t, serve(t, h, req{path: "/readyz", noToken: true}), 200, &hb)
	if hb.Status != "ready" {
		t.Errorf("readyz = %+v", hb)
	}
	ready = errors.New("store: open /var/lib/certagent/state.db: secret-internal-detail")
	rec := serve(t, h, req{path: "/readyz", noToken: true})
	wantProblem(t, rec, 503, apitype.CodeNotReady)
	if strings.Contains(rec.Body.String(), "secret-internal-detail") {
		t.Errorf("readyz shows the internal error: %s", rec.Body)
	}
	ready = &health.NotReadyError{Problems: []health.Problem{{Code: "store_closed", Message: "the store is not open yet"}}}
	if p := wantProblem(t, serve(t, h, req{path: "/readyz", noToken: true}), 503, apitype.CodeNotReady); p.Detail != "the store is not open yet" {
		t.Errorf("readyz detail = %q", p.Detail)
	}

	// /metrics: 404 without a metrics handler, served with one.
	wantProblem(t, serve(t, h, req{path: "/metrics"}), 404, apitype.CodeNotFound)
	h = newTestHandler(t, fb, nil, func(c *Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			io.WriteString(w, "certagent_up 1\n")
		})
	})
	rec = serve(t, h, req{path: "/metrics"})
	if rec.Code != 200 || rec.Body.String() != "certagent_up 1\n" {
		t.Errorf("/metrics = %d %q", rec.Code, rec.Body)
	}

	rec = serve(t, h, req{path: "/api/v1/openapi.json"})
	var doc map[string]any
	decode(t, rec, 200, &doc)
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi.json = %v", doc["openapi"])
	}
}

func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	fb := &fakeBackend{RotationsFunc: func(context.Context, rotation.Filter) ([]rotation.Rotation, error) {
		return nil, errors.New("listing: token=hunter2 secret-internal-detail")
	}}
	var logs logBuffer
	h := newTestHandler(t, fb, &logs)
	rec := serve(t, h, req{path: "/api/v1/rotations"})
	p := wantProblem(t, rec, 500, apitype.CodeInternal)
	if strings.Contains(rec.Body.String(), "hunter2") || p.Detail == "" {
		t.Errorf("500 body = %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "secret-internal-detail") {
		t.Errorf("the internal error was not logged:\n%s", logs.String())
	}
	// Reads are not logged as calls.
	for _, r := range logs.records(t) {
		if r["msg"] == "api call" {
			t.Errorf("a read was logged as a call: %v", r)
		}
	}
}

func TestRefusalsAreLogged(t *testing.T) {
	var logs logBuffer
	h := newTestHandler(t, &fakeBackend{}, &logs)
	serve(t, h, req{path: "/api/v1/status", noToken: true})
	serve(t, h, req{path: "/api/v1/status", header: map[string]string{"Authorization": "Bearer wrong-token-value"}})
	serve(t, h, req{path: "/api/v1/status", host: "evil.example"})
	var reasons []string
	for _, r := range logs.records(t) {
		if r["msg"] == "api request refused" {
			reasons = append(reasons, r["reason"].(string))
		}
	}
	if want := []string{"no token", "wrong token", "host not loopback"}; !slices.Equal(reasons, want) {
		t.Errorf("refusal reasons logged = %q, want %q", reasons, want)
	}
	if strings.Contains(logs.String(), "wrong-token-value") {
		t.Errorf("a sent token was logged")
	}
}

// TestTargetsAndRetire: ?target= reaches the backend on reads and submissions (query or JSON
// body, not both differing); the retire route passes the key, the target, the actor and the
// note, and maps a guard's refusal to 409 retire_refused.
func TestTargetsAndRetire(t *testing.T) {
	type retire struct{ target, keyID, actor, note string }
	var retires []retire
	var submitted []string
	fb := &fakeBackend{
		CertificatesFunc: func(context.Context, bool) (apitype.CertificateList, error) { return apitype.CertificateList{}, nil },
		RotationsFunc:    func(context.Context, rotation.Filter) ([]rotation.Rotation, error) { return nil, nil },
		SubmitFunc: func(_ context.Context, s Submission) (SubmitResult, error) {
			submitted = append(submitted, s.Target)
			return SubmitResult{Rotation: sampleRotation(), Created: true}, nil
		},
		RetireFunc: func(_ context.Context, target, keyID, actor, note string) (apitype.Certificate, error) {
			retires = append(retires, retire{target, keyID, actor, note})
			if keyID == "last" {
				return apitype.Certificate{}, &rotation.RetireError{KeyID: keyID, Why: "it would leave the app without a valid certificate"}
			}
			return apitype.Certificate{KeyID: keyID, Target: target}, nil
		},
	}
	h := newTestHandler(t, fb, nil)
	serve(t, h, req{path: "/api/v1/certificates?target=exchange"})
	serve(t, h, req{path: "/api/v1/rotations?target=teams"})
	serve(t, h, req{path: "/api/v1/certificates"})
	if got := fb.namedTargets(); !slices.Equal(got, []string{"exchange", "teams", ""}) {
		t.Errorf("targets named = %q", got)
	}
	leaf := certtest.New(t0)
	js := mustJSON(t, apitype.SubmitRequest{Certificate: string(leaf.PEM()), Target: "teams"})
	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations?target=exchange", ctype: "application/x-pem-file", body: bytes.NewReader(leaf.PEM())}), 201, &apitype.Rotation{})
	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/json", body: bytes.NewReader(js)}), 201, &apitype.Rotation{})
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/rotations?target=exchange", ctype: "application/json", body: bytes.NewReader(js)}), 400, apitype.CodeInvalidRequest)
	if !slices.Equal(submitted, []string{"exchange", "teams"}) {
		t.Errorf("submitted to %q", submitted)
	}

	var c apitype.Certificate
	decode(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/certificates/k1/retire?target=exchange", ctype: "application/json",
		body: strings.NewReader(`{"note":"superseded"}`), header: map[string]string{ActorHeader: "bob"}}), 200, &c)
	if c.KeyID != "k1" || len(retires) != 1 || retires[0] != (retire{"exchange", "k1", "api:bob", "superseded"}) {
		t.Errorf("retire = %+v, calls %+v", c, retires)
	}
	p := wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/certificates/last/retire"}), 409, apitype.CodeRetireRefused)
	if !strings.Contains(p.Detail, "without a valid certificate") {
		t.Errorf("detail = %q", p.Detail)
	}
	wantProblem(t, serve(t, h, req{method: http.MethodPost, path: "/api/v1/certificates/k1/retire?who=x"}), 400, apitype.CodeInvalidRequest)
}
