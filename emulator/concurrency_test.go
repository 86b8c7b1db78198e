package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// TestConcurrentRequests runs reads, writes, sign-ins and control calls at once (run with
// -race). Writes without coordination may overwrite each other, as on Graph: a writer that
// keeps a keyId another writer has just dropped (sending only the keyId) gets 400. The
// state stays valid, each success is one version, and disk matches memory.
func TestConcurrentRequests(t *testing.T) {
	env := newEnv(t)
	target := env.apps["target"]
	tok := env.token("admin")
	certsToAdd := make([]certtest.Cert, 8)
	for i := range certsToAdd {
		certsToAdd[i] = certtest.New(env.clk.Now(), certtest.CommonName("concurrent"))
	}
	if err := env.e.AddFaults(Fault{Method: "GET", Path: "/v1.0", DelayMs: 5, Times: 4}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var writes atomic.Int64
	errs := make(chan string, 64)
	for i := range certsToAdd {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, env.base+"/v1.0/applications/"+target.ObjectID+"?$select=keyCredentials", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := env.hc.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			var list []any
			for _, k := range m["keyCredentials"].([]any) {
				list = append(list, map[string]any{"keyId": k.(map[string]any)["keyId"]})
			}
			list = append(list, map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(certsToAdd[i].DER)})
			b, _ := json.Marshal(map[string]any{"keyCredentials": list})
			req, _ = http.NewRequest(http.MethodPatch, env.base+"/v1.0/applications/"+target.ObjectID, bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err = env.hc.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			var em map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&em)
			resp.Body.Close()
			code, msg := graphErr(em)
			switch {
			case resp.StatusCode == 204:
				writes.Add(1)
			case resp.StatusCode == 400 && code == "Request_BadRequest":
				// It kept a keyId that a concurrent writer had dropped: for Graph that is a
				// new credential, which needs type, usage and key.
			default:
				errs <- "PATCH " + resp.Status + " " + code + " " + msg
			}
		})
		wg.Go(func() {
			_ = env.e.State()
			_ = env.e.Requests()
		})
	}
	wg.Go(func() { env.token("agent") })
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	v := env.view("target")
	if n := len(v.KeyCredentials); writes.Load() == 0 || n < 2 || n > 9 || v.Version != writes.Load()+1 {
		t.Errorf("after %d concurrent writes: %d credentials, version %d", writes.Load(), n, v.Version)
	}
	// The state on disk is what memory holds.
	e2, err := New(env.e.Dir(), quiet(), WithClock(func() time.Time { return env.clk.Now() }))
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	v2, err := e2.Application(target.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != v.Version || len(v2.KeyCredentials) != len(v.KeyCredentials) {
		t.Errorf("on disk: version %d, %d credentials; in memory: %d, %d", v2.Version, len(v2.KeyCredentials), v.Version, len(v.KeyCredentials))
	}
}
