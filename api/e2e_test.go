package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
)

// newTestServer serves the API over fb on a loopback port, with a metrics handler.
func newTestServer(t testing.TB, fb *fakeBackend) *httptest.Server {
	t.Helper()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, "# TYPE certagent_up gauge\ncertagent_up 1\n")
	})
	srv := httptest.NewUnstartedServer(newTestHandler(t, fb, nil, func(c *Config) {
		c.Metrics = metrics
		c.ListenAddr = ""
	}))
	ServerLimits(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, testToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCode checks that err is a *client.ProblemError with status and code.
func wantCode(t *testing.T, err error, status int, code string) *client.ProblemError {
	t.Helper()
	var pe *client.ProblemError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *client.ProblemError %s", err, err, code)
	}
	if pe.Status != status || pe.Code != code {
		t.Fatalf("problem = %d %s (%s), want %d %s", pe.Status, pe.Code, pe.Detail, status, code)
	}
	return pe
}

func TestEndToEndClient(t *testing.T) {
	fb := exampleBackend()
	var mu sync.Mutex
	var actors []string
	act := fb.ExecuteFunc
	fb.ExecuteFunc = func(ctx context.Context, id string, action rotation.Command, actor, note string) (rotation.Rotation, error) {
		mu.Lock()
		actors = append(actors, string(action)+" "+actor+" "+note)
		mu.Unlock()
		return act(ctx, id, action, actor, note)
	}
	var submitted []Submission
	submit := fb.SubmitFunc
	fb.SubmitFunc = func(ctx context.Context, s Submission) (SubmitResult, error) {
		mu.Lock()
		submitted = append(submitted, s)
		mu.Unlock()
		return submit(ctx, s)
	}
	var gotID string
	get := fb.RotationFunc
	fb.RotationFunc = func(ctx context.Context, id string) (rotation.Rotation, error) {
		mu.Lock()
		gotID = id
		mu.Unlock()
		return get(ctx, id)
	}
	srv := newTestServer(t, fb)
	ctx := context.Background()
	c := newTestClient(t, srv.URL, client.WithActor(`CONTOSO\alice`))

	if h, err := c.Live(ctx); err != nil || h.Status != "ok" {
		t.Errorf("Live = %+v, %v", h, err)
	}
	if h, err := c.Ready(ctx); err != nil || h.Status != "ready" {
		t.Errorf("Ready = %+v, %v", h, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Version != "1.2.3-test" || len(st.Problems) != 2 || st.Problems[0].Code != apitype.ProblemCertificateExpiring {
		t.Errorf("Status = %+v, %v", st, err)
	}
	list, err := c.Certificates(ctx, false)
	if err != nil || len(list.Items) != 2 || list.SyncedAt == nil {
		t.Errorf("Certificates = %+v, %v", list, err)
	}
	_, err = c.Certificates(ctx, true)
	if pe := wantCode(t, err, 429, apitype.CodeRateLimited); pe.RetryAfter != 10*time.Second {
		t.Errorf("RetryAfter = %v, want 10s", pe.RetryAfter)
	}
	rs, err := c.Rotations(ctx, "")
	if err != nil || len(rs) != 3 || rs[1].Reason == nil || rs[1].Reason.Code != certs.GraphDenied {
		t.Errorf("Rotations = %+v, %v", rs, err)
	}
	if _, err := c.Rotations(ctx, "applied"); err != nil {
		t.Errorf("Rotations(applied) = %v", err)
	}
	_, err = c.Rotations(ctx, "nope")
	wantCode(t, err, 400, apitype.CodeInvalidRequest)
	r, err := c.Rotation(ctx, "r1")
	if err != nil || r.ID != sampleRotation().ID || len(r.History) != 2 {
		t.Errorf("Rotation = %+v, %v", r, err)
	}
	_, err = c.Rotation(ctx, "missing")
	wantCode(t, err, 404, apitype.CodeNotFound)
	// Ids are escaped on the way and arrive intact.
	_, err = c.Rotation(ctx, "a/b?c d%")
	mu.Lock()
	if err != nil || gotID != "a/b?c d%" {
		t.Errorf("Rotation(a/b?c d%%) reached the backend as %q, %v", gotID, err)
	}
	mu.Unlock()

	r, created, err := c.Submit(ctx, []byte("-----BEGIN CERTIFICATE-----\n..."), "new provider.cer")
	if err != nil || !created || r.ID == "" {
		t.Errorf("Submit = %+v, %v, %v", r, created, err)
	}
	if _, created, err := c.Submit(ctx, []byte("again"), ""); err != nil || created {
		t.Errorf("Submit(existing) created = %v, %v", created, err)
	}
	_, _, err = c.Submit(ctx, []byte("expired"), "old.cer")
	if pe := wantCode(t, err, 422, string(certs.Expired)); pe.Certificate == nil || pe.Certificate.Thumbprint != factsA.Thumbprint {
		t.Errorf("rejection without facts: %+v", pe)
	}
	mu.Lock()
	if len(submitted) != 3 || submitted[0].FileName != "new provider.cer" || submitted[0].Actor != `api:CONTOSO\alice` || submitted[2].FileName != "old.cer" {
		t.Errorf("submissions = %+v", submitted)
	}
	mu.Unlock()

	for _, f := range []func(context.Context, string, string) (apitype.Rotation, error){c.Approve, c.Reject, c.Confirm, c.Retry} {
		if _, err := f(ctx, "r1", "by phone"); err != nil {
			t.Errorf("action = %v", err)
		}
		if _, err := f(ctx, "r1", ""); err != nil {
			t.Errorf("action without note = %v", err)
		}
		_, err := f(ctx, "done", "")
		if pe := wantCode(t, err, 409, apitype.CodeInvalidState); pe.State != "confirmed" {
			t.Errorf("409 state = %q", pe.State)
		}
		_, err = f(ctx, "missing", "")
		wantCode(t, err, 404, apitype.CodeNotFound)
	}
	mu.Lock()
	if len(actors) != 16 || actors[0] != `approve api:CONTOSO\alice by phone` || actors[5] != `reject api:CONTOSO\alice ` {
		t.Errorf("actions seen = %q", actors)
	}
	mu.Unlock()

	if a, err := c.Scan(ctx); err != nil || a.Message == "" {
		t.Errorf("Scan = %+v, %v", a, err)
	}
	if cr, err := c.Credential(ctx); err != nil || cr.Method != "certificate" {
		t.Errorf("Credential = %+v, %v", cr, err)
	}
	if _, err := c.RotateCredential(ctx); err != nil {
		t.Errorf("RotateCredential = %v", err)
	}
	_, err = newTestClient(t, srv.URL, client.WithActor("busy")).RotateCredential(ctx)
	wantCode(t, err, 409, apitype.CodeInvalidState)
	page, err := c.Audit(ctx, 0, 2)
	if err != nil || len(page.Items) != 2 || page.Next != 2 {
		t.Errorf("Audit = %+v, %v", page, err)
	}
	_, err = c.Audit(ctx, 0, 5000)
	wantCode(t, err, 400, apitype.CodeInvalidRequest)
	doc, err := c.OpenAPI(ctx)
	if err != nil || !bytes.Equal(doc, openAPIDoc) {
		t.Errorf("OpenAPI = %d bytes, %v", len(doc), err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(string(m), "certagent_up 1") {
		t.Errorf("Metrics = %q, %v", m, err)
	}

	// A wrong token.
	bad, err := client.New(srv.URL, []byte("not-the-token-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Status(ctx)
	wantCode(t, err, 401, apitype.CodeUnauthorized)
	if !client.IsCode(err, apitype.CodeUnauthorized) || !strings.HasPrefix(err.Error(), "getting the status: unauthorized: ") {
		t.Errorf("error = %q", err)
	}
	// Health needs no token.
	if _, err := bad.Live(ctx); err != nil {
		t.Errorf("Live with a wrong token = %v", err)
	}
}

func TestEndToEndRefusals(t *testing.T) {
	srv := newTestServer(t, exampleBackend())
	hc := srv.Client()
	send := func(method, path string, body io.Reader, header map[string]string, host string) *http.Response {
		t.Helper()
		r, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+string(testToken))
		for k, v := range header {
			r.Header.Set(k, v)
		}
		if host != "" {
			r.Host = host
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		header map[string]string
		host   string
		want   int
	}{
		{"ok", "GET", "/api/v1/status", nil, nil, "", 200},
		{"localhost name", "GET", "/api/v1/status", nil, nil, "localhost", 200},
		{"foreign host", "GET", "/api/v1/status", nil, nil, "attacker.example", 403},
		{"foreign host livez", "GET", "/livez", nil, nil, "attacker.example:80", 403},
		{"origin", "POST", "/api/v1/scan", nil, map[string]string{"Origin": "https://attacker.example"}, "", 403},
		{"referer", "POST", "/api/v1/scan", nil, map[string]string{"Referer": "https://attacker.example/"}, "", 403},
		{"no token", "GET", "/api/v1/status", nil, map[string]string{"Authorization": ""}, "", 401},
		{"wrong token", "GET", "/api/v1/status", nil, map[string]string{"Authorization": "Bearer nope"}, "", 401},
		{"unknown route", "GET", "/api/v1/secrets", nil, nil, "", 404},
		{"wrong method", "DELETE", "/api/v1/rotations/r1", nil, nil, "", 405},
		{"get on a mutation", "GET", "/api/v1/rotations/r1/approve", nil, nil, "", 405},
		{"bad json", "POST", "/api/v1/rotations/r1/approve", strings.NewReader(`{"note":`), map[string]string{"Content-Type": "application/json"}, "", 400},
		{"unknown field", "POST", "/api/v1/rotations", strings.NewReader(`{"certificate":"x","extra":true}`), map[string]string{"Content-Type": "application/json"}, "", 400},
		{"oversized", "POST", "/api/v1/rotations", bytes.NewReader(make([]byte, 2*MaxBodySize)), map[string]string{"Content-Type": "application/octet-stream"}, "", 413},
		{"wrong state", "POST", "/api/v1/rotations/done/confirm", nil, nil, "", 409},
		{"unknown id", "POST", "/api/v1/rotations/missing/confirm", nil, nil, "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(tt.method, tt.path, tt.body, tt.header, tt.host)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
			if tt.want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newTestClient(t, url)
	_, err := c.Status(context.Background())
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "is it running?") {
		t.Fatalf("Status against a closed port = %v, want an *UnreachableError", err)
	}
}
