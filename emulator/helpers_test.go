package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a started emulator with a tenant of test apps:
//
//	target     owned by agent, one certificate
//	agent      Application.ReadWrite.OwnedBy
//	reader     Application.Read.All
//	admin      Application.ReadWrite.All
//	norole     no Graph role
//	stranger   Application.ReadWrite.OwnedBy, owns nothing
//	secret     Application.Read.All, a client secret, no certificate
//	expired    a certificate whose credential window has ended
//	ecdsa      an ECDSA certificate
type testEnv struct {
	t      testing.TB
	e      *Emulator
	clk    *testClock
	hc     *http.Client
	base   string
	host   string
	tid    string
	apps   map[string]ApplicationView
	certs  map[string]certtest.Cert
	secret string
}

var testSecret = "s3cret-Value~1"

func newEnv(t testing.TB, opts ...Option) *testEnv {
	t.Helper()
	clk := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	now := clk.Now()
	env := &testEnv{t: t, clk: clk, certs: map[string]certtest.Cert{}, apps: map[string]ApplicationView{}, secret: testSecret}
	for _, name := range []string{"target", "agent", "reader", "admin", "norole", "stranger", "expired"} {
		env.certs[name] = certtest.New(now, certtest.CommonName(name))
	}
	env.certs["ecdsa"] = certtest.New(now, certtest.CommonName("ecdsa"), certtest.ECDSA())
	kc := func(name string) []SeedKeyCredential {
		return []SeedKeyCredential{{Certificate: env.certs[name].DER, DisplayName: name + " cert"}}
	}
	seed := Seed{
		Domain: "contoso.onmicrosoft.com",
		Applications: []SeedApplication{
			{DisplayName: "target", Owners: []string{"agent"}, KeyCredentials: kc("target")},
			{DisplayName: "agent", GraphRoles: []string{RoleApplicationReadWriteOwned}, KeyCredentials: kc("agent")},
			{DisplayName: "reader", GraphRoles: []string{RoleApplicationReadAll}, KeyCredentials: kc("reader")},
			{DisplayName: "admin", GraphRoles: []string{RoleApplicationReadWriteAll}, KeyCredentials: kc("admin")},
			{DisplayName: "norole", KeyCredentials: kc("norole")},
			{DisplayName: "stranger", GraphRoles: []string{RoleApplicationReadWriteOwned}, KeyCredentials: kc("stranger")},
			{DisplayName: "secret", GraphRoles: []string{RoleApplicationReadAll}, PasswordCredentials: []SeedPasswordCredential{{Secret: testSecret, DisplayName: "ci"}}},
			{DisplayName: "expired", GraphRoles: []string{RoleApplicationReadAll}, KeyCredentials: []SeedKeyCredential{{
				Certificate: env.certs["expired"].DER, EndDateTime: now.Add(-30 * time.Minute),
			}}},
			{DisplayName: "ecdsa", GraphRoles: []string{RoleApplicationReadAll}, KeyCredentials: kc("ecdsa")},
		},
	}
	all := append([]Option{WithSeed(seed), WithClock(clk.Now), WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))}, opts...)
	e, err := New(t.TempDir(), all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}, ForceAttemptHTTP2: true}
	env.e = e
	env.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	env.base = e.URL()
	env.host = strings.TrimPrefix(env.base, "https://")
	env.tid = e.TenantID()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, a := range e.State().Tenants[0].Applications {
		env.apps[a.DisplayName] = a
	}
	return env
}

// assertion builds a client assertion or proof JWT.
type assertion struct {
	header map[string]any
	claims map[string]any
	// key signs it (default: the certificate's key).
	key crypto.Signer
	// padded keeps '=' padding in the segments.
	padded bool
}

func x5tS256Std(der []byte) string {
	s := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(s[:])
}

func x5tURL(der []byte) string {
	s := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// msalGoAssertion is what azidentity/MSAL-Go sends: PS256, x5t#S256 in standard base64 with
// padding, nbf, exp = nbf + 10 min, jti.
func (env *testEnv) msalGoAssertion(c certtest.Cert, clientID, aud string) *assertion {
	now := env.clk.Now()
	return &assertion{
		header: map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": x5tS256Std(c.DER)},
		claims: map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": newGUID(),
			"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()},
		key: c.Key,
	}
}

// msalPythonAssertion is what azure-cli/MSAL-Python sends: RS256, x5t (SHA-1, base64url),
// float iat and exp, no nbf.
func (env *testEnv) msalPythonAssertion(c certtest.Cert, clientID, aud string) *assertion {
	now := float64(env.clk.Now().UnixNano()) / 1e9
	return &assertion{
		header: map[string]any{"alg": "RS256", "typ": "JWT", "x5t": x5tURL(c.DER)},
		claims: map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": newGUID(),
			"iat": json.Number(jsonFloat(now + 0.25)), "exp": json.Number(jsonFloat(now + 600.5))},
		key: c.Key,
	}
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	s := string(b)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func (a *assertion) sign(t testing.TB) string {
	t.Helper()
	enc := base64.RawURLEncoding
	if a.padded {
		enc = base64.URLEncoding
	}
	h, _ := json.Marshal(a.header)
	c, _ := json.Marshal(a.claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	rk, ok := a.key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("signing assertion: key %T is not RSA", a.key)
	}
	switch a.header["alg"] {
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, rk, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		sig, err = rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatalf("signing assertion: %v", err)
	}
	return input + "." + enc.EncodeToString(sig)
}

func (env *testEnv) tokenURL() string {
	return env.base + "/" + env.tid + "/oauth2/v2.0/token"
}

// postToken posts a form to the token endpoint and decodes the answer.
func (env *testEnv) postToken(endpoint string, form url.Values, hdr ...string) (int, map[string]any) {
	env.t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		env.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := env.hc.Do(req)
	if err != nil {
		env.t.Fatalf("POST %s: %v", endpoint, err)
	}
	return decodeResponse(env.t, resp)
}

func decodeResponse(t testing.TB, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	if len(b) == 0 {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", resp.StatusCode, err, b)
	}
	return resp.StatusCode, m
}

// certForm is a client-credentials form with a client assertion.
func certForm(clientID, assertionJWT, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {assertionTypeJWT},
		"client_assertion":      {assertionJWT},
		"scope":                 {scope},
		"client_info":           {"1"},
	}
}

// token signs in as the named app with its certificate, the way azidentity does, and returns
// the access token for Graph.
func (env *testEnv) token(name string) string {
	env.t.Helper()
	a := env.apps[name]
	as := env.msalGoAssertion(env.certs[name], a.AppID, env.tokenURL())
	status, body := env.postToken(env.tokenURL(), certForm(a.AppID, as.sign(env.t), "https://graph.microsoft.com/.default openid offline_access profile"))
	if status != http.StatusOK {
		env.t.Fatalf("signing in as %s: %d %v", name, status, body)
	}
	return body["access_token"].(string)
}

// call sends a request with a bearer token (omitted when ""). body may be nil, []byte (sent
// as is) or a value to encode as JSON. hdr holds header name/value pairs.
func (env *testEnv) call(method, path, tok string, body any, hdr ...string) (*http.Response, map[string]any) {
	env.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			env.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, env.base+path, rd)
	if err != nil {
		env.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := env.hc.Do(req)
	if err != nil {
		env.t.Fatalf("%s %s: %v", method, path, err)
	}
	status, m := decodeResponse(env.t, resp)
	resp.StatusCode = status
	return resp, m
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// graphErr returns the code and message of a Graph error answer.
func graphErr(m map[string]any) (string, string) {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	return code, msg
}

// entraCode returns the error and first AADSTS code of an Entra error answer.
func entraCode(m map[string]any) (string, int) {
	errName, _ := m["error"].(string)
	codes, _ := m["error_codes"].([]any)
	if len(codes) == 0 {
		return errName, 0
	}
	f, _ := codes[0].(float64)
	return errName, int(f)
}

// decodeClaims returns the claims of a JWT without verifying it.
func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// keyCredentialsOf returns the keyCredentials of a Graph application answer.
func keyCredentialsOf(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	list, ok := m["keyCredentials"].([]any)
	if !ok {
		t.Fatalf("no keyCredentials in %v", m)
	}
	var out []map[string]any
	for _, v := range list {
		out = append(out, v.(map[string]any))
	}
	return out
}

// pemBody returns the base64 body of a PEM certificate with its line breaks, as azure-cli
// sends it.
func pemBody(c certtest.Cert) string {
	lines := strings.Split(strings.TrimSpace(string(c.PEM())), "\n")
	return strings.Join(lines[1:len(lines)-1], "\n") + "\n"
}

// proof builds an addKey/removeKey proof signed by c for the application objectID.
func (env *testEnv) proof(c certtest.Cert, objectID string) *assertion {
	now := env.clk.Now()
	return &assertion{
		header: map[string]any{"alg": "RS256", "typ": "JWT", "x5t": x5tURL(c.DER)},
		claims: map[string]any{"aud": proofAudience, "iss": objectID, "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()},
		key:    c.Key,
	}
}

// TestMain makes RSA key generation cheap: every emulator of the tests shares one key per
// size (keys stay private to the test binary; certificates stay distinct).
func TestMain(m *testing.M) {
	var mu sync.Mutex
	cache := map[int]*rsa.PrivateKey{}
	generateRSAKey = func(r io.Reader, bits int) (*rsa.PrivateKey, error) {
		mu.Lock()
		defer mu.Unlock()
		if k, ok := cache[bits]; ok {
			return k, nil
		}
		k, err := rsa.GenerateKey(r, bits)
		if err == nil {
			cache[bits] = k
		}
		return k, err
	}
	os.Exit(m.Run())
}

// jsonString returns s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
