package emulator

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// addWays are the ways a test adds the certificate c to the application name; each returns
// the new credential's keyId.
var addWays = []struct {
	name string
	add  func(env *testEnv, name string, c certtest.Cert) string
}{
	{"PATCH", func(env *testEnv, name string, c certtest.Cert) string {
		a := env.apps[name]
		list := []any{}
		for _, k := range env.view(name).KeyCredentials {
			list = append(list, map[string]any{"keyId": k.KeyID})
		}
		keyID := newGUID()
		list = append(list, map[string]any{"keyId": keyID, "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)})
		if resp, m := env.patch(env.token("admin"), a.ObjectID, map[string]any{"keyCredentials": list}); resp.StatusCode != http.StatusNoContent {
			env.t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
		}
		return keyID
	}},
	{"addKey", func(env *testEnv, name string, c certtest.Cert) string {
		a := env.apps[name]
		resp, m := env.call(http.MethodPost, "/v1.0/applications/"+a.ObjectID+"/addKey", env.token(name), map[string]any{
			"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)},
			"proof":         env.proof(env.certs[name], a.ObjectID).sign(env.t),
		})
		if resp.StatusCode != http.StatusOK {
			env.t.Fatalf("addKey = %d %v", resp.StatusCode, m)
		}
		return m["keyId"].(string)
	}},
	{"helper", func(env *testEnv, name string, c certtest.Cert) string {
		v, err := env.e.AddKeyCredential(env.apps[name].AppID, SeedKeyCredential{Certificate: c.DER})
		if err != nil {
			env.t.Fatal(err)
		}
		return v.KeyID
	}},
	{"control route", func(env *testEnv, name string, c certtest.Cert) string {
		status, m := env.control(http.MethodPost, "/_emulator/applications/"+env.apps[name].AppID+"/keyCredentials",
			`{"certificate":`+jsonString(string(c.PEM()))+`,"displayName":"portal upload"}`)
		if status != http.StatusCreated {
			env.t.Fatalf("POST keyCredentials = %d %v", status, m)
		}
		return m["keyId"].(string)
	}},
}

// TestSignInPropagationAdd: a key added to an app, whichever way, is refused at the token
// endpoint as a key Entra does not know (AADSTS700027 "not registered") until the delay has
// passed, then accepted; the app's older key keeps working meanwhile.
func TestSignInPropagationAdd(t *testing.T) {
	const delay = 10 * time.Second
	for _, way := range addWays {
		t.Run(way.name, func(t *testing.T) {
			env := newEnv(t, WithSignInPropagation(delay, 0))
			agent := env.apps["agent"]
			c := certtest.New(env.clk.Now(), certtest.CommonName("new agent key"))
			keyID := way.add(env, "agent", c)

			for _, k := range env.view("agent").KeyCredentials {
				if k.KeyID == keyID && (k.SignInFrom == nil || !k.SignInFrom.Equal(env.clk.Now().Add(delay))) {
					t.Errorf("state signInFrom = %v, want now + %s", k.SignInFrom, delay)
				}
			}
			status, errName, code, body := env.signIn(agent.AppID, c)
			if status != http.StatusUnauthorized || errName != "invalid_client" || code != 700027 ||
				!strings.Contains(body["error_description"].(string), "is not registered on application") {
				t.Fatalf("sign-in with the new key at once = %d %s AADSTS%d %v, want 401 invalid_client AADSTS700027 not registered", status, errName, code, body["error_description"])
			}
			if status, _, _, body := env.signIn(agent.AppID, env.certs["agent"]); status != http.StatusOK {
				t.Errorf("sign-in with the old key meanwhile = %d %v, want 200", status, body)
			}
			env.clk.Advance(delay - time.Second)
			if status, _, code, _ := env.signIn(agent.AppID, c); code != 700027 {
				t.Errorf("sign-in 1 s before the delay = %d AADSTS%d, want AADSTS700027", status, code)
			}
			env.clk.Advance(time.Second)
			if status, _, _, body := env.signIn(agent.AppID, c); status != http.StatusOK {
				t.Errorf("sign-in after the delay = %d %v, want 200", status, body)
			}
			for _, k := range env.view("agent").KeyCredentials {
				if k.SignInFrom != nil {
					t.Errorf("state still shows signInFrom %v after the delay", k.SignInFrom)
				}
			}
		})
	}
}

// removeWays are the ways a test removes the credential keyID from the application name.
var removeWays = []struct {
	name   string
	remove func(env *testEnv, name, keyID string)
}{
	{"PATCH", func(env *testEnv, name, keyID string) {
		list := []any{}
		for _, k := range env.view(name).KeyCredentials {
			if k.KeyID != keyID {
				list = append(list, map[string]any{"keyId": k.KeyID})
			}
		}
		if resp, m := env.patch(env.token("admin"), env.apps[name].ObjectID, map[string]any{"keyCredentials": list}); resp.StatusCode != http.StatusNoContent {
			env.t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
		}
	}},
	{"removeKey", func(env *testEnv, name, keyID string) {
		a := env.apps[name]
		resp, m := env.call(http.MethodPost, "/v1.0/applications/"+a.ObjectID+"/removeKey", env.token(name), map[string]any{
			"keyId": keyID, "proof": env.proof(env.certs[name], a.ObjectID).sign(env.t),
		})
		if resp.StatusCode != http.StatusNoContent {
			env.t.Fatalf("removeKey = %d %v", resp.StatusCode, m)
		}
	}},
	{"helper", func(env *testEnv, name, keyID string) {
		if err := env.e.RemoveKeyCredential(env.apps[name].AppID, keyID); err != nil {
			env.t.Fatal(err)
		}
	}},
	{"control route", func(env *testEnv, name, keyID string) {
		if status, m := env.control(http.MethodDelete, "/_emulator/applications/"+env.apps[name].AppID+"/keyCredentials/"+keyID, ""); status != http.StatusNoContent {
			env.t.Fatalf("DELETE keyCredential = %d %v", status, m)
		}
	}},
}

// TestSignInPropagationRemove: a key removed from an app, whichever way, keeps signing in
// until the delay has passed, then is refused as unknown.
func TestSignInPropagationRemove(t *testing.T) {
	const delay = 30 * time.Second
	for _, way := range removeWays {
		t.Run(way.name, func(t *testing.T) {
			env := newEnv(t, WithSignInPropagation(0, delay))
			agent := env.apps["agent"]
			old := env.certs["agent"]
			// The agent needs a second key to prove removeKey and to keep signing in.
			next := certtest.New(env.clk.Now(), certtest.CommonName("next agent key"))
			if _, err := env.e.AddKeyCredential(agent.AppID, SeedKeyCredential{Certificate: next.DER}); err != nil {
				t.Fatal(err)
			}
			env.certs["agent"] = next
			way.remove(env, "agent", agent.KeyCredentials[0].KeyID)
			if n := len(env.view("agent").KeyCredentials); n != 1 {
				t.Fatalf("the app holds %d credentials, want 1: the removal is immediate on Graph", n)
			}
			if status, _, _, body := env.signIn(agent.AppID, old); status != http.StatusOK {
				t.Fatalf("sign-in with the removed key at once = %d %v, want 200", status, body)
			}
			env.clk.Advance(delay - time.Second)
			if status, _, _, body := env.signIn(agent.AppID, old); status != http.StatusOK {
				t.Errorf("sign-in with the removed key 1 s before the delay = %d %v, want 200", status, body)
			}
			env.clk.Advance(time.Second)
			status, _, code, body := env.signIn(agent.AppID, old)
			if status != http.StatusUnauthorized || code != 700027 || !strings.Contains(body["error_description"].(string), "is not registered on application") {
				t.Errorf("sign-in with the removed key after the delay = %d AADSTS%d, want 401 AADSTS700027 not registered", status, code)
			}
		})
	}
}

// TestSignInPropagationSecrets: secrets propagate like keys (the 4-18 s users report are for
// secrets): a new one is refused with AADSTS7000215 for a while, a removed one keeps working.
func TestSignInPropagationSecrets(t *testing.T) {
	env := newEnv(t, WithSignInPropagation(5*time.Second, 5*time.Second))
	form := func(appID, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}
	}
	v, err := env.e.AddApplication("", SeedApplication{DisplayName: "late", PasswordCredentials: []SeedPasswordCredential{{Secret: "late-secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := env.postToken(env.tokenURL(), form(v.AppID, "late-secret")); status != http.StatusUnauthorized || body["error_codes"].([]any)[0].(float64) != 7000215 {
		t.Errorf("new secret at once = %d %v, want 401 AADSTS7000215", status, body["error_codes"])
	}
	env.clk.Advance(5 * time.Second)
	if status, body := env.postToken(env.tokenURL(), form(v.AppID, "late-secret")); status != http.StatusOK {
		t.Errorf("new secret after the delay = %d %v, want 200", status, body)
	}
	sec := env.apps["secret"]
	if resp, m := env.patch(env.token("admin"), sec.ObjectID, map[string]any{"passwordCredentials": []any{}}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
	}
	if status, body := env.postToken(env.tokenURL(), form(sec.AppID, testSecret)); status != http.StatusOK {
		t.Errorf("removed secret at once = %d %v, want 200", status, body)
	}
	env.clk.Advance(5 * time.Second)
	if status, body := env.postToken(env.tokenURL(), form(sec.AppID, testSecret)); status != http.StatusUnauthorized {
		t.Errorf("removed secret after the delay = %d %v, want 401", status, body)
	}
}

// TestSignInPropagationJitter: with a jitter, each key's delay lies in [delay, delay+jitter],
// drawn from the seed: the same seed gives the same delays.
func TestSignInPropagationJitter(t *testing.T) {
	delays := func(seed int64) []time.Duration {
		s := defaultSettings()
		s.SignInAddDelay, s.SignInAddJitter, s.Seed = 5*time.Second, 15*time.Second, seed
		env := newEnv(t, WithSettings(s))
		var out []time.Duration
		for i := 0; i < 5; i++ {
			c := certtest.New(env.clk.Now(), certtest.CommonName("jitter"))
			v, err := env.e.AddKeyCredential(env.apps["target"].AppID, SeedKeyCredential{Certificate: c.DER})
			if err != nil {
				t.Fatal(err)
			}
			d := v.SignInFrom.Sub(env.clk.Now())
			if d < 5*time.Second || d > 20*time.Second {
				t.Errorf("delay %s is outside 5s-20s", d)
			}
			out = append(out, d)
		}
		return out
	}
	a, b, c := delays(42), delays(42), delays(7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 gave %v then %v, want the same delays", a, b)
		}
	}
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Errorf("seeds 42 and 7 gave the same delays %v", a)
	}
}

// TestSettle: Settle ends every pending delay at once.
func TestSettle(t *testing.T) {
	env := newEnv(t, WithSignInPropagation(time.Hour, time.Hour))
	c := certtest.New(env.clk.Now(), certtest.CommonName("settled"))
	if _, err := env.e.AddKeyCredential(env.apps["reader"].AppID, SeedKeyCredential{Certificate: c.DER}); err != nil {
		t.Fatal(err)
	}
	if status, _, _, _ := env.signIn(env.apps["reader"].AppID, c); status != http.StatusUnauthorized {
		t.Fatalf("sign-in before Settle = %d, want 401", status)
	}
	env.e.Settle()
	if status, _, _, body := env.signIn(env.apps["reader"].AppID, c); status != http.StatusOK {
		t.Errorf("sign-in after Settle = %d %v, want 200", status, body)
	}
}
