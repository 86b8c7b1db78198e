package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/notify"
	"github.com/aucloud/certagent/agent/provenance"
	"github.com/aucloud/certagent/internal/certtest"
)

func get(t *testing.T, h http.Handler, path, etag string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if etag != "" {
		r.Header.Set("If-None-Match", etag)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPublishAndServe: a published certificate is served with an ETag (304 when it matches),
// its signature is the agent's idea of a valid one by the provider's pinned key, and
// everything survives a new Provider on the same folder.
func TestPublishAndServe(t *testing.T) {
	dir := t.TempDir()
	p, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := p.PublishNew("contoso", "AUCloud VB365 2027")
	if err != nil {
		t.Fatal(err)
	}
	if pub.Certificate.Subject != "CN=AUCloud VB365 2027,O=AUCloud" || pub.Certificate.KeyAlgorithm != "RSA" || pub.Path != "/provider/customers/contoso/next.cer" {
		t.Errorf("published %+v", pub)
	}
	h := p.Handler()
	cert := get(t, h, pub.Path, "")
	sig := get(t, h, pub.Path+".sig", "")
	if cert.Code != 200 || sig.Code != 200 || cert.Header().Get("ETag") == "" || cert.Header().Get("ETag") != pub.ETag {
		t.Fatalf("GET: %d %d, ETag %q", cert.Code, sig.Code, cert.Header().Get("ETag"))
	}
	if w := get(t, h, pub.Path, pub.ETag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
	for _, path := range []string{"/provider/customers/fabrikam/next.cer", "/provider/customers/../signing.key", "/provider/customers/contoso/other"} {
		if w := get(t, h, path, ""); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}

	pinned, err := provenance.ReadKeyFile(p.SigningPubPath())
	if err != nil {
		t.Fatal(err)
	}
	r := provenance.NewVerifier(pinned, true).Check(sig.Body.Bytes(), cert.Body.Bytes())
	if r.Signer == nil || r.Signer.Fingerprint != p.Fingerprint() {
		t.Fatalf("the agent's check of the published signature: %+v", r.Reason)
	}

	again, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != p.Fingerprint() || len(again.State().Published) != 1 || again.State().Published[0].ETag != pub.ETag {
		t.Errorf("a new Provider on the same folder lost its key or its certificate: %+v", again.State())
	}
	if b, _ := os.ReadFile(again.SecretPath()); !strings.HasPrefix(string(b), "whsec_") {
		t.Errorf("secret file %q", b)
	}
}

// TestWebhook: a delivery signed with the provider's secret (by the agent's signer) is
// verified, answered 204 and recorded with the certificate it tells of; one with another
// signature is answered 401 and recorded as refused.
func TestWebhook(t *testing.T) {
	p, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := p.Publish("contoso", certtest.New(time.Now(), certtest.CommonName("published")).PEM())
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(p.SecretPath())
	signer, err := notify.ParseSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"certificate.applied","timestamp":"2026-12-05T00:00:00Z","data":{"rotationId":"r1","tenantId":"t1","appId":"a1","keyId":"k1","certificate":{"thumbprint":"` + pub.Certificate.Thumbprint + `"}}}`)
	post := func(sig string) int {
		ts := time.Now().Unix()
		r := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		r.Header.Set("webhook-id", "msg_1")
		r.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		if sig == "" {
			sig = signer.Sign("msg_1", ts, body)
		}
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		p.Handler().ServeHTTP(w, r)
		return w.Code
	}
	if code := post(""); code != http.StatusNoContent {
		t.Errorf("signed delivery: %d, want 204", code)
	}
	if code := post("v1,c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ=="); code != http.StatusUnauthorized {
		t.Errorf("forged delivery: %d, want 401", code)
	}
	ds := p.Deliveries()
	if len(ds) != 2 || !ds[0].Verified || !ds[0].Published || ds[0].KeyID != "k1" || ds[0].Type != "certificate.applied" || ds[1].Verified || ds[1].Error == "" {
		t.Errorf("deliveries %+v", ds)
	}
}

// TestControlRoutes: publish through the control route (a new certificate, or one given) and
// read the state.
func TestControlRoutes(t *testing.T) {
	p, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		p.ServeControl(w, r)
		return w
	}
	if w := do(http.MethodPost, ControlPrefix+"publish", `{"customer":"contoso","commonName":"AUCloud VB365 2028"}`); w.Code != 200 || !strings.Contains(w.Body.String(), "AUCloud VB365 2028") {
		t.Errorf("publish: %d %s", w.Code, w.Body)
	}
	given := certtest.New(time.Now(), certtest.CommonName("given"))
	b, _ := json.Marshal(map[string]string{"customer": "fabrikam", "certificate": string(given.PEM())})
	if w := do(http.MethodPost, ControlPrefix+"publish", string(b)); w.Code != 200 || !strings.Contains(w.Body.String(), "CN=given") {
		t.Errorf("publish a given certificate: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{`{"customer":"Not A Name"}`, `{"customer":"x","certificate":"%%%"}`, `{"nope":1}`} {
		if w := do(http.MethodPost, ControlPrefix+"publish", bad); w.Code != http.StatusBadRequest {
			t.Errorf("publish %s: %d, want 400", bad, w.Code)
		}
	}
	w := do(http.MethodGet, ControlPrefix+"state", "")
	var st State
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || len(st.Published) != 2 || st.Fingerprint != p.Fingerprint() {
		t.Errorf("state: %v %+v", err, st)
	}
	if w := do(http.MethodGet, ControlPrefix+"nothing", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown route: %d", w.Code)
	}
}
