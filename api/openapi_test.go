package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
)

// loadOpenAPI loads and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// echoPath turns an OpenAPI path ("/x/{id}") into echo's ("/x/:id").
func echoPath(p string) string {
	p = strings.ReplaceAll(p, "{", ":")
	return strings.ReplaceAll(p, "}", "")
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	e, err := newEcho((&fakeBackend{}).plays(Config{Token: testToken, Logger: slog.New(slog.DiscardHandler)}))
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, r := range e.Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	ops := map[string]*openapi3.Operation{}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + echoPath(path)
			documented = append(documented, key)
			ops[key] = op
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("the router and openapi.json list different routes\nrouter:\n  %s\nopenapi.json:\n  %s",
			strings.Join(served, "\n  "), strings.Join(documented, "\n  "))
	}

	for _, rt := range routes {
		key := rt.method + " " + rt.path
		op := ops[key]
		if op == nil {
			continue
		}
		if op.OperationID != rt.operationID {
			t.Errorf("%s: operationId %q in openapi.json, %q in routes", key, op.OperationID, rt.operationID)
		}
		if op.Summary == "" {
			t.Errorf("%s: no summary", key)
		}
		public := op.Security != nil && len(*op.Security) == 0
		if public != rt.public {
			t.Errorf("%s: openapi.json says public = %v, routes say %v", key, public, rt.public)
		}
		want := []string{"400", "403"} // every route refuses unknown query parameters
		if !rt.public {
			want = append(want, "401")
		}
		if strings.Contains(rt.path, ":id") {
			want = append(want, "404")
		}
		if rt.method == http.MethodPost {
			want = append(want, "413")
		}
		for _, status := range want {
			if op.Responses.Value(status) == nil {
				t.Errorf("%s: openapi.json does not document the %s response", key, status)
			}
		}
		var params []string
		for _, p := range op.Parameters {
			if p.Value.In == openapi3.ParameterInQuery {
				params = append(params, p.Value.Name)
			}
		}
		slices.Sort(params)
		if !slices.Equal(params, rt.query) {
			t.Errorf("%s: query parameters %v in openapi.json, %v in routes", key, params, rt.query)
		}
	}
}

// example is a request whose response must match openapi.json.
type example struct {
	name string
	r    req
	want int
	// badRequest marks a request that is itself wrong on purpose (only its response is
	// checked).
	badRequest bool
}

// exampleBackend answers every method with realistic data; ids pick the outcome.
func exampleBackend() *fakeBackend {
	synced := t0
	return &fakeBackend{
		StatusFunc: func(context.Context) apitype.Status { return sampleStatus() },
		CertificatesFunc: func(_ context.Context, refresh bool) (apitype.CertificateList, error) {
			if refresh {
				return apitype.CertificateList{}, &health.TooSoonError{Detail: "wait", Wait: 10 * time.Second}
			}
			return apitype.CertificateList{SyncedAt: &synced, Items: []apitype.Certificate{{
				KeyID: "k1", Thumbprint: factsA.Thumbprint, DisplayName: "x", StartDateTime: factsA.NotBefore,
				EndDateTime: factsA.NotAfter, DaysRemaining: 340, AddedByAgent: true, RotationID: "r1",
			}, {
				KeyID: "k2", DisplayName: "old", StartDateTime: factsA.NotBefore, EndDateTime: t0.Add(-48 * time.Hour), DaysRemaining: -2,
			}}}, nil
		},
		RotationsFunc: func(context.Context, rotation.Filter) ([]rotation.Rotation, error) {
			failed := sampleRotation()
			failed.State = rotation.StateFailed
			failed.Reason = &certs.Reason{Code: certs.GraphDenied, Message: "the agent is not an owner of the app"}
			failed.KeyID = ""
			api := sampleRotation()
			api.Source = rotation.Source{Kind: rotation.SourceAPI}
			return []rotation.Rotation{sampleRotation(), failed, api}, nil
		},
		RotationFunc: func(_ context.Context, id string) (rotation.Rotation, error) {
			if id == "missing" {
				return rotation.Rotation{}, rotation.ErrNotFound
			}
			return sampleRotation(), nil
		},
		SubmitFunc: func(_ context.Context, s Submission) (SubmitResult, error) {
			facts := factsA
			switch string(s.Data) {
			case "expired":
				return SubmitResult{Rejected: &certs.Reason{Code: certs.Expired, Message: "expired"}, Certificate: &facts}, nil
			case "junk":
				return SubmitResult{Rejected: &certs.Reason{Code: certs.NotACertificate, Message: "nothing parses"}}, nil
			case "again":
				return SubmitResult{Rotation: sampleRotation()}, nil
			}
			return SubmitResult{Rotation: sampleRotation(), Created: true}, nil
		},
		ExecuteFunc: func(_ context.Context, id string, action rotation.Command, _, _ string) (rotation.Rotation, error) {
			switch id {
			case "missing":
				return rotation.Rotation{}, rotation.ErrNotFound
			case "done":
				return rotation.Rotation{}, &rotation.StateError{ID: id, State: rotation.StateConfirmed, Command: action}
			}
			return sampleRotation(), nil
		},
		CredentialFunc: func(context.Context) (apitype.Credential, error) {
			return apitype.Credential{Method: "certificate", Thumbprint: "T", Subject: "CN=certagent", NotBefore: t0, NotAfter: t0.Add(365 * 24 * time.Hour), NextRenewal: t0.Add(300 * 24 * time.Hour), DaysRemaining: 365}, nil
		},
		RotateCredentialFunc: func(_ context.Context, actor string) error {
			if actor == "api:busy" {
				return &health.BusyError{What: "a renewal"}
			}
			return nil
		},
		AuditFunc: func(_ context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
			facts := factsA
			out := []rotation.AuditEntry{
				{Seq: 3, At: t0, Action: rotation.ActionIntakeRejected, Actor: "intake", Outcome: rotation.OutcomeRefused, File: "a.cer", Cert: &facts, Code: certs.Expired, Message: "expired"},
				{Seq: 2, At: t0, Action: rotation.ActionRotationState, Actor: "api:alice", Outcome: rotation.OutcomeOK, RotationID: "r1", State: rotation.StateApplying, KeyID: "k"},
				{Seq: 1, At: t0, Action: rotation.ActionAgentStart, Actor: "agent", Outcome: rotation.OutcomeOK},
			}
			return out[:min(q.Limit, len(out))], nil
		},
		ReadyFunc: func(context.Context) error { return nil },
		RetireFunc: func(_ context.Context, target, keyID, _, _ string) (apitype.Certificate, error) {
			switch keyID {
			case "missing":
				return apitype.Certificate{}, &health.NotFoundError{What: "no credential " + keyID}
			case "last":
				return apitype.Certificate{}, &rotation.RetireError{KeyID: keyID, Why: "it would leave the app without a valid certificate"}
			}
			return apitype.Certificate{Target: "exchange", KeyID: keyID, Thumbprint: factsA.Thumbprint, DisplayName: "old",
				StartDateTime: factsA.NotBefore, EndDateTime: factsA.NotAfter, DaysRemaining: 3}, nil
		},
	}
}

func examples(t *testing.T) []example {
	leaf := certtest.New(t0)
	js := func(v any) io.Reader { return bytes.NewReader(mustJSON(t, v)) }
	post := func(path string) req { return req{method: http.MethodPost, path: path} }
	return []example{
		{name: "livez", r: req{path: "/livez", noToken: true}, want: 200},
		{name: "livez foreign host", r: req{path: "/livez", host: "evil.example", noToken: true}, want: 403, badRequest: true},
		{name: "livez unknown parameter", r: req{path: "/livez?verbose=1", noToken: true}, want: 400, badRequest: true},
		{name: "status unknown parameter", r: req{path: "/api/v1/status?x=1"}, want: 400, badRequest: true},
		{name: "readyz", r: req{path: "/readyz", noToken: true}, want: 200},
		{name: "metrics", r: req{path: "/metrics"}, want: 200},
		{name: "metrics no token", r: req{path: "/metrics", noToken: true}, want: 401, badRequest: true},
		{name: "openapi", r: req{path: "/api/v1/openapi.json"}, want: 200},
		{name: "status", r: req{path: "/api/v1/status"}, want: 200},
		{name: "status no token", r: req{path: "/api/v1/status", noToken: true}, want: 401, badRequest: true},
		{name: "status origin", r: req{path: "/api/v1/status", header: map[string]string{"Origin": "http://x"}}, want: 403, badRequest: true},
		{name: "certificates", r: req{path: "/api/v1/certificates"}, want: 200},
		{name: "certificates refresh rate-limited", r: req{path: "/api/v1/certificates?refresh=true"}, want: 429},
		{name: "certificates bad refresh", r: req{path: "/api/v1/certificates?refresh=maybe"}, want: 400, badRequest: true},
		{name: "certificates of a target", r: req{path: "/api/v1/certificates?target=exchange"}, want: 200},
		{name: "retire", r: post("/api/v1/certificates/k1/retire?target=exchange"), want: 200},
		{name: "retire with note", r: req{method: http.MethodPost, path: "/api/v1/certificates/k1/retire", ctype: "application/json", body: js(apitype.RetireRequest{Note: "superseded"})}, want: 200},
		{name: "retire refused", r: post("/api/v1/certificates/last/retire"), want: 409},
		{name: "retire missing", r: post("/api/v1/certificates/missing/retire"), want: 404},
		{name: "rotations of a target", r: req{path: "/api/v1/rotations?target=exchange&state=applied"}, want: 200},
		{name: "credential", r: req{path: "/api/v1/credential"}, want: 200},
		{name: "rotate credential", r: post("/api/v1/credential/rotate"), want: 202},
		{name: "rotate credential busy", r: req{method: http.MethodPost, path: "/api/v1/credential/rotate", header: map[string]string{ActorHeader: "busy"}}, want: 409},
		{name: "rotations", r: req{path: "/api/v1/rotations"}, want: 200},
		{name: "rotations by state", r: req{path: "/api/v1/rotations?state=pending_approval"}, want: 200},
		{name: "rotations bad state", r: req{path: "/api/v1/rotations?state=nope"}, want: 400, badRequest: true},
		{name: "rotation", r: req{path: "/api/v1/rotations/r1"}, want: 200},
		{name: "rotation missing", r: req{path: "/api/v1/rotations/missing"}, want: 404},
		{name: "submit der", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/pkix-cert", body: bytes.NewReader(leaf.DER)}, want: 201},
		{name: "submit pem", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/x-pem-file", body: bytes.NewReader(leaf.PEM())}, want: 201},
		{name: "submit json", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/json", body: js(apitype.SubmitRequest{Certificate: string(leaf.PEM()), FileName: "a.cer"})}, want: 201},
		{name: "submit existing", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "text/plain", body: strings.NewReader("again")}, want: 200},
		{name: "submit rejected", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "text/plain", body: strings.NewReader("expired")}, want: 422},
		{name: "submit junk", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/octet-stream", body: strings.NewReader("junk")}, want: 422},
		{name: "submit unknown field", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/json", body: strings.NewReader(`{"certificate":"x","y":1}`)}, want: 400, badRequest: true},
		{name: "submit too large", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/octet-stream", body: bytes.NewReader(make([]byte, MaxBodySize+1))}, want: 413, badRequest: true},
		{name: "submit form", r: req{method: http.MethodPost, path: "/api/v1/rotations", ctype: "application/x-www-form-urlencoded", body: strings.NewReader("a=b")}, want: 415, badRequest: true},
		{name: "approve", r: post("/api/v1/rotations/r1/approve"), want: 200},
		{name: "approve with note", r: req{method: http.MethodPost, path: "/api/v1/rotations/r1/approve", ctype: "application/json", body: js(apitype.ActionRequest{Note: "ok"})}, want: 200},
		{name: "approve wrong state", r: post("/api/v1/rotations/done/approve"), want: 409},
		{name: "approve missing", r: post("/api/v1/rotations/missing/approve"), want: 404},
		{name: "confirm", r: post("/api/v1/rotations/r1/confirm"), want: 200},
		{name: "reject", r: post("/api/v1/rotations/r1/reject"), want: 200},
		{name: "retry", r: post("/api/v1/rotations/r1/retry"), want: 200},
		{name: "retry bad json", r: req{method: http.MethodPost, path: "/api/v1/rotations/r1/retry", ctype: "application/json", body: strings.NewReader("{")}, want: 400, badRequest: true},
		{name: "scan", r: post("/api/v1/scan"), want: 202},
		{name: "audit", r: req{path: "/api/v1/audit"}, want: 200},
		{name: "audit paged", r: req{path: "/api/v1/audit?limit=2"}, want: 200},
		{name: "audit bad limit", r: req{path: "/api/v1/audit?limit=0"}, want: 400, badRequest: true},
	}
}

func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	doc.Servers = nil // match request paths without a host
	// kin-openapi knows text/plain; a PEM body is text too.
	openapi3filter.RegisterBodyDecoder("application/x-pem-file", openapi3filter.PlainBodyDecoder)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, "certagent_up 1\n")
	})
	h := newTestHandler(t, exampleBackend(), nil, func(c *Config) { c.Metrics = metrics })

	covered := map[string]bool{}
	for _, ex := range examples(t) {
		t.Run(ex.name, func(t *testing.T) {
			// Keep the request body for the request validation.
			var body []byte
			if ex.r.body != nil {
				body, _ = io.ReadAll(ex.r.body)
				ex.r.body = bytes.NewReader(body)
			}
			rec := serve(t, h, ex.r)
			if rec.Code != ex.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, ex.want, rec.Body)
			}
			hr := rebuildRequest(ex.r, body)
			route, params, err := router.FindRoute(hr)
			if err != nil {
				t.Fatalf("openapi.json has no route for %s %s: %v", hr.Method, hr.URL, err)
			}
			covered[route.Operation.OperationID] = true
			in := &openapi3filter.RequestValidationInput{
				Request: hr, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
			}
			if !ex.badRequest {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("the request does not match openapi.json: %v", err)
				}
			}
			if err := validateResponse(in, rec); err != nil {
				t.Errorf("the response does not match openapi.json: %v\n%s", err, rec.Body)
			}
		})
	}
	for _, rt := range routes {
		if !covered[rt.operationID] {
			t.Errorf("no example exercises %s (%s %s)", rt.operationID, rt.method, rt.path)
		}
	}
}

// validateResponse checks rec against the document's response for its status, which must be
// documented.
func validateResponse(in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) error {
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(rec.Body.Bytes())
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// rebuildRequest makes a fresh request like r (the served one's body is consumed).
func rebuildRequest(r req, body []byte) *http.Request {
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	hr := httptest.NewRequest(method, r.path, bytes.NewReader(body))
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if !r.noToken {
		hr.Header.Set("Authorization", "Bearer "+string(testToken))
	}
	return hr
}

// TestOpenAPIValidationBites shows the response validation above can fail: a response
// with a field the document does not list, one that lacks a required field, a wrong
// date, or an undocumented status is refused.
func TestOpenAPIValidationBites(t *testing.T) {
	doc := loadOpenAPI(t)
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	hr := httptest.NewRequest(http.MethodGet, "/api/v1/rotations/r1", nil)
	route, params, err := router.FindRoute(hr)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route}
	h := newTestHandler(t, exampleBackend(), nil)
	good := serve(t, h, req{path: "/api/v1/rotations/r1"})
	if err := validateResponse(in, good); err != nil {
		t.Fatalf("the good response fails: %v", err)
	}
	mutations := map[string]func(string) string{
		"extra field":   func(s string) string { return strings.Replace(s, `"id":`, `"der":"AAAA","id":`, 1) },
		"missing field": func(s string) string { return strings.Replace(s, `"state":"applied",`, ``, 1) },
		"bad date":      func(s string) string { return strings.Replace(s, `"2026-11-25T19:30:00Z"`, `"25/11/2026"`, 1) },
		"bad state":     func(s string) string { return strings.Replace(s, `"state":"applied"`, `"state":"done"`, 1) },
	}
	for name, mutate := range mutations {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(200)
		body := mutate(good.Body.String())
		if body == good.Body.String() {
			t.Fatalf("%s: the mutation changed nothing", name)
		}
		io.WriteString(rec, body)
		if err := validateResponse(in, rec); err == nil {
			t.Errorf("%s: the validation accepted %s", name, body)
		}
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/problem+json")
	rec.WriteHeader(418)
	io.WriteString(rec, `{}`)
	if err := validateResponse(in, rec); err == nil {
		t.Errorf("an undocumented status passed")
	}
}

// TestOpenAPIProblemCodes: the StatusProblem schema names every status problem code.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	desc := doc.Components.Schemas["StatusProblem"].Value.Properties["code"].Value.Description
	for _, c := range health.Codes {
		if !strings.Contains(desc, c) {
			t.Errorf("StatusProblem.code's description lacks %q", c)
		}
	}
}

// TestVerdictCodesEverywhere: every verdict code (certs.VerdictCodes) is named where scripts
// and people look them up: the Problem schema of openapi.json, a row of docs/contract.md's
// table, and the help of the PowerShell module's Submit-CertAgentCertificate.
func TestVerdictCodesEverywhere(t *testing.T) {
	doc := loadOpenAPI(t)
	desc := doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Description
	contract, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile("../scripts/CertAgent/Public/Submit-CertAgentCertificate.ps1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs.VerdictCodes {
		code := string(c)
		if !strings.Contains(desc, code) {
			t.Errorf("openapi.json: Problem.code's description lacks %q", code)
		}
		if !regexp.MustCompile("(?m)^\\| [^|]*`" + code + "`[^|]*\\|").Match(contract) {
			t.Errorf("docs/contract.md has no table row for verdict %q", code)
		}
		if !regexp.MustCompile(`\b` + code + `\b`).Match(module) {
			t.Errorf("Submit-CertAgentCertificate's help does not name %q", code)
		}
	}
}
