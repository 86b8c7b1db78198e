package graph_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// lastSignIn returns the thumbprint of the agent's last successful sign-in.
func (env *env) lastSignIn(t *testing.T) string {
	t.Helper()
	for _, cl := range env.e.State().Tenants[0].Clients {
		if cl.AppID == env.apps["agent"].AppID && cl.LastSignIn != nil {
			return cl.LastSignIn.Thumbprint
		}
	}
	return ""
}

// TestUnknownAgentKey: the agent's certificate is not registered on its app.
func TestUnknownAgentKey(t *testing.T) {
	env := newEnv(t)
	stranger := certtest.New(env.now, certtest.CommonName("not registered"))
	var o observations
	c := env.client(t, func(cfg *graph.Config) {
		cfg.Credential = newSource(stranger)
		cfg.Observe = o.observe
	})
	_, err := c.Get(context.Background(), env.apps["target"].AppID)
	ge := checkErr(t, "Get", err, certs.AuthFailed, false)
	clientID := env.apps["agent"].AppID
	if !ge.SignIn || ge.AADSTS != 700027 || ge.Code != "invalid_client" || ge.Thumbprint != thumb(stranger) {
		t.Errorf("error: SignIn %v, AADSTS %d, Code %q, Thumbprint %s; want true, 700027, invalid_client, %s",
			ge.SignIn, ge.AADSTS, ge.Code, ge.Thumbprint, thumb(stranger))
	}
	for _, want := range []string{"not registered on app " + clientID, thumb(stranger), "AADSTS700027"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !strings.Contains(ge.Reason().Message, "Upload the agent's certificate") {
		t.Errorf("reason message %q does not tell the admin what to do", ge.Reason().Message)
	}
	if strings.Contains(err.Error(), "Trace ID") {
		t.Errorf("error %q keeps Entra's trace lines (they belong in fields)", err)
	}
	if ge.RequestID == "" {
		t.Error("no trace id kept")
	}
	if reqs := env.graphRequests(); len(reqs) != 0 {
		t.Errorf("Graph was called without a token: %q", reqs)
	}
	if o.count("token/auth_failed") != 1 {
		t.Errorf("observed %q, want one token/auth_failed", o.list())
	}
}

// TestCredentialSwap: a renewal swaps the source's certificate; the next request signs in
// with the new one instead of reusing the token obtained with the old one.
func TestCredentialSwap(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	src := newSource(env.certs["agent"])
	c := env.client(t, func(cfg *graph.Config) { cfg.Credential = src })
	ctx := context.Background()
	target := env.apps["target"].AppID

	if _, err := c.Get(ctx, target); err != nil {
		t.Fatal(err)
	}
	if got := env.lastSignIn(t); got != thumb(env.certs["agent"]) {
		t.Fatalf("signed in with %s, want %s", got, thumb(env.certs["agent"]))
	}
	renewed := certtest.New(env.now, certtest.CommonName("agent renewed"), certtest.FreshKey())
	if _, err := env.e.AddKeyCredential(agent.AppID, emulator.SeedKeyCredential{Certificate: renewed.DER}); err != nil {
		t.Fatal(err)
	}
	src.Set(renewed)
	if _, err := c.Get(ctx, target); err != nil {
		t.Fatalf("Get after the swap: %v", err)
	}
	if got := env.lastSignIn(t); got != thumb(renewed) {
		t.Errorf("after the swap, signed in with %s, want the new certificate %s", got, thumb(renewed))
	}
	if n := env.tokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (one per certificate)", n)
	}
	// Same certificate again: the cached token serves.
	if _, err := c.Get(ctx, target); err != nil {
		t.Fatal(err)
	}
	if n := env.tokenRequests(); n != 2 {
		t.Errorf("%d token requests after a third Get, want 2", n)
	}
	// A certificate that is not registered fails at once, though a valid token is cached.
	unknown := certtest.New(env.now, certtest.CommonName("agent unknown"))
	src.Set(unknown)
	_, err := c.Get(ctx, target)
	ge := checkErr(t, "Get with an unregistered certificate", err, certs.AuthFailed, false)
	if ge.AADSTS != 700027 || ge.Thumbprint != thumb(unknown) {
		t.Errorf("AADSTS %d thumbprint %s, want 700027 %s", ge.AADSTS, ge.Thumbprint, thumb(unknown))
	}
}

// TestSelfRenewal: the agent adds its next certificate to its own app with addKey, signs in
// with it, and removes the old one with removeKey; no Graph permission on itself is needed.
func TestSelfRenewal(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	old := env.certs["agent"]
	src := newSource(old)
	var o observations
	c := env.client(t, func(cfg *graph.Config) {
		cfg.Credential = src
		cfg.Observe = o.observe
	})
	ctx := context.Background()
	next := certtest.New(env.now, certtest.CommonName("agent next"), certtest.FreshKey())

	added, err := c.AddKey(ctx, agent.ObjectID, next.Cert, "certagent 2027")
	if err != nil {
		t.Fatalf("AddKey: %v", err)
	}
	if added.KeyID == "" || added.Thumbprint() != thumb(next) || added.DisplayName != "certagent 2027" ||
		added.Type != certs.KeyTypeX509Cert || added.Usage != certs.KeyUsageVerify {
		t.Errorf("AddKey = %+v, want the new credential", added)
	}
	if got, want := env.thumbprints(t, "agent"), []string{thumb(old), thumb(next)}; !slices.Equal(got, want) {
		t.Errorf("after AddKey the agent app holds %q, want %q", got, want)
	}

	src.Set(next)
	if _, err := c.Get(ctx, env.apps["target"].AppID); err != nil {
		t.Fatalf("Get signed in with the new certificate: %v", err)
	}
	if got := env.lastSignIn(t); got != thumb(next) {
		t.Errorf("signed in with %s, want %s", got, thumb(next))
	}
	oldKeyID := agent.KeyCredentials[0].KeyID
	if err := c.RemoveKey(ctx, agent.ObjectID, oldKeyID); err != nil {
		t.Fatalf("RemoveKey(old) signed with the new key: %v", err)
	}
	if got, want := env.thumbprints(t, "agent"), []string{thumb(next)}; !slices.Equal(got, want) {
		t.Errorf("after RemoveKey the agent app holds %q, want %q", got, want)
	}
	if o.count("addKey/ok") != 1 || o.count("removeKey/ok") != 1 {
		t.Errorf("observed %q, want addKey/ok and removeKey/ok", o.list())
	}

	err = c.RemoveKey(ctx, agent.ObjectID, oldKeyID)
	checkErr(t, "RemoveKey(already removed)", err, certs.AppNotFound, false)
}

// TestAddKeyProofRefused: a proof signed by a key that is not valid on the app is refused.
func TestAddKeyProofRefused(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	n := certtest.New(env.now, certtest.CommonName("intruder"))
	_, err := c.AddKey(context.Background(), env.apps["target"].ObjectID, n.Cert, "")
	ge := checkErr(t, "AddKey(target) with the agent's key", err, certs.AuthFailed, false)
	if ge.StatusCode != 401 || ge.Code != "Authentication_MissingOrMalformed" {
		t.Errorf("status %d code %q, want 401 Authentication_MissingOrMalformed", ge.StatusCode, ge.Code)
	}
	if len(env.thumbprints(t, "target")) != 2 {
		t.Errorf("target changed: %q", env.thumbprints(t, "target"))
	}
}

// opaqueSigner hides the concrete key type, as a key in a hardware store would.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

// TestOpaqueSigner: a key MSAL cannot take (not an *rsa.PrivateKey) signs the client
// assertion through the client's own code.
func TestOpaqueSigner(t *testing.T) {
	env := newEnv(t)
	a := env.certs["agent"]
	c := env.client(t, func(cfg *graph.Config) {
		cfg.Credential = &source{cert: a.Cert, key: opaqueSigner{a.Key}}
	})
	if _, err := c.Get(context.Background(), env.apps["target"].AppID); err != nil {
		t.Fatalf("Get with an opaque signer: %v", err)
	}
	if got := env.lastSignIn(t); got != thumb(a) {
		t.Errorf("signed in with %s, want %s", got, thumb(a))
	}
}

func TestSignInLocalFailures(t *testing.T) {
	env := newEnv(t)
	a := env.certs["agent"]
	other := certtest.New(env.now, certtest.CommonName("other"), certtest.FreshKey())
	ec := certtest.New(env.now, certtest.CommonName("ecdsa"), certtest.ECDSA())
	tests := []struct {
		name string
		src  graph.CredentialSource
		want string
	}{
		{"KeyOfAnotherCertificate", &source{cert: a.Cert, key: other.Key}, "does not belong to the certificate"},
		{"NotRSA", newSource(ec), "not RSA"},
		{"Nothing", &source{}, "no sign-in certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := env.client(t, func(cfg *graph.Config) { cfg.Credential = tt.src })
			_, err := c.Get(context.Background(), env.apps["target"].AppID)
			checkErr(t, "Get", err, certs.AuthFailed, false)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if n := env.tokenRequests(); n != 0 {
		t.Errorf("%d token requests for credentials that cannot work", n)
	}
}

func TestTokenEndpointUnavailable(t *testing.T) {
	graph.SetTokenRetryDelay(t, time.Millisecond)
	for _, tt := range []struct {
		name  string
		fault emulator.Fault
	}{
		{"503", emulator.Fault{Method: "POST", Status: 503, RetryAfter: 0.01, Times: emulator.UntilCleared}},
		{"Reset", emulator.Fault{Method: "POST", Reset: true, Times: emulator.UntilCleared}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			tt.fault.Path = "/" + env.tenant + "/oauth2"
			if err := env.e.AddFaults(tt.fault); err != nil {
				t.Fatal(err)
			}
			var o observations
			c := env.client(t, func(cfg *graph.Config) { cfg.Observe = o.observe })
			_, err := c.Get(context.Background(), env.apps["target"].AppID)
			ge := checkErr(t, "Get", err, certs.GraphUnavailable, true)
			if !ge.SignIn {
				t.Error("SignIn = false for a token endpoint failure")
			}
			if !strings.Contains(err.Error(), "token endpoint") {
				t.Errorf("error %q does not name the token endpoint", err)
			}
			if tokens := env.tokenRequests(); tokens != 4 {
				t.Errorf("%d token requests, want 4 (azcore retries 3 times)", tokens)
			}
			if len(env.graphRequests()) != 0 {
				t.Error("Graph called without a token")
			}
			env.e.ClearFaults()
			if _, err := c.Get(context.Background(), env.apps["target"].AppID); err != nil {
				t.Errorf("Get once the token endpoint is back: %v", err)
			}
		})
	}
}

func TestProof(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	c := certtest.New(now, certtest.CommonName("proof"))
	objectID := "7b1f0b3a-2f0e-4c55-9a8e-3c2f1d7e9a10"
	proof, err := graph.SignProof(c.Cert, c.Key, objectID, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(proof, "=") {
		t.Errorf("proof has '=' padding: %s", proof)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof has %d parts", len(parts))
	}
	var header map[string]string
	var claims map[string]any
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	x5t, _ := base64.RawURLEncoding.DecodeString(header["x5t"])
	if header["alg"] != "RS256" || header["typ"] != "JWT" || strings.ToUpper(string(hexOf(x5t))) != thumb(c) || header["kid"] != thumb(c) {
		t.Errorf("header = %v, want RS256 JWT with x5t and kid of %s", header, thumb(c))
	}
	// The audience is the literal Microsoft documents, not the constant: a test that compared
	// with the constant passed while the agent signed for 00000003 (Graph), which Entra refuses.
	want := map[string]any{"aud": "00000002-0000-0000-c000-000000000000", "iss": objectID, "nbf": float64(now.Unix()), "exp": float64(now.Add(10 * time.Minute).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(c.Cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("signature does not verify with the certificate: %v", err)
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return out
}

// TestUntrustedServer: a server certificate the client does not trust is a configuration
// problem, not worth retrying.
func TestUntrustedServer(t *testing.T) {
	env := newEnv(t)
	c := env.client(t, func(cfg *graph.Config) { cfg.RootCAs = x509.NewCertPool() })
	_, err := c.Get(context.Background(), env.apps["target"].AppID)
	checkErr(t, "Get", err, certs.AuthFailed, false)
	if !strings.Contains(err.Error(), "TLS certificate is not trusted") {
		t.Errorf("error %q does not say the TLS certificate is not trusted", err)
	}
	if n := len(env.e.Requests()); n != 0 {
		t.Errorf("%d requests answered over an untrusted connection", n)
	}
}

// TestTokenGraphNoLongerTakes: a cached access token that Graph refuses as expired (its
// clock ahead of the agent's, or the token revoked) is dropped: the 401 is transient, and
// the next call signs in again and succeeds. Before, the client kept the token and every
// call failed with auth_failed until the cache thought it old.
func TestTokenGraphNoLongerTakes(t *testing.T) {
	var mu sync.Mutex
	var skew time.Duration
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(skew)
	}
	env := newEnv(t, emulator.WithTokenLifetime(6*time.Minute), emulator.WithClock(clock))
	c := env.client(t)
	ctx := context.Background()
	target := env.apps["target"]
	if _, err := c.Get(ctx, target.AppID); err != nil {
		t.Fatal(err)
	}
	// Graph's clock moves past the cached token's expiry (and its 5 minutes of skew);
	// the client's cache still holds the token as good for a minute.
	mu.Lock()
	skew = 12 * time.Minute
	mu.Unlock()
	_, err := c.Get(ctx, target.AppID)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.StatusCode != 401 || !ge.Transient() {
		t.Fatalf("Get with a token Graph calls expired = %v, want a transient 401", err)
	}
	if _, err := c.Get(ctx, target.AppID); err != nil {
		t.Fatalf("the next Get = %v, want a fresh token and success", err)
	}
}
