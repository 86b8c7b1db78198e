package emulator

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

// TestAddKeyRemoveKeySelfRenewal is the agent renewing its own credential with no
// permission on itself: addKey proven by the current certificate, sign in with the new one,
// removeKey of the old one proven by the new one.
func TestAddKeyRemoveKeySelfRenewal(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	oldCert := env.certs["agent"]
	newCert := certtest.New(env.clk.Now(), certtest.CommonName("agent renewed"), certtest.FreshKey())
	tok := env.token("agent")

	resp, m := env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/addKey", tok, map[string]any{
		"keyCredential":      map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.DER), "displayName": "renewed"},
		"passwordCredential": nil,
		"proof":              env.proof(oldCert, agent.ObjectID).sign(t),
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("addKey = %d %v, want 200", resp.StatusCode, m)
	}
	newKeyID, _ := m["keyId"].(string)
	if m["key"] != nil || m["displayName"] != "renewed" || m["type"] != "AsymmetricX509Cert" || newKeyID == "" {
		t.Errorf("addKey answer = %v", m)
	}
	if ctx, _ := m["@odata.context"].(string); !strings.HasSuffix(ctx, "$metadata#microsoft.graph.keyCredential") {
		t.Errorf("addKey @odata.context = %q", ctx)
	}

	// Sign in with the new certificate.
	env.certs["agent"] = newCert
	tok = env.token("agent")

	oldKeyID := agent.KeyCredentials[0].KeyID
	resp, m = env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/removeKey", tok, map[string]any{
		"keyId": oldKeyID,
		"proof": env.proof(newCert, agent.ObjectID).sign(t),
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("removeKey = %d %v, want 204", resp.StatusCode, m)
	}
	v := env.view("agent")
	if len(v.KeyCredentials) != 1 || v.KeyCredentials[0].KeyID != newKeyID || v.KeyCredentials[0].Thumbprint != certs.ThumbprintSHA1(newCert.DER) {
		t.Errorf("after renewal: %+v, want only the new certificate", v.KeyCredentials)
	}

	// The old certificate no longer signs in.
	as := env.msalGoAssertion(oldCert, agent.AppID, env.tokenURL())
	status, body := env.postToken(env.tokenURL(), certForm(agent.AppID, as.sign(t), "https://graph.microsoft.com/.default"))
	if _, code := entraCode(body); status != 401 || code != 700027 {
		t.Errorf("sign-in with the removed certificate = %d AADSTS%d, want 401 AADSTS700027", status, code)
	}

	resp, m = env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/removeKey", tok, map[string]any{
		"keyId": newGUID(), "proof": env.proof(newCert, agent.ObjectID).sign(t),
	})
	if code, _ := graphErr(m); resp.StatusCode != 404 || code != "Request_ResourceNotFound" {
		t.Errorf("removeKey of an unknown keyId = %d %s, want 404", resp.StatusCode, code)
	}
}

func TestAddKeyProofs(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	c := env.certs["agent"]
	now := env.clk.Now()
	stranger := certtest.New(now, certtest.CommonName("stranger key"), certtest.FreshKey())
	fresh := certtest.New(now, certtest.CommonName("to add"))
	tok := env.token("agent")

	tests := []struct {
		name string
		mod  func(a *assertion)
		ok   bool
	}{
		{"good", func(a *assertion) {}, true},
		{"Microsoft Graph's id as audience", func(a *assertion) { a.claims["aud"] = graphAppID }, false},
		{"named by kid", func(a *assertion) {
			delete(a.header, "x5t")
			s := sha1Sum(c.DER)
			a.header["kid"] = strings.ToUpper(hex.EncodeToString(s))
		}, true},
		{"unnamed key", func(a *assertion) { delete(a.header, "x5t") }, true},
		{"padded segments", func(a *assertion) { a.padded = true; a.claims["pad"] = "xx" }, false},
		{"wrong audience", func(a *assertion) { a.claims["aud"] = "https://graph.microsoft.com" }, false},
		{"no audience", func(a *assertion) { delete(a.claims, "aud") }, false},
		{"no iss", func(a *assertion) { delete(a.claims, "iss") }, false},
		{"no exp", func(a *assertion) { delete(a.claims, "exp") }, false},
		{"not yet valid", func(a *assertion) {
			a.claims["nbf"], a.claims["exp"] = now.Add(10*time.Minute).Unix(), now.Add(15*time.Minute).Unix()
		}, false},
		{"alg none", func(a *assertion) { a.header["alg"] = "none" }, false},
		{"alg HS256", func(a *assertion) { a.header["alg"] = "HS256" }, false},
		{"iss is the appId", func(a *assertion) { a.claims["iss"] = agent.AppID }, false},
		{"more than 10 minutes", func(a *assertion) { a.claims["exp"] = now.Add(11 * time.Minute).Unix() }, false},
		{"expired", func(a *assertion) {
			a.claims["nbf"], a.claims["exp"] = now.Add(-20*time.Minute).Unix(), now.Add(-10*time.Minute).Unix()
		}, false},
		{"no nbf", func(a *assertion) { delete(a.claims, "nbf") }, false},
		{"signed by a key not on the app", func(a *assertion) { a.key = stranger.Key; delete(a.header, "x5t") }, false},
		{"names a certificate not on the app", func(a *assertion) { a.header["x5t"] = x5tURL(env.certs["admin"].DER) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := env.proof(c, agent.ObjectID)
			tc.mod(p)
			proof := p.sign(t)
			if tc.name == "padded segments" && !strings.Contains(proof, "=") {
				t.Fatal("test setup: the padded proof has no padding")
			}
			resp, m := env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/addKey", tok, map[string]any{
				"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER)},
				"proof":         proof,
			})
			if tc.ok {
				if resp.StatusCode != 200 {
					t.Errorf("addKey = %d %v, want 200", resp.StatusCode, m)
				}
				return
			}
			if code, msg := graphErr(m); resp.StatusCode != 401 || code != "Authentication_MissingOrMalformed" || msg != "Access Token missing or malformed." {
				t.Errorf("addKey = %d %s %q, want 401 Authentication_MissingOrMalformed", resp.StatusCode, code, msg)
			}
		})
	}

	// No proof at all.
	resp, m := env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/addKey", tok, map[string]any{
		"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER)},
	})
	if resp.StatusCode != 401 {
		t.Errorf("addKey without proof = %d %v, want 401", resp.StatusCode, m)
	}
}

func TestAddKeyPermissions(t *testing.T) {
	env := newEnv(t)
	target := env.apps["target"]
	fresh := certtest.New(env.clk.Now(), certtest.CommonName("new provider"))
	body := func() map[string]any {
		return map[string]any{
			"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER)},
			"proof":         env.proof(env.certs["target"], target.ObjectID).sign(t),
		}
	}
	for _, tc := range []struct {
		caller string
		status int
	}{
		{"reader", 403},
		{"stranger", 403},
		{"agent", 200}, // owner with OwnedBy
		{"admin", 200},
	} {
		t.Run(tc.caller, func(t *testing.T) {
			resp, m := env.call(http.MethodPost, "/v1.0/applications(appId='"+target.AppID+"')/addKey", env.token(tc.caller), body())
			if resp.StatusCode != tc.status {
				t.Errorf("addKey by %s = %d %v, want %d", tc.caller, resp.StatusCode, m, tc.status)
			}
		})
	}

	// An app whose only certificate is no longer valid cannot prove anything.
	exp := env.apps["expired"]
	tok, err := env.e.AccessToken(exp.AppID, "https://graph.microsoft.com")
	if err != nil {
		t.Fatal(err)
	}
	resp, m := env.call(http.MethodPost, "/v1.0/applications/"+exp.ObjectID+"/addKey", tok, map[string]any{
		"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER)},
		"proof":         env.proof(env.certs["expired"], exp.ObjectID).sign(t),
	})
	if resp.StatusCode != 401 {
		t.Errorf("addKey by an app without a valid certificate = %d %v, want 401", resp.StatusCode, m)
	}

	// Unknown parameters and a bad key.
	for name, b := range map[string]map[string]any{
		"unknown parameter": {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER)}, "proof": "x", "extra": 1},
		"bad key":           {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "AAAA"}, "proof": env.proof(env.certs["target"], target.ObjectID).sign(t)},
	} {
		resp, m := env.call(http.MethodPost, "/v1.0/applications/"+target.ObjectID+"/addKey", env.token("admin"), b)
		if resp.StatusCode != 400 {
			t.Errorf("addKey with %s = %d %v, want 400", name, resp.StatusCode, m)
		}
	}
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications/"+target.ObjectID+"/addKey", env.token("admin"), nil); resp.StatusCode != 405 {
		t.Errorf("GET addKey = %d, want 405", resp.StatusCode)
	}
}

func sha1Sum(b []byte) []byte {
	s := sha1.Sum(b)
	return s[:]
}
