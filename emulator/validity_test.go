package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// signIn asks for a Graph token as appID with a client assertion signed by c, the way
// azidentity does, and returns the status, OAuth error and AADSTS code (0 on success).
func (env *testEnv) signIn(appID string, c certtest.Cert) (int, string, int, map[string]any) {
	env.t.Helper()
	as := env.msalGoAssertion(c, appID, env.tokenURL())
	status, body := env.postToken(env.tokenURL(), certForm(appID, as.sign(env.t), "https://graph.microsoft.com/.default"))
	errName, code := entraCode(body)
	return status, errName, code, body
}

// sha256Hex is the thumbprint Entra's messages name for an x5t#S256 client assertion.
func sha256Hex(der []byte) string {
	s := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// TestValidityErrorCodes: a registered certificate outside its validity window (its
// credential's dates, or the certificate's own) is refused with the configured code, in
// Entra's shape, whatever the reason; an unknown certificate is AADSTS700027 "not
// registered" whatever the setting.
func TestValidityErrorCodes(t *testing.T) {
	for _, code := range []int{ValidityError700027, ValidityError1000502, ValidityError7000274} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			env := newEnv(t, WithValidityErrorCode(code), WithAnyCredentialDates())
			now := env.clk.Now()

			// A credential whose window has not started yet.
			future := certtest.New(now, certtest.CommonName("future"))
			fa, err := env.e.AddApplication("", SeedApplication{DisplayName: "future", KeyCredentials: []SeedKeyCredential{{
				Certificate: future.DER, StartDateTime: now.Add(time.Hour),
			}}})
			if err != nil {
				t.Fatal(err)
			}
			// A credential whose dates outlast its certificate (accepted with
			// WithAnyCredentialDates), signing in after the certificate expired.
			short := certtest.New(now, certtest.CommonName("short"), certtest.Validity(now.Add(-time.Hour), now.Add(time.Hour)))
			sa, err := env.e.AddApplication("", SeedApplication{DisplayName: "short"})
			if err != nil {
				t.Fatal(err)
			}
			resp, m := env.patch(env.token("admin"), sa.ObjectID, map[string]any{"keyCredentials": []any{map[string]any{
				"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(short.DER),
				"endDateTime": now.Add(48 * time.Hour).Format(time.RFC3339),
			}}})
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
			}

			type attempt struct {
				name  string
				appID string
				cert  certtest.Cert
				want  int
				later time.Duration
			}
			for _, a := range []attempt{
				{"credential expired", env.apps["expired"].AppID, env.certs["expired"], code, 0},
				{"credential not yet valid", fa.AppID, future, code, 0},
				{"unknown certificate", env.apps["reader"].AppID, certtest.New(now, certtest.CommonName("stranger")), 700027, 0},
				{"certificate expired inside the credential's dates", sa.AppID, short, code, 2 * time.Hour},
			} {
				env.clk.Advance(a.later)
				status, errName, got, body := env.signIn(a.appID, a.cert)
				desc, _ := body["error_description"].(string)
				if status != http.StatusUnauthorized || errName != "invalid_client" || got != a.want {
					t.Errorf("%s: sign-in = %d %s AADSTS%d, want 401 invalid_client AADSTS%d (%s)", a.name, status, errName, got, a.want, desc)
					continue
				}
				if !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", a.want)) || !strings.Contains(desc, sha256Hex(a.cert.DER)) ||
					!strings.Contains(desc, "Trace ID: ") || !strings.Contains(desc, "Correlation ID: ") {
					t.Errorf("%s: error_description = %q, want Entra's shape naming the thumbprint", a.name, desc)
				}
				if a.name == "unknown certificate" && !strings.Contains(desc, "is not registered on application") {
					t.Errorf("%s: error_description = %q, want \"not registered\"", a.name, desc)
				}
			}
		})
	}
}
