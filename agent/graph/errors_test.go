package graph_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// checkErr asserts err is a *graph.Error with the given reason code and transience, and
// that the rotation engine's duck-typed helpers read it the same way.
func checkErr(t *testing.T, what string, err error, code certs.Code, transient bool) *graph.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s = nil error, want %s", what, code)
	}
	ge := graphError(t, err)
	if got := rotation.ErrorReason(err).Code; got != code {
		t.Errorf("%s: reason code %s, want %s (%v)", what, got, code, err)
	}
	if got := rotation.IsTransient(err); got != transient {
		t.Errorf("%s: transient %v, want %v (%v)", what, got, transient, err)
	}
	if msg := rotation.ErrorReason(err).Message; !strings.Contains(msg, err.Error()) {
		t.Errorf("%s: reason message %q does not hold the error %q", what, msg, err.Error())
	}
	return ge
}

func TestGraphErrors(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	ctx := context.Background()
	foreign, target := env.apps["foreign"], env.apps["target"]
	bad := certs.KeyCredential{KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify,
		Key: []byte("not a certificate")}

	tests := []struct {
		name       string
		call       func() error
		code       certs.Code
		status     int
		graphCode  string
		inMessage  string
		objectName string
	}{
		{
			name: "PatchNotOwned403",
			call: func() error {
				return c.Replace(ctx, foreign.ObjectID, []certs.KeyCredential{{KeyID: foreign.KeyCredentials[0].KeyID}})
			},
			code: certs.GraphDenied, status: 403, graphCode: "Authorization_RequestDenied",
			inMessage: "Application.ReadWrite.OwnedBy", objectName: foreign.ObjectID,
		},
		{
			name: "GetUnknownApp404",
			call: func() error { _, err := c.Get(ctx, "00000000-0000-0000-0000-00000000abcd"); return err },
			code: certs.AppNotFound, status: 404, graphCode: "Request_ResourceNotFound",
			inMessage: "target.app_id", objectName: "00000000-0000-0000-0000-00000000abcd",
		},
		{
			name: "PatchUnknownObject404",
			call: func() error { return c.Replace(ctx, "00000000-0000-0000-0000-00000000abcd", nil) },
			code: certs.AppNotFound, status: 404, graphCode: "Request_ResourceNotFound",
			objectName: "00000000-0000-0000-0000-00000000abcd",
		},
		{
			name: "PatchBadKey400",
			call: func() error {
				app, err := c.Get(ctx, target.AppID)
				if err != nil {
					return err
				}
				return c.Replace(ctx, app.ObjectID, append(app.KeyCredentials, bad))
			},
			code: certs.GraphBadRequest, status: 400, objectName: target.ObjectID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ge := checkErr(t, tt.name, tt.call(), tt.code, false)
			if ge.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", ge.StatusCode, tt.status)
			}
			if tt.graphCode != "" && ge.Code != tt.graphCode {
				t.Errorf("Code = %q, want %q", ge.Code, tt.graphCode)
			}
			if ge.Message == "" || !strings.Contains(ge.Error(), ge.Message) {
				t.Errorf("Graph's message %q missing from the error %q", ge.Message, ge.Error())
			}
			if ge.RequestID == "" {
				t.Error("no request-id")
			}
			if ge.RetryAfter() != 0 {
				t.Errorf("RetryAfter = %s, want 0", ge.RetryAfter())
			}
			if !strings.Contains(ge.Error(), tt.objectName) {
				t.Errorf("error %q does not name %s", ge.Error(), tt.objectName)
			}
			if tt.inMessage != "" && !strings.Contains(ge.Reason().Message, tt.inMessage) {
				t.Errorf("reason message %q does not mention %q", ge.Reason().Message, tt.inMessage)
			}
		})
	}
	// Nothing was written to the app that refused.
	if got := env.thumbprints(t, "foreign"); len(got) != 1 || got[0] != thumb(env.certs["foreign"]) {
		t.Errorf("foreign app holds %q after a refused write", got)
	}
}

// TestThrottling checks how the SDK's retries (3, for 429/503/504) and the client's
// classification stack.
func TestThrottling(t *testing.T) {
	type check struct {
		transient  bool
		status     int
		retryAfter time.Duration
	}
	tests := []struct {
		name      string
		fault     emulator.Fault
		attempts  int
		wantErr   *check
		operation string // "get" or "replace"
	}{
		{
			name:      "429ExhaustsSDKRetries",
			fault:     emulator.Fault{Method: "GET", Path: "/v1.0/applications", Status: 429, RetryAfter: 0.05, Times: 4},
			attempts:  4,
			wantErr:   &check{transient: true, status: 429, retryAfter: 50 * time.Millisecond},
			operation: "get",
		},
		{
			name:      "429FewerThanSDKRetries",
			fault:     emulator.Fault{Method: "GET", Path: "/v1.0/applications", Status: 429, RetryAfter: 0.02, Times: 2},
			attempts:  3,
			operation: "get",
		},
		{
			name:      "503Retried",
			fault:     emulator.Fault{Method: "GET", Path: "/v1.0/applications", Status: 503, RetryAfter: 0.01, Times: 1},
			attempts:  2,
			operation: "get",
		},
		{
			name:      "429PatchRetriedWithSameGzipBody",
			fault:     emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", Status: 429, RetryAfter: 0.01, Times: 2},
			attempts:  3,
			operation: "replace",
		},
		{
			name:      "503PatchExhausted",
			fault:     emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", Status: 503, RetryAfter: 0.01, Times: emulator.UntilCleared},
			attempts:  4,
			wantErr:   &check{transient: true, status: 503, retryAfter: 10 * time.Millisecond},
			operation: "replace",
		},
		{
			// A wait longer than the operation's deadline is left to the caller at once.
			name:      "429LongerThanDeadline",
			fault:     emulator.Fault{Method: "GET", Path: "/v1.0/applications", Status: 429, RetryAfter: 120, Times: emulator.UntilCleared},
			attempts:  1,
			wantErr:   &check{transient: true, status: 429, retryAfter: 2 * time.Minute},
			operation: "get",
		},
		{
			name:      "500NotRetriedBySDK",
			fault:     emulator.Fault{Method: "GET", Path: "/v1.0/applications", Status: 500, Times: 1},
			attempts:  1,
			wantErr:   &check{transient: true, status: 500},
			operation: "get",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var o observations
			c := env.client(t, func(cfg *graph.Config) { cfg.Observe = o.observe })
			ctx := context.Background()
			target := env.apps["target"]
			app, err := c.Get(ctx, target.AppID) // sign in and read before the fault
			if err != nil {
				t.Fatal(err)
			}
			env.e.ClearRequests()
			if err := env.e.AddFaults(tt.fault); err != nil {
				t.Fatal(err)
			}
			n := certtest.New(env.now, certtest.CommonName("throttled"))
			switch tt.operation {
			case "get":
				_, err = c.Get(ctx, target.AppID)
			case "replace":
				err = c.Replace(ctx, app.ObjectID, append(app.KeyCredentials, certs.KeyCredential{
					KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: n.DER}))
			}
			reqs := env.e.Requests()
			if len(reqs) != tt.attempts {
				t.Errorf("%d requests reached the emulator, want %d: %v", len(reqs), tt.attempts, env.graphRequests())
			}
			for _, r := range reqs {
				if r.Method == "PATCH" && r.ContentEncoding != "gzip" {
					t.Errorf("a PATCH attempt went out with Content-Encoding %q, want gzip (same body on retry)", r.ContentEncoding)
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("%s = %v, want success after the SDK's retries", tt.operation, err)
				}
				if tt.operation == "replace" && len(env.thumbprints(t, "target")) != 3 {
					t.Errorf("after the retried PATCH the app holds %q, want 3 credentials", env.thumbprints(t, "target"))
				}
				return
			}
			ge := checkErr(t, tt.operation, err, certs.GraphUnavailable, tt.wantErr.transient)
			if ge.StatusCode != tt.wantErr.status {
				t.Errorf("StatusCode = %d, want %d", ge.StatusCode, tt.wantErr.status)
			}
			if ge.RetryAfter() != tt.wantErr.retryAfter {
				t.Errorf("RetryAfter() = %s, want %s", ge.RetryAfter(), tt.wantErr.retryAfter)
			}
			if rotation.RetryAfter(err) != tt.wantErr.retryAfter {
				t.Errorf("rotation.RetryAfter = %s, want %s", rotation.RetryAfter(err), tt.wantErr.retryAfter)
			}
			if tt.wantErr.status == 429 && o.count(tt.operation+"/throttled") != tt.attempts {
				t.Errorf("observed %q, want %d %s/throttled", o.list(), tt.attempts, tt.operation)
			}
		})
	}
}

// TestAddKeyNotRetriedOn504: a POST that timed out at the gateway may have added the key.
func TestAddKeyNotRetriedOn504(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	agent := env.apps["agent"]
	if err := env.e.AddFaults(emulator.Fault{Method: "POST", Path: "/v1.0/applications/", Status: 504, Times: emulator.UntilCleared}); err != nil {
		t.Fatal(err)
	}
	n := certtest.New(env.now, certtest.CommonName("agent next"))
	_, err := c.AddKey(context.Background(), agent.ObjectID, n.Cert, "next")
	checkErr(t, "AddKey", err, certs.GraphUnavailable, true)
	if reqs := env.graphRequests(); len(reqs) != 1 {
		t.Errorf("Graph requests %q, want one addKey attempt", reqs)
	}
}

func TestConnectionReset(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault emulator.Fault
	}{
		{"Patch", emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", Reset: true, Times: 1}},
		// net/http itself retries an idempotent GET once on a broken connection.
		{"Get", emulator.Fault{Method: "GET", Path: "/v1.0/applications", Reset: true, Times: emulator.UntilCleared}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var o observations
			c := env.client(t, func(cfg *graph.Config) { cfg.Observe = o.observe })
			ctx := context.Background()
			target := env.apps["target"]
			app, err := c.Get(ctx, target.AppID)
			if err != nil {
				t.Fatal(err)
			}
			if err := env.e.AddFaults(tt.fault); err != nil {
				t.Fatal(err)
			}
			if tt.fault.Method == "PATCH" {
				err = c.Replace(ctx, app.ObjectID, app.KeyCredentials)
			} else {
				_, err = c.Get(ctx, target.AppID)
			}
			ge := checkErr(t, tt.name, err, certs.GraphUnavailable, true)
			if ge.StatusCode != 0 || ge.RetryAfter() != 0 {
				t.Errorf("StatusCode %d, RetryAfter %s, want 0, 0", ge.StatusCode, ge.RetryAfter())
			}
			if errors.Unwrap(err) == nil {
				t.Error("a network error should unwrap to its cause")
			}
			op := "get"
			if tt.fault.Method == "PATCH" {
				op = "replace"
			}
			if o.count(op+"/network") == 0 {
				t.Errorf("observed %q, want a network outcome", o.list())
			}
			env.e.ClearFaults()
			if _, err := c.Get(ctx, target.AppID); err != nil {
				t.Errorf("Get after the reset: %v", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	env := newEnv(t)
	c := env.client(t, func(cfg *graph.Config) { cfg.Timeout = 300 * time.Millisecond })
	ctx := context.Background()
	target := env.apps["target"]
	if _, err := c.Get(ctx, target.AppID); err != nil {
		t.Fatal(err)
	}
	if err := env.e.AddFaults(emulator.Fault{Method: "GET", Path: "/v1.0/applications", DelayMs: 5000, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(ctx, target.AppID)
	checkErr(t, "Get", err, certs.GraphUnavailable, true)

	// The caller's cancellation is not transient, and errors.Is sees it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Get(cctx, target.AppID)
	checkErr(t, "Get(cancelled)", err, certs.GraphUnavailable, false)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false", err)
	}
}

// TestClassify covers answers the emulator does not give: bodies that are not Graph's JSON
// (a proxy's error page), an OData error without its "error" object, Retry-After dates.
func TestClassify(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	now := time.Now()
	emptyOData := odataerrors.NewODataError()
	emptyOData.SetStatusCode(500)
	apiErr := &abstractions.ApiError{Message: "The server returned an unexpected status code with no response body: 502", ResponseStatusCode: 502}
	tests := []struct {
		name       string
		err        error
		status     int
		header     http.Header
		code       certs.Code
		transient  bool
		retryAfter time.Duration
	}{
		{"ProxyHTMLPage502", errors.New(`content type text/html does not have a factory registered to be parsed`), 502, nil, certs.GraphUnavailable, true, 0},
		{"ApiErrorNoBody", apiErr, 502, nil, certs.GraphUnavailable, true, 0},
		{"ODataWithoutError", emptyOData, 500, nil, certs.GraphUnavailable, true, 0},
		{"RetryAfterDate", apiErr, 503, http.Header{"Retry-After": {now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, certs.GraphUnavailable, true, 0},
		{"409Permanent", errors.New("decode"), 409, nil, certs.GraphError, false, 0},
		{"401NotGraphsTokenError", errors.New("decode"), 401, nil, certs.AuthFailed, false, 0},
		{"NoAnswerLocalFailure", errors.New("building the request"), 0, nil, certs.GraphError, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ge := graph.Classify(c, "get", "app", tt.err, tt.status, tt.header)
			if ge.Reason().Code != tt.code || ge.Transient() != tt.transient {
				t.Errorf("Classify(%v, %d) = %s transient %v, want %s transient %v", tt.err, tt.status,
					ge.Reason().Code, ge.Transient(), tt.code, tt.transient)
			}
			if tt.name == "RetryAfterDate" {
				if d := ge.RetryAfter(); d < 80*time.Second || d > 90*time.Second {
					t.Errorf("RetryAfter() = %s from an HTTP date 90s ahead", d)
				}
			} else if ge.RetryAfter() != tt.retryAfter {
				t.Errorf("RetryAfter() = %s, want %s", ge.RetryAfter(), tt.retryAfter)
			}
			_ = ge.Error() // must not panic
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 7 ", 7 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0.05", 50 * time.Millisecond},
		{"0", 0},
		{"-4", 0},
		{"soon", 0},
		{"NaN", 0},
		{"+Inf", 24 * time.Hour},
		{"1e9", 24 * time.Hour},
		{"Wed, 25 Nov 2026 12:01:30 GMT", 90 * time.Second},
		{"Wednesday, 25-Nov-26 12:00:10 GMT", 10 * time.Second},
		{"Wed, 25 Nov 2026 11:59:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := graph.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestAppFull: Entra limits the size of the application object; a write past it answers
// Directory_ResourceSizeExceeded (400 on Graph, 403 on the older API). Either way it is
// app_full, never retried, and the message says to retire old certificates.
func TestAppFull(t *testing.T) {
	for _, status := range []int{400, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env := newEnv(t)
			s := env.e.Settings()
			s.ObjectSizeLimit, s.SizeLimitStatus = 3000, status // room for about two certificates
			if err := env.e.SetSettings(s); err != nil {
				t.Fatal(err)
			}
			c := env.client(t)
			ctx := context.Background()
			app, err := c.Get(ctx, env.apps["target"].AppID)
			if err != nil {
				t.Fatal(err)
			}
			creds := app.KeyCredentials
			for i := range 3 {
				n := certtest.New(env.now, certtest.CommonName(fmt.Sprintf("more %d", i)))
				creds = append(creds, certs.KeyCredential{KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: n.DER})
			}
			err = c.Replace(ctx, app.ObjectID, creds)
			ge := checkErr(t, "Replace", err, certs.AppFull, false)
			if ge.Code != "Directory_ResourceSizeExceeded" || ge.StatusCode != status {
				t.Errorf("error = %d %s, want %d Directory_ResourceSizeExceeded", ge.StatusCode, ge.Code, status)
			}
			if msg := ge.Reason().Message; !strings.Contains(msg, "retire") {
				t.Errorf("reason message %q does not say what to do", msg)
			}
		})
	}
}

// TestExpiredAgentCredential: whatever AADSTS code Entra uses for a certificate outside its
// validity window, the agent's message says in words what happened and what to do.
func TestExpiredAgentCredential(t *testing.T) {
	for _, code := range []int{emulator.ValidityError700027, emulator.ValidityError1000502, emulator.ValidityError7000274} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			env := newEnv(t, emulator.WithValidityErrorCode(code))
			old := certtest.New(env.now, certtest.CommonName("expired agent"), certtest.Validity(env.now.Add(-400*24*time.Hour), env.now.Add(-time.Hour)))
			if _, err := env.e.AddKeyCredential(env.apps["agent"].ObjectID, emulator.SeedKeyCredential{Certificate: old.DER}); err != nil {
				t.Fatal(err)
			}
			c := env.client(t, func(cfg *graph.Config) { cfg.Credential = newSource(old) })
			_, err := c.Get(context.Background(), env.apps["target"].AppID)
			ge := checkErr(t, "Get", err, certs.AuthFailed, false)
			if ge.AADSTS != code {
				t.Errorf("AADSTS = %d, want %d", ge.AADSTS, code)
			}
			msg := ge.Reason().Message
			for _, want := range []string{"outside its validity period", thumb(old), "certagent credential init"} {
				if !strings.Contains(msg, want) {
					t.Errorf("reason message %q does not say %q", msg, want)
				}
			}
		})
	}
}
