package emulator

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

// readApp GETs an application the way azure-cli does (no $select) and returns its body.
func (env *testEnv) readApp(tok, objectID string) map[string]any {
	env.t.Helper()
	resp, m := env.call(http.MethodGet, "/v1.0/applications/"+objectID, tok, nil)
	if resp.StatusCode != http.StatusOK {
		env.t.Fatalf("GET application = %d %v", resp.StatusCode, m)
	}
	return m
}

func (env *testEnv) patch(tok, objectID string, body any, hdr ...string) (*http.Response, map[string]any) {
	env.t.Helper()
	return env.call(http.MethodPatch, "/v1.0/applications/"+objectID, tok, body, hdr...)
}

func (env *testEnv) view(name string) ApplicationView {
	env.t.Helper()
	v, err := env.e.Application(env.apps[name].AppID)
	if err != nil {
		env.t.Fatal(err)
	}
	return v
}

// TestPatchAzureCLIAppend replays azure-cli's `credential reset --append` (docs/graph.md, "azure-cli against the emulator"): read
// without $select, echo every credential as read with key null, add the new one with
// displayName null, no customKeyIdentifier, second-precision dates and a PEM body with line
// breaks.
func TestPatchAzureCLIAppend(t *testing.T) {
	env := newEnv(t)
	tok := env.token("agent")
	target := env.apps["target"]
	app := env.readApp(tok, target.ObjectID)
	existing := keyCredentialsOf(t, app)

	now := env.clk.Now()
	next := certtest.New(now, certtest.CommonName("AUCloud VB365 next"), certtest.ValidFor(400*24*time.Hour))
	end := now.AddDate(1, 0, 0)
	newCred := map[string]any{
		"displayName":   nil,
		"endDateTime":   end.Format("2006-01-02T15:04:05Z"),
		"key":           pemBody(next),
		"startDateTime": now.Format("2006-01-02T15:04:05Z"),
		"type":          "AsymmetricX509Cert",
		"usage":         "Verify",
	}
	var list []any
	for _, k := range existing {
		list = append(list, k)
	}
	list = append(list, newCred)
	if !strings.Contains(newCred["key"].(string), "\n") {
		t.Fatal("test setup: the key should carry line breaks")
	}
	resp, m := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": list})
	if resp.StatusCode != http.StatusNoContent || m != nil {
		t.Fatalf("PATCH = %d %v, want 204 and no body", resp.StatusCode, m)
	}

	v := env.view("target")
	if len(v.KeyCredentials) != 2 {
		t.Fatalf("after PATCH: %d credentials, want 2", len(v.KeyCredentials))
	}
	old, added := v.KeyCredentials[0], v.KeyCredentials[1]
	if old.KeyID != target.KeyCredentials[0].KeyID || old.Thumbprint != certs.ThumbprintSHA1(env.certs["target"].DER) {
		t.Errorf("old credential = %+v, want it kept with its key", old)
	}
	if added.Thumbprint != certs.ThumbprintSHA1(next.DER) || added.DisplayName != "" {
		t.Errorf("new credential = %+v", added)
	}
	if added.CustomKeyIdentifier != certs.ThumbprintSHA1(next.DER) {
		t.Errorf("new customKeyIdentifier = %q, want the thumbprint %s", added.CustomKeyIdentifier, certs.ThumbprintSHA1(next.DER))
	}
	if !added.StartDateTime.Equal(now) || !added.EndDateTime.Equal(end) {
		t.Errorf("new dates = %s..%s, want %s..%s", added.StartDateTime, added.EndDateTime, now, end)
	}
	if _, ok := parseGUID(added.KeyID); !ok {
		t.Errorf("generated keyId %q is not a GUID", added.KeyID)
	}
}

// TestPatchReplacesCollection: sending only the new certificate drops the old one (the
// classic outage).
func TestPatchReplacesCollection(t *testing.T) {
	env := newEnv(t)
	next := certtest.New(env.clk.Now(), certtest.CommonName("only me"))
	resp, m := env.patch(env.token("agent"), env.apps["target"].ObjectID, map[string]any{
		"keyCredentials": []any{map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(next.DER)}},
	})
	if resp.StatusCode != 204 {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
	}
	v := env.view("target")
	if len(v.KeyCredentials) != 1 || v.KeyCredentials[0].Thumbprint != certs.ThumbprintSHA1(next.DER) {
		t.Errorf("after replace: %+v, want only the new certificate", v.KeyCredentials)
	}
}

func TestPatchKeyCredentials(t *testing.T) {
	env := newEnv(t)
	tok := env.token("admin")
	now := env.clk.Now()
	fresh := certtest.New(now, certtest.CommonName("fresh"))
	freshB64 := base64.StdEncoding.EncodeToString(fresh.DER)
	target := env.apps["target"]
	oldID := target.KeyCredentials[0].KeyID
	oldDER := env.certs["target"].DER
	keep := map[string]any{"keyId": oldID}
	newEntry := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": freshB64}
		if mod != nil {
			mod(m)
		}
		return m
	}
	body := func(entries ...any) map[string]any { return map[string]any{"keyCredentials": entries} }
	long := strings.Repeat("x", 100)

	tests := []struct {
		name   string
		body   any
		status int
		msg    string
		// check runs on the target's credentials after a successful PATCH.
		check func(t *testing.T, ks []KeyCredentialView)
	}{
		{"keep by keyId with key null", body(map[string]any{"keyId": oldID, "key": nil, "type": "AsymmetricX509Cert"}), 204, "", func(t *testing.T, ks []KeyCredentialView) {
			if len(ks) != 1 || ks[0].KeyID != oldID || len(ks[0].Key) == 0 {
				t.Errorf("credentials = %+v, want the old one with its key", ks)
			}
		}},
		{"keep by keyId with the same key", body(map[string]any{"keyId": strings.ToUpper(oldID), "key": base64.StdEncoding.EncodeToString(oldDER), "usage": "verify"}), 204, "", nil},
		{"keep with the customKeyIdentifier as read", body(map[string]any{"keyId": oldID, "customKeyIdentifier": certs.ThumbprintSHA1(oldDER)}), 204, "", nil},
		{"changed displayName", body(map[string]any{"keyId": oldID, "displayName": "renamed"}), 400, "Update to existing credential with KeyId '" + oldID + "' is not allowed.", nil},
		{"changed key", body(map[string]any{"keyId": oldID, "key": freshB64}), 400, "Update to existing credential with KeyId", nil},
		{"changed end date", body(map[string]any{"keyId": oldID, "endDateTime": graphTime(now)}), 400, "Update to existing credential with KeyId", nil},
		{"changed customKeyIdentifier", body(map[string]any{"keyId": oldID, "customKeyIdentifier": base64.StdEncoding.EncodeToString([]byte("other"))}), 400, "Update to existing credential with KeyId", nil},
		{"new credential without customKeyIdentifier", body(keep, newEntry(nil)), 204, "", func(t *testing.T, ks []KeyCredentialView) {
			if len(ks) != 2 || ks[1].CustomKeyIdentifier != certs.ThumbprintSHA1(fresh.DER) {
				t.Errorf("credentials = %+v, want the new one with the thumbprint as customKeyIdentifier", ks)
			}
			if !ks[1].StartDateTime.Equal(fresh.Cert.NotBefore) || !ks[1].EndDateTime.Equal(fresh.Cert.NotAfter) {
				t.Errorf("new dates = %s..%s, want the certificate's", ks[1].StartDateTime, ks[1].EndDateTime)
			}
		}},
		{"duplicate certificate under a new keyId", body(keep, newEntry(func(m map[string]any) { m["key"] = base64.StdEncoding.EncodeToString(oldDER) })), 204, "", func(t *testing.T, ks []KeyCredentialView) {
			if len(ks) != 2 || ks[0].Thumbprint != ks[1].Thumbprint || ks[0].KeyID == ks[1].KeyID {
				t.Errorf("credentials = %+v, want the same certificate twice", ks)
			}
		}},
		{"displayName cut at 90", body(newEntry(func(m map[string]any) { m["displayName"] = long })), 204, "", func(t *testing.T, ks []KeyCredentialView) {
			if ks[0].DisplayName != long[:90] {
				t.Errorf("displayName = %d characters, want 90", len(ks[0].DisplayName))
			}
		}},
		{"given keyId and customKeyIdentifier", body(newEntry(func(m map[string]any) {
			m["keyId"] = "4a4e0a8e-0d0e-4b8a-9f58-3b9b2f7b7f00"
			m["customKeyIdentifier"] = base64.StdEncoding.EncodeToString([]byte{1, 2, 3})
			m["@odata.type"] = "#microsoft.graph.keyCredential"
		})), 204, "", func(t *testing.T, ks []KeyCredentialView) {
			if ks[0].KeyID != "4a4e0a8e-0d0e-4b8a-9f58-3b9b2f7b7f00" || ks[0].CustomKeyIdentifier != "AQID" {
				t.Errorf("credential = %+v", ks[0])
			}
		}},
		{"Sign usage", body(newEntry(func(m map[string]any) { m["usage"] = "Sign" })), 204, "", nil},
		{"no type", body(newEntry(func(m map[string]any) { delete(m, "type") })), 400, `"type"`, nil},
		{"symmetric type", body(newEntry(func(m map[string]any) { m["type"] = "Symmetric" })), 400, `"type"`, nil},
		{"bad usage", body(newEntry(func(m map[string]any) { m["usage"] = "Encrypt" })), 400, `The value for the property "usage" in one of your credentials is invalid. Acceptable values are Sign, Verify.`, nil},
		{"no key", body(newEntry(func(m map[string]any) { delete(m, "key") })), 400, "KeyValue cannot be null or empty", nil},
		{"unknown keyId with key null", body(map[string]any{"keyId": newGUID(), "key": nil, "type": "AsymmetricX509Cert", "usage": "Verify"}), 400, "KeyValue cannot be null or empty", nil},
		{"key not base64", body(newEntry(func(m map[string]any) { m["key"] = "!!!" })), 400, "Invalid certificate: Key value is invalid certificate", nil},
		{"key not a certificate", body(newEntry(func(m map[string]any) { m["key"] = base64.StdEncoding.EncodeToString([]byte("hello")) })), 400, "Invalid certificate", nil},
		{"keyId not a GUID", body(newEntry(func(m map[string]any) { m["keyId"] = "key-1" })), 400, "Invalid value specified for property 'keyId'", nil},
		{"same keyId twice", body(keep, keep), 400, "more than once", nil},
		{"start before the certificate", body(newEntry(func(m map[string]any) { m["startDateTime"] = graphTime(fresh.Cert.NotBefore.Add(-time.Second)) })), 400, "Key credential start date is invalid.", nil},
		{"end after the certificate", body(newEntry(func(m map[string]any) { m["endDateTime"] = graphTime(fresh.Cert.NotAfter.Add(time.Second)) })), 400, "Key credential end date is invalid.", nil},
		{"end before start", body(newEntry(func(m map[string]any) {
			m["startDateTime"], m["endDateTime"] = graphTime(now.Add(time.Hour)), graphTime(now)
		})), 400, "Key credential end date is invalid.", nil},
		{"bad date", body(newEntry(func(m map[string]any) { m["endDateTime"] = "tomorrow" })), 400, "Invalid value specified for property 'endDateTime'", nil},
		{"unknown property in a credential", body(newEntry(func(m map[string]any) { m["thumbprint"] = "x" })), 400, "The property 'thumbprint' does not exist on type 'microsoft.graph.keyCredential'", nil},
		{"unknown property", map[string]any{"keyCredentials": []any{keep}, "frobnicate": 1}, 400, "The property 'frobnicate' does not exist on type 'microsoft.graph.application'", nil},
		{"unmodelled property", map[string]any{"notes": "x"}, 400, "does not support updating property 'notes'", nil},
		{"read-only property", map[string]any{"appId": newGUID()}, 400, "read-only", nil},
		{"odata type", map[string]any{"@odata.type": "#microsoft.graph.application", "keyCredentials": []any{keep}}, 204, "", nil},
		{"wrong odata type", map[string]any{"@odata.type": "#microsoft.graph.user"}, 400, "could not be resolved", nil},
		{"keyCredentials null", map[string]any{"keyCredentials": nil}, 400, "A null value was found for the property named 'keyCredentials'", nil},
		{"keyCredentials not a list", map[string]any{"keyCredentials": "x"}, 400, "Invalid value specified for property 'keyCredentials'", nil},
		{"invalid JSON", []byte(`{"keyCredentials": [`), 400, "Unable to read JSON request payload", nil},
		{"new password credential", map[string]any{"passwordCredentials": []any{map[string]any{"displayName": "x", "secretText": "abc"}}}, 400, "New password credentials must be generated using service actions.", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Start each case from the seeded state.
			for _, k := range env.view("target").KeyCredentials {
				if err := env.e.RemoveKeyCredential(target.AppID, k.KeyID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := env.e.AddKeyCredential(target.AppID, SeedKeyCredential{Certificate: oldDER, KeyID: oldID, DisplayName: "target cert"}); err != nil {
				t.Fatal(err)
			}
			resp, m := env.patch(tok, target.ObjectID, tc.body)
			code, msg := graphErr(m)
			if resp.StatusCode != tc.status {
				t.Fatalf("PATCH = %d %s %q, want %d", resp.StatusCode, code, msg, tc.status)
			}
			if tc.status >= 400 {
				if !strings.Contains(msg, tc.msg) || (code != "Request_BadRequest" && code != "BadRequest") {
					t.Errorf("PATCH error = %s %q, want Request_BadRequest containing %q", code, msg, tc.msg)
				}
				if ks := env.view("target").KeyCredentials; len(ks) != 1 || ks[0].KeyID != oldID {
					t.Errorf("a refused PATCH changed the credentials: %+v", ks)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, env.view("target").KeyCredentials)
			}
		})
	}
}

func TestPatchGzip(t *testing.T) {
	body, err := json.Marshal(map[string]any{"@odata.type": "#microsoft.graph.application", "keyCredentials": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   []Option
		status int
	}{
		{"accepted", nil, http.StatusNoContent},
		{"rejected", []Option{WithRejectGzip()}, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, tc.opts...)
			resp, m := env.patch(env.token("agent"), env.apps["target"].ObjectID, gzipBytes(t, body), "Content-Encoding", "gzip")
			if resp.StatusCode != tc.status {
				t.Fatalf("gzip PATCH = %d %v, want %d", resp.StatusCode, m, tc.status)
			}
			want := 0
			if tc.status == http.StatusUnsupportedMediaType {
				want = 1
				// The client falls back to an uncompressed body.
				if resp, m := env.patch(env.token("agent"), env.apps["target"].ObjectID, body); resp.StatusCode != 204 {
					t.Fatalf("plain PATCH after 415 = %d %v", resp.StatusCode, m)
				}
			}
			if n := len(env.view("target").KeyCredentials); n != 0 {
				t.Errorf("after PATCH: %d credentials, want %d", n, 0)
			}
			var gz int
			for _, r := range env.e.Requests() {
				if r.Method == http.MethodPatch && r.ContentEncoding == "gzip" {
					gz++
					if (r.Status == 415) != (want == 1) {
						t.Errorf("gzip PATCH logged with status %d", r.Status)
					}
				}
			}
			if gz != 1 {
				t.Errorf("request log shows %d gzip PATCHes, want 1", gz)
			}
		})
	}
}

// credentialSize is what one key credential of the named app counts toward the size limit.
func (env *testEnv) credentialSize(name string) int {
	env.t.Helper()
	env.e.mu.Lock()
	defer env.e.mu.Unlock()
	_, a := env.e.findApp(env.e.st, env.apps[name].AppID)
	return objectSize(a) / len(a.KeyCredentials)
}

// setSettings changes the emulator's settings, failing the test on error.
func (env *testEnv) setSettings(change func(*Settings)) {
	env.t.Helper()
	s := env.e.Settings()
	change(&s)
	if err := env.e.SetSettings(s); err != nil {
		env.t.Fatal(err)
	}
}

// TestObjectSizeLimit: Entra limits the application object's size, not the number of keys.
// A PATCH or an addKey that grows the credentials past the limit answers
// Directory_ResourceSizeExceeded with Graph's message, in the configured status, and changes
// nothing; writes that stay within it pass, whatever the number of keys.
func TestObjectSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"default 400", http.StatusBadRequest},
		{"403 as Azure AD Graph documented", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			one := env.credentialSize("target")
			// Room for three certificates of about the target's size, not four.
			env.setSettings(func(s *Settings) { s.ObjectSizeLimit, s.SizeLimitStatus = one*3+one/2, tc.status })
			tok := env.token("admin")
			target := env.apps["target"]
			entries := []any{map[string]any{"keyId": target.KeyCredentials[0].KeyID}}
			for i := 0; i < 2; i++ {
				c := certtest.New(env.clk.Now(), certtest.CommonName("size"))
				entries = append(entries, map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)})
			}
			if resp, m := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": entries}); resp.StatusCode != 204 {
				t.Fatalf("PATCH within the limit = %d %v", resp.StatusCode, m)
			}
			c := certtest.New(env.clk.Now(), certtest.CommonName("one too many"))
			var keep []any
			for _, k := range env.view("target").KeyCredentials {
				keep = append(keep, map[string]any{"keyId": k.KeyID})
			}
			keep = append(keep, map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)})
			resp, m := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": keep})
			code, msg := graphErr(m)
			if resp.StatusCode != tc.status || code != "Directory_ResourceSizeExceeded" || msg != sizeExceededMessage {
				t.Errorf("PATCH past the limit = %d %s %q, want %d Directory_ResourceSizeExceeded %q", resp.StatusCode, code, msg, tc.status, sizeExceededMessage)
			}
			if n := len(env.view("target").KeyCredentials); n != 3 {
				t.Errorf("after the refused PATCH: %d credentials, want 3", n)
			}

			// addKey is held to the same limit.
			agent := env.apps["agent"]
			env.setSettings(func(s *Settings) { s.ObjectSizeLimit = env.credentialSize("agent") + one/2 })
			newCert := certtest.New(env.clk.Now(), certtest.CommonName("agent next"))
			resp, m = env.call(http.MethodPost, "/v1.0/applications/"+agent.ObjectID+"/addKey", env.token("agent"), map[string]any{
				"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.DER)},
				"proof":         env.proof(env.certs["agent"], agent.ObjectID).sign(t),
			})
			if code, _ := graphErr(m); resp.StatusCode != tc.status || code != "Directory_ResourceSizeExceeded" {
				t.Errorf("addKey past the limit = %d %s, want %d Directory_ResourceSizeExceeded", resp.StatusCode, code, tc.status)
			}
			if n := len(env.view("agent").KeyCredentials); n != 1 {
				t.Errorf("after the refused addKey: %d credentials, want 1", n)
			}
		})
	}
}

// TestDefaultObjectSizeLimit: the default limit is of the order users report (hundreds of
// certificates), far above the few an app normally holds.
func TestDefaultObjectSizeLimit(t *testing.T) {
	env := newEnv(t)
	one := env.credentialSize("target")
	t.Logf("one 2048-bit test certificate counts %d bytes; the default limit holds %d", one, DefaultObjectSizeLimit/one)
	if n := DefaultObjectSizeLimit / one; n < 400 || n > 1200 {
		t.Errorf("the default limit holds %d certificates of %d bytes, want 400 to 1200", n, one)
	}
}

func TestCustomKeyIdentifierRaw(t *testing.T) {
	env := newEnv(t, WithCustomKeyIdentifierFormat(CKIThumbprintRaw))
	der := env.certs["target"].DER
	sum := sha1.Sum(der)
	_, m := env.call(http.MethodGet, "/v1.0/applications/"+env.apps["target"].ObjectID+"?$select=keyCredentials", env.token("reader"), nil)
	if got := keyCredentialsOf(t, m)[0]["customKeyIdentifier"]; got != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("customKeyIdentifier = %v, want base64 of the 20-byte thumbprint", got)
	}
}

func TestPatchDisplayNameAndPasswords(t *testing.T) {
	env := newEnv(t)
	tok := env.token("admin")
	sec := env.apps["secret"]
	keyID := sec.PasswordCredentials[0].KeyID
	resp, m := env.patch(tok, sec.ObjectID, map[string]any{
		"displayName":         "secret renamed",
		"passwordCredentials": []any{map[string]any{"keyId": keyID, "displayName": "ci", "secretText": nil, "hint": "s3c"}},
	})
	if resp.StatusCode != 204 {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
	}
	v := env.view("secret")
	if v.DisplayName != "secret renamed" || len(v.PasswordCredentials) != 1 {
		t.Errorf("after PATCH: %+v", v)
	}
	// The secret still signs in.
	form := map[string][]string{"grant_type": {"client_credentials"}, "client_id": {sec.AppID}, "client_secret": {testSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	if status, body := env.postToken(env.tokenURL(), form); status != 200 {
		t.Errorf("secret after PATCH = %d %v", status, body)
	}
	if resp, m := env.patch(tok, sec.ObjectID, map[string]any{"passwordCredentials": []any{map[string]any{"keyId": keyID, "displayName": "changed"}}}); resp.StatusCode != 400 {
		t.Errorf("changing a password credential = %d %v, want 400", resp.StatusCode, m)
	}
	if resp, _ := env.patch(tok, sec.ObjectID, map[string]any{"passwordCredentials": []any{}}); resp.StatusCode != 204 || len(env.view("secret").PasswordCredentials) != 0 {
		t.Errorf("removing the password credential = %d", resp.StatusCode)
	}
}

func TestPatchByAppIDAndMethods(t *testing.T) {
	env := newEnv(t)
	tok := env.token("agent")
	target := env.apps["target"]
	path := "/v1.0/applications(appId='" + target.AppID + "')"
	resp, m := env.call(http.MethodPatch, path, tok, map[string]any{"keyCredentials": []any{}})
	if resp.StatusCode != 204 || len(env.view("target").KeyCredentials) != 0 {
		t.Errorf("PATCH by appId = %d %v, want 204 and no credentials left", resp.StatusCode, m)
	}
	for _, method := range []string{http.MethodDelete, http.MethodPut, http.MethodPost} {
		if resp, _ := env.call(method, path, tok, map[string]any{}); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", method, path, resp.StatusCode)
		}
	}
	// Application.ReadWrite.OwnedBy may create applications, which the caller then owns.
	resp, m = env.call(http.MethodPost, "/v1.0/applications", tok, map[string]any{"displayName": "x"})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("POST /applications = %d %v, want 201", resp.StatusCode, m)
	} else if v, err := env.e.Application(m["appId"].(string)); err != nil || len(v.Owners) != 1 || v.Owners[0].AppID != env.apps["agent"].AppID {
		t.Errorf("the new application's owners = %+v (%v), want the agent", v.Owners, err)
	}
	// Content-Type must be JSON.
	resp, m = env.call(http.MethodPatch, path, tok, []byte(`{"keyCredentials":[]}`), "Content-Type", "text/plain")
	if code, _ := graphErr(m); resp.StatusCode != 400 || code != "Request_BadRequest" {
		t.Errorf("PATCH as text/plain = %d %s, want 400", resp.StatusCode, code)
	}
}

// TestInferredRulesSwitchable: the two inferred PATCH rules can be turned off.
func TestInferredRulesSwitchable(t *testing.T) {
	env := newEnv(t, WithExistingCredentialUpdates(), WithAnyCredentialDates())
	tok := env.token("admin")
	target := env.apps["target"]
	oldID := target.KeyCredentials[0].KeyID
	c := env.certs["target"].Cert

	resp, m := env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": []any{
		map[string]any{"keyId": oldID, "displayName": "renamed", "endDateTime": graphTime(c.NotAfter.Add(-time.Hour))},
	}})
	if resp.StatusCode != 204 {
		t.Fatalf("PATCH changing an existing credential = %d %v, want 204", resp.StatusCode, m)
	}
	k := env.view("target").KeyCredentials[0]
	if k.KeyID != oldID || k.DisplayName != "renamed" || !k.EndDateTime.Equal(c.NotAfter.Add(-time.Hour)) || k.Thumbprint != certs.ThumbprintSHA1(c.Raw) {
		t.Errorf("updated credential = %+v", k)
	}

	fresh := certtest.New(env.clk.Now(), certtest.CommonName("long dates"))
	resp, m = env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": []any{
		map[string]any{"keyId": oldID},
		map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER),
			"endDateTime": graphTime(fresh.Cert.NotAfter.AddDate(1, 0, 0))},
	}})
	if resp.StatusCode != 204 {
		t.Errorf("PATCH with dates beyond the certificate = %d %v, want 204", resp.StatusCode, m)
	}
	// end before start stays an error.
	resp, _ = env.patch(tok, target.ObjectID, map[string]any{"keyCredentials": []any{
		map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(fresh.DER),
			"startDateTime": graphTime(env.clk.Now()), "endDateTime": graphTime(env.clk.Now().Add(-time.Hour))},
	}})
	if resp.StatusCode != 400 {
		t.Errorf("PATCH with end before start = %d, want 400", resp.StatusCode)
	}
}

// TestPatchBodyLimit: a request body larger than 4 MB is refused with 413 before it is read
// as JSON.
func TestPatchBodyLimit(t *testing.T) {
	env := newEnv(t)
	big := []byte(`{"displayName":"` + strings.Repeat("x", maxGraphBody) + `"}`)
	resp, m := env.patch(env.token("admin"), env.apps["target"].ObjectID, big)
	if code, _ := graphErr(m); resp.StatusCode != http.StatusRequestEntityTooLarge || code != "Request_EntityTooLarge" {
		t.Errorf("PATCH of %d bytes = %d %s, want 413 Request_EntityTooLarge", len(big), resp.StatusCode, code)
	}
	if env.view("target").DisplayName != "target" {
		t.Error("the refused PATCH changed the application")
	}
}
