package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// TestSettingsRoute: GET /_emulator/settings shows the settings with durations as strings;
// PUT changes the fields it names, keeps the others, refuses unknown fields and bad values,
// and the change takes effect at once.
func TestSettingsRoute(t *testing.T) {
	env := newEnv(t)
	status, m := env.control(http.MethodGet, "/_emulator/settings", "")
	if status != http.StatusOK || m["signInAddDelay"] != "0s" || m["objectSizeLimit"].(float64) != DefaultObjectSizeLimit ||
		m["sizeLimitStatus"].(float64) != 400 || m["validityErrorCode"].(float64) != ValidityError700027 ||
		m["unconsentedErrorCode"].(float64) != UnconsentedError7000229 {
		t.Fatalf("GET settings = %d %v, want the fast strict defaults", status, m)
	}
	status, m = env.control(http.MethodPut, "/_emulator/settings", `{"signInAddDelay":"1m30s","replicas":2,"maxReplicationLag":"2s","seed":9}`)
	if status != http.StatusOK || m["signInAddDelay"] != "1m30s" || m["maxReplicationLag"] != "2s" || m["objectSizeLimit"].(float64) != DefaultObjectSizeLimit {
		t.Fatalf("PUT settings = %d %v", status, m)
	}
	got := env.e.Settings()
	if got.SignInAddDelay != 90*time.Second || got.Replicas != 2 || got.MaxReplicationLag != 2*time.Second || got.Seed != 9 || !got.Realistic() {
		t.Errorf("Settings() = %+v after PUT", got)
	}
	for _, body := range []string{
		`{"signInAddDelay":"soon"}`,
		`{"signInAddDelay":"-1s"}`,
		`{"replicas":99}`,
		`{"objectSizeLimit":0}`,
		`{"sizeLimitStatus":500}`,
		`{"validityErrorCode":50012}`,
		`{"unconsentedErrorCode":50012}`,
		`{"frobnicate":1}`,
		`not json`,
	} {
		if status, m := env.control(http.MethodPut, "/_emulator/settings", body); status != http.StatusBadRequest {
			t.Errorf("PUT settings %s = %d %v, want 400", body, status, m)
		}
	}
	if after := env.e.Settings(); after != got {
		t.Errorf("refused PUTs changed the settings: %+v, want %+v", after, got)
	}

	// The change applies to the next write.
	c := certtest.New(env.clk.Now(), certtest.CommonName("after PUT"))
	if _, err := env.e.AddKeyCredential(env.apps["reader"].AppID, SeedKeyCredential{Certificate: c.DER}); err != nil {
		t.Fatal(err)
	}
	if status, _, code, _ := env.signIn(env.apps["reader"].AppID, c); code != 700027 {
		t.Errorf("sign-in with a key added after the PUT = %d AADSTS%d, want AADSTS700027", status, code)
	}
	if status, m := env.control(http.MethodPost, "/_emulator/settle", ""); status != http.StatusNoContent {
		t.Fatalf("POST settle = %d %v", status, m)
	}
	if status, _, _, body := env.signIn(env.apps["reader"].AppID, c); status != http.StatusOK {
		t.Errorf("sign-in after POST settle = %d %v, want 200", status, body)
	}
	if status, _ := env.control(http.MethodDelete, "/_emulator/settings", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE settings = %d, want 405", status)
	}
}

// TestSettingsJSONRoundTrip: Settings marshal and unmarshal to the same value, and
// RealisticSettings is what WithRealistic applies.
func TestSettingsJSONRoundTrip(t *testing.T) {
	want := RealisticSettings(1234)
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got Settings
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("round trip = %+v, want %+v (JSON %s)", got, want, b)
	}
	env := newEnv(t, WithObjectSizeLimit(5000), WithRealistic(1234))
	s := env.e.Settings()
	if s.ObjectSizeLimit != 5000 || s.SignInAddDelay != 5*time.Second || s.SignInAddJitter != 15*time.Second ||
		s.MaxReplicationLag != 2*time.Second || s.Replicas != 3 || s.Seed != 1234 {
		t.Errorf("WithRealistic(1234) = %+v", s)
	}
	if !strings.Contains(s.String(), "seed 1234") {
		t.Errorf("String() = %q, want the seed", s.String())
	}
}

// TestPortalKeyCredentialRoutes: the control routes change an app's certificates the way a
// person in the portal does, through the versioned write path (the write is on the primary
// at once, subject to replication lag and sign-in propagation) and Graph's size limit.
func TestPortalKeyCredentialRoutes(t *testing.T) {
	env := newEnv(t, WithSignInPropagation(10*time.Second, 0), WithReplicationLag(time.Second, 3))
	target := env.apps["target"]
	c := certtest.New(env.clk.Now(), certtest.CommonName("portal"))
	path := "/_emulator/applications/" + target.AppID + "/keyCredentials"

	// PEM, or base64 of the DER; the same certificate twice is two credentials.
	status, m := env.control(http.MethodPost, path, `{"certificate":`+jsonString(string(c.PEM()))+`,"displayName":"uploaded in the portal"}`)
	if status != http.StatusCreated || m["displayName"] != "uploaded in the portal" || m["signInFrom"] == nil {
		t.Fatalf("POST PEM = %d %v, want 201 with signInFrom", status, m)
	}
	firstKeyID := m["keyId"].(string)
	keyID := newGUID()
	status, m = env.control(http.MethodPost, path, `{"certificate":"`+base64.StdEncoding.EncodeToString(c.DER)+`","keyId":"`+keyID+`"}`)
	if status != http.StatusCreated || m["keyId"] != keyID {
		t.Fatalf("POST base64 with keyId = %d %v", status, m)
	}
	if v := env.view("target"); len(v.KeyCredentials) != 3 || v.Version != 3 {
		t.Errorf("primary = %d credentials version %d, want 3 credentials version 3", len(v.KeyCredentials), v.Version)
	}
	if ids, stale := env.keyIDsRead(env.token("reader")); !stale || containsExact(ids, keyID) {
		t.Errorf("Graph read right after the upload = %v (stale %v), want the old version", ids, stale)
	}
	if status, _, code, _ := env.signIn(target.AppID, c); code != 700027 {
		t.Errorf("sign-in with the uploaded certificate at once = %d AADSTS%d, want AADSTS700027", status, code)
	}

	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown app", http.MethodPost, "/_emulator/applications/" + newGUID() + "/keyCredentials", `{"certificate":` + jsonString(string(c.PEM())) + `}`, http.StatusNotFound},
		{"not a certificate", http.MethodPost, path, `{"certificate":"bm9wZQ=="}`, http.StatusBadRequest},
		{"keyId taken", http.MethodPost, path, `{"certificate":` + jsonString(string(c.PEM())) + `,"keyId":"` + keyID + `"}`, http.StatusBadRequest},
		{"unknown field", http.MethodPost, path, `{"cert":"x"}`, http.StatusBadRequest},
		{"bad date", http.MethodPost, path, `{"certificate":` + jsonString(string(c.PEM())) + `,"endDateTime":"tomorrow"}`, http.StatusBadRequest},
		{"end past the certificate", http.MethodPost, path, `{"certificate":` + jsonString(string(c.PEM())) + `,"endDateTime":"` + c.Cert.NotAfter.Add(time.Hour).Format(time.RFC3339) + `"}`, http.StatusBadRequest},
		{"GET", http.MethodGet, path, "", http.StatusMethodNotAllowed},
		{"unknown keyId", http.MethodDelete, path + "/" + newGUID(), "", http.StatusNotFound},
		{"unknown route", http.MethodGet, "/_emulator/applications/" + target.AppID, "", http.StatusNotFound},
	} {
		if status, m := env.control(tc.method, tc.path, tc.body); status != tc.want {
			t.Errorf("%s: %s %s = %d %v, want %d", tc.name, tc.method, tc.path, status, m, tc.want)
		}
	}

	if status, m := env.control(http.MethodDelete, path+"/"+firstKeyID, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %v", status, m)
	}
	if v := env.view("target"); len(v.KeyCredentials) != 2 {
		t.Errorf("after DELETE: %d credentials, want 2", len(v.KeyCredentials))
	}

	// The portal is held to Graph's size limit.
	env.setSettings(func(s *Settings) { s.ObjectSizeLimit = env.credentialSize("target") * 2 })
	status, m = env.control(http.MethodPost, path, `{"certificate":`+jsonString(string(c.PEM()))+`}`)
	if msg, _ := m["error"].(map[string]any)["message"].(string); status != http.StatusBadRequest || !strings.Contains(msg, "Directory_ResourceSizeExceeded") {
		t.Errorf("POST past the size limit = %d %v, want 400 Directory_ResourceSizeExceeded", status, m)
	}
	if _, err := env.e.PortalAddKeyCredential(target.AppID, SeedKeyCredential{Certificate: c.DER}); err == nil {
		t.Error("PortalAddKeyCredential past the size limit succeeded")
	}
	if _, err := env.e.AddKeyCredential(target.AppID, SeedKeyCredential{Certificate: c.DER}); err != nil {
		t.Errorf("AddKeyCredential bypasses the size limit, got %v", err)
	}
}
