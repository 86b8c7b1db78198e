package emulator

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// control calls a control route.
func (env *testEnv) control(method, path string, body string) (int, map[string]any) {
	env.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.base+path, rd)
	if err != nil {
		env.t.Fatal(err)
	}
	resp, err := env.hc.Do(req)
	if err != nil {
		env.t.Fatalf("%s %s: %v", method, path, err)
	}
	return decodeResponse(env.t, resp)
}

func TestFaultStatusRetryAfterAndTimes(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	path := "/v1.0/applications/" + env.apps["target"].ObjectID
	status, m := env.control(http.MethodPost, "/_emulator/faults", `[{"method":"GET","path":"/v1.0/applications","status":429,"retryAfter":1.5,"times":2}]`)
	if status != 200 {
		t.Fatalf("POST faults = %d %v", status, m)
	}
	for i := 0; i < 2; i++ {
		resp, m := env.call(http.MethodGet, path, tok, nil, "client-request-id", "req-1")
		code, _ := graphErr(m)
		if resp.StatusCode != 429 || code != "TooManyRequests" || resp.Header.Get("Retry-After") != "1.5" {
			t.Fatalf("faulted GET %d = %d %s Retry-After %q, want 429 TooManyRequests 1.5", i, resp.StatusCode, code, resp.Header.Get("Retry-After"))
		}
	}
	if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("third GET = %d, want 200 (the fault applies twice)", resp.StatusCode)
	}
	// The method must match.
	if err := env.e.AddFaults(Fault{Method: "PATCH", Status: 503}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("GET with a PATCH fault queued = %d, want 200", resp.StatusCode)
	}
	resp, m := env.patch(env.token("agent"), env.apps["target"].ObjectID, map[string]any{"keyCredentials": []any{map[string]any{"keyId": env.apps["target"].KeyCredentials[0].KeyID}}})
	if code, _ := graphErr(m); resp.StatusCode != 503 || code != "ServiceUnavailable" {
		t.Errorf("faulted PATCH = %d %s, want 503 ServiceUnavailable", resp.StatusCode, code)
	}
	if env.view("target").Version != 1 {
		t.Error("a faulted PATCH changed the application")
	}

	var faulted int
	for _, r := range env.e.Requests() {
		if r.Fault != "" {
			faulted++
		}
	}
	if faulted != 3 {
		t.Errorf("request log shows %d faulted requests, want 3", faulted)
	}
}

func TestFaultTokenEndpointShape(t *testing.T) {
	env := newEnv(t)
	if err := env.e.AddFaults(Fault{Path: "/" + env.tid + "/oauth2", Status: 503, RetryAfter: 2}); err != nil {
		t.Fatal(err)
	}
	agent := env.apps["agent"]
	as := env.msalGoAssertion(env.certs["agent"], agent.AppID, env.tokenURL())
	status, body := env.postToken(env.tokenURL(), certForm(agent.AppID, as.sign(t), "https://graph.microsoft.com/.default"))
	if errName, code := entraCode(body); status != 503 || errName != "temporarily_unavailable" || code == 0 {
		t.Errorf("faulted token request = %d %s %d, want 503 in Entra's shape", status, errName, code)
	}
	env.token("agent") // the next one succeeds
}

func TestFaultUntilClearedDelayAndReset(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	path := "/v1.0/applications/" + env.apps["target"].ObjectID

	// times 0 in JSON: until cleared.
	if status, m := env.control(http.MethodPost, "/_emulator/faults", `{"path":"/v1.0","status":500,"times":0}`); status != 200 {
		t.Fatalf("POST fault = %d %v", status, m)
	}
	for i := 0; i < 3; i++ {
		if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 500 {
			t.Fatalf("GET %d = %d, want 500 until cleared", i, resp.StatusCode)
		}
	}
	_, m := env.control(http.MethodGet, "/_emulator/faults", "")
	if items, _ := m["items"].([]any); len(items) != 1 || items[0].(map[string]any)["times"] != float64(0) {
		t.Errorf("GET faults = %v, want one fault with times 0", m)
	}
	if status, _ := env.control(http.MethodDelete, "/_emulator/faults", ""); status != 204 {
		t.Errorf("DELETE faults = %d, want 204", status)
	}
	if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("GET after clearing = %d, want 200", resp.StatusCode)
	}

	// A delay serves normally afterwards.
	if err := env.e.AddFaults(Fault{Path: "/v1.0", DelayMs: 20}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("delayed GET = %d, want 200", resp.StatusCode)
	}

	// A reset answers nothing; the client sees a transport error.
	if err := env.e.AddFaults(Fault{Path: "/v1.0", Reset: true}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, env.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := env.hc.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("GET with a reset fault = %d, want a transport error", resp.StatusCode)
	}
	// The same over HTTP/1.1, where the emulator hijacks and resets the TCP connection.
	if err := env.e.AddFaults(Fault{Path: "/v1.0", Reset: true}); err != nil {
		t.Fatal(err)
	}
	h1tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.e.CertPool()}, Protocols: new(http.Protocols)}
	h1tr.Protocols.SetHTTP1(true)
	defer h1tr.CloseIdleConnections()
	h1 := &http.Client{Transport: h1tr}
	req, _ = http.NewRequest(http.MethodGet, env.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := h1.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("HTTP/1.1 GET with a reset fault = %d, want a transport error", resp.StatusCode)
	}
	if resp, _ := env.call(http.MethodGet, path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("GET after the reset = %d, want 200", resp.StatusCode)
	}

	var sawDelay, resets int
	for _, r := range env.e.Requests() {
		switch {
		case strings.HasPrefix(r.Fault, "delay 20ms"):
			sawDelay++
		case r.Fault == "reset":
			resets++
			if r.Status != 0 {
				t.Errorf("reset request logged with status %d, want 0", r.Status)
			}
		}
	}
	if sawDelay != 1 || resets != 2 {
		t.Errorf("request log: %d delays, %d resets; want 1 and 2", sawDelay, resets)
	}
}

func TestFaultValidation(t *testing.T) {
	env := newEnv(t)
	for _, body := range []string{
		`[{"status":200}]`,
		`[{"status":429,"reset":true}]`,
		`[{"path":"/v1.0"}]`,
		`[{"stale":true,"status":500}]`,
		`[{"status":429,"times":-1}]`,
		`[{"status":429,"frobnicate":1}]`,
		`[{"status":429,"path":"v1.0"}]`,
		`not json`,
	} {
		if status, m := env.control(http.MethodPost, "/_emulator/faults", body); status != 400 {
			t.Errorf("POST faults %s = %d %v, want 400", body, status, m)
		}
	}
	if len(env.e.Faults()) != 0 {
		t.Errorf("invalid faults were queued: %v", env.e.Faults())
	}
}

// TestStaleReads shows the hazard: with replication lag, two read-modify-write cycles
// overwrite each other.
func TestStaleReads(t *testing.T) {
	env := newEnv(t, WithStaleReads(1))
	tok := env.token("agent")
	target := env.apps["target"]
	now := env.clk.Now()
	addCert := func(c certtest.Cert) {
		t.Helper()
		_, m := env.call(http.MethodGet, "/v1.0/applications(appId='"+target.AppID+"')?$select=id,keyCredentials", tok, nil)
		var list []any
		for _, k := range keyCredentialsOf(t, m) {
			list = append(list, map[string]any{"keyId": k["keyId"]})
		}
		list = append(list, map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)})
		if resp, m := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": list}); resp.StatusCode != 204 {
			t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
		}
	}
	addCert(certtest.New(now, certtest.CommonName("first")))
	addCert(certtest.New(now, certtest.CommonName("second"))) // reads the version before "first"
	ks := env.view("target").KeyCredentials
	if len(ks) != 2 {
		t.Fatalf("after two stale read-modify-writes: %d credentials, want 2 (the first lost)", len(ks))
	}
	// The stale window has passed: the next read is fresh.
	_, m := env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID, tok, nil)
	if n := len(keyCredentialsOf(t, m)); n != 2 {
		t.Errorf("fresh read: %d credentials, want 2", n)
	}
	var stale int
	for _, r := range env.e.Requests() {
		if strings.Contains(r.Fault, "stale") {
			stale++
		}
	}
	if stale != 2 {
		t.Errorf("request log shows %d stale reads, want 2", stale)
	}
}

func TestStaleFault(t *testing.T) {
	env := newEnv(t)
	tok := env.token("agent")
	target := env.apps["target"]
	if err := env.e.AddFaults(Fault{Method: "GET", Path: "/v1.0/applications", Stale: true}); err != nil {
		t.Fatal(err)
	}
	// No previous version yet: the fault waits.
	_, m := env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID, tok, nil)
	if n := len(keyCredentialsOf(t, m)); n != 1 {
		t.Fatalf("read = %d credentials, want 1", n)
	}
	if resp, _ := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": []any{}}); resp.StatusCode != 204 {
		t.Fatal("PATCH failed")
	}
	_, m = env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID, tok, nil)
	if n := len(keyCredentialsOf(t, m)); n != 1 {
		t.Errorf("stale read = %d credentials, want the previous version's 1", n)
	}
	_, m = env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID, tok, nil)
	if n := len(keyCredentialsOf(t, m)); n != 0 {
		t.Errorf("next read = %d credentials, want the current 0", n)
	}
}

func TestRequestLog(t *testing.T) {
	env := newEnv(t)
	tok := env.token("agent")
	target := env.apps["target"]
	env.e.ClearRequests()
	env.call(http.MethodGet, "/v1.0/applications(appId='"+target.AppID+"')?$select=id,keyCredentials", tok, nil, "client-request-id", "cr-1")
	env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": []any{map[string]any{"keyId": target.KeyCredentials[0].KeyID}}})
	env.call(http.MethodGet, "/v1.0/applications/"+newGUID(), tok, nil)
	env.control(http.MethodGet, "/_emulator/state", "")

	status, m := env.control(http.MethodGet, "/_emulator/requests", "")
	if status != 200 {
		t.Fatalf("GET requests = %d", status)
	}
	var recs []RequestRecord
	b, _ := json.Marshal(m["items"])
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("request log = %+v, want 3 records (control routes not logged)", recs)
	}
	want := []struct {
		method string
		status int
		code   string
	}{{"GET", 200, ""}, {"PATCH", 204, ""}, {"GET", 404, "Request_ResourceNotFound"}}
	for i, w := range want {
		r := recs[i]
		if r.Method != w.method || r.Status != w.status || r.ErrorCode != w.code || r.AppID != env.apps["agent"].AppID || r.RequestID == "" {
			t.Errorf("record %d = %+v, want %s %d %q by the agent", i, r, w.method, w.status, w.code)
		}
	}
	if recs[0].ClientRequestID != "cr-1" || !strings.Contains(recs[0].Query, "select") {
		t.Errorf("record 0 = %+v", recs[0])
	}
	if status, _ := env.control(http.MethodDelete, "/_emulator/requests", ""); status != 204 || len(env.e.Requests()) != 0 {
		t.Errorf("DELETE requests = %d, log %d long", status, len(env.e.Requests()))
	}
}

func TestControlRoutes(t *testing.T) {
	env := newEnv(t)
	status, m := env.control(http.MethodGet, "/_emulator/state", "")
	if status != 200 {
		t.Fatalf("GET state = %d", status)
	}
	var sv StateView
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, &sv); err != nil {
		t.Fatal(err)
	}
	if len(sv.Tenants) != 1 || sv.Tenants[0].ID != env.tid || len(sv.Tenants[0].Applications) != 9 || len(sv.Tenants[0].Clients) != 9 {
		t.Fatalf("state = %+v", sv)
	}
	var target ApplicationView
	for _, a := range sv.Tenants[0].Applications {
		if a.DisplayName == "target" {
			target = a
		}
	}
	if len(target.Owners) != 1 || target.Owners[0].DisplayName != "agent" || len(target.KeyCredentials) != 1 || target.KeyCredentials[0].Thumbprint == "" {
		t.Errorf("target in state = %+v", target)
	}
	if status, _ := env.control(http.MethodGet, "/_emulator/demo", ""); status != 404 {
		t.Errorf("GET demo without a demo tenant = %d, want 404", status)
	}
	if status, _ := env.control(http.MethodGet, "/_emulator/nothing", ""); status != 404 {
		t.Errorf("GET unknown control route = %d, want 404", status)
	}
	if status, _ := env.control(http.MethodPost, "/_emulator/state", "{}"); status != 405 {
		t.Errorf("POST state = %d, want 405", status)
	}

	// Control routes answer loopback callers only.
	req := httptest.NewRequest(http.MethodGet, "https://emulator/_emulator/state", nil)
	req.RemoteAddr = "192.0.2.10:50000"
	rec := httptest.NewRecorder()
	env.e.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("state from a remote address = %d, want 403", rec.Code)
	}
	req = httptest.NewRequest(http.MethodGet, "https://emulator/_emulator/state", bytes.NewReader(nil))
	req.RemoteAddr = "[::1]:50000"
	rec = httptest.NewRecorder()
	env.e.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("state from ::1 = %d, want 200", rec.Code)
	}
}

// TestCloseAbortsDelays: Close does not wait out a delay fault.
func TestCloseAbortsDelays(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	if err := env.e.AddFaults(Fault{Path: "/v1.0", DelayMs: 600000}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodGet, env.base+"/v1.0/applications", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := env.hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for len(env.e.Faults()) != 0 { // the request has taken the fault and is waiting
		runtime.Gosched()
	}
	if err := env.e.Close(); err != nil {
		t.Errorf("Close with a pending delay = %v, want nil", err)
	}
	<-done
}

// TestFaultResetAfterServing shows a write that lands while its answer is lost: the client
// sees a transport error, the application holds the change.
func TestFaultResetAfterServing(t *testing.T) {
	env := newEnv(t)
	tok := env.token("agent")
	target := env.apps["target"]
	next := certtest.New(env.clk.Now(), certtest.CommonName("reset after"))
	if err := env.e.AddFaults(Fault{Method: "PATCH", Path: "/v1.0/applications", ResetAfter: true}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"keyCredentials": []any{
		map[string]any{"keyId": target.KeyCredentials[0].KeyID},
		map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(next.DER)},
	}}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPatch, env.base+"/v1.0/applications/"+target.ObjectID, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := env.hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("PATCH with a resetAfter fault = %d, want a transport error", resp.StatusCode)
	}
	if v := env.view("target"); len(v.KeyCredentials) != 2 {
		t.Errorf("after the reset the app holds %d credentials, want 2: the write must land", len(v.KeyCredentials))
	}
	recs := env.e.Requests()
	if r := recs[len(recs)-1]; r.Fault != "reset after serving" || r.Status != 0 {
		t.Errorf("request log = %+v, want fault %q and status 0", r, "reset after serving")
	}
	if status, m := env.control(http.MethodPost, "/_emulator/faults", `[{"resetAfter":true,"status":500}]`); status != 400 {
		t.Errorf("resetAfter with a status = %d %v, want 400", status, m)
	}
}

// TestInFlight shows a request held by a delay fault while it is served, and not after.
func TestInFlight(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	path := "/v1.0/applications/" + env.apps["target"].ObjectID
	if err := env.e.AddFaults(Fault{Method: "GET", Path: path, DelayMs: 300}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.call(http.MethodGet, path, tok, nil)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fl := env.e.InFlight()
		if len(fl) == 1 && fl[0].Method == "GET" && fl[0].Path == path {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InFlight = %v, want the held GET", fl)
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	if fl := env.e.InFlight(); len(fl) != 0 {
		t.Errorf("InFlight after the answer = %v, want none", fl)
	}
}

// TestRemoveApplication deletes an application: Graph answers 404 for it at once.
func TestRemoveApplication(t *testing.T) {
	env := newEnv(t, WithReplicationLag(time.Second, 3))
	tok := env.token("agent")
	target := env.apps["target"]
	if err := env.e.RemoveApplication(target.AppID); err != nil {
		t.Fatal(err)
	}
	if resp, m := env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID, tok, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a removed application = %d %v, want 404", resp.StatusCode, m)
	}
	if err := env.e.RemoveApplication(target.AppID); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it twice = %v, want ErrNotFound", err)
	}
}
