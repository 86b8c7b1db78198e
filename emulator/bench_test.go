package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// BenchmarkReadModifyWrite measures the server side of one rotation step over HTTPS: a
// single-object read with keys, then a PATCH that keeps the collection.
func BenchmarkReadModifyWrite(b *testing.B) {
	env := newEnv(b)
	tok, err := env.e.AccessToken(env.apps["admin"].AppID, "https://graph.microsoft.com")
	if err != nil {
		b.Fatal(err)
	}
	target := env.apps["target"]
	body, _ := json.Marshal(map[string]any{"keyCredentials": []any{map[string]any{"keyId": target.KeyCredentials[0].KeyID, "key": nil}}})
	do := func(req *http.Request, want int) {
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := env.hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("%s = %d, want %d", req.Method, resp.StatusCode, want)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, env.base+"/v1.0/applications(appId='"+target.AppID+"')?$select=id,keyCredentials", nil)
		do(req, 200)
		req, _ = http.NewRequest(http.MethodPatch, env.base+"/v1.0/applications/"+target.ObjectID, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		do(req, 204)
	}
}

// BenchmarkTokenRequest measures a certificate sign-in (PS256 assertion) over HTTPS.
func BenchmarkTokenRequest(b *testing.B) {
	env := newEnv(b)
	agent := env.apps["agent"]
	form := certForm(agent.AppID, env.msalGoAssertion(env.certs["agent"], agent.AppID, env.tokenURL()).sign(b), "https://graph.microsoft.com/.default")
	b.ResetTimer()
	for b.Loop() {
		if status, body := env.postToken(env.tokenURL(), form); status != 200 {
			b.Fatalf("token = %d %v", status, body)
		}
	}
}
