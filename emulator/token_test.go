package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

func TestOpenIDConfiguration(t *testing.T) {
	env := newEnv(t)
	for _, name := range []string{env.tid, "contoso.onmicrosoft.com", "CONTOSO.onmicrosoft.com"} {
		resp, m := env.call(http.MethodGet, "/"+name+"/v2.0/.well-known/openid-configuration", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("openid-configuration for %s = %d %v, want 200", name, resp.StatusCode, m)
		}
		for field, want := range map[string]string{
			"issuer":                 env.base + "/" + env.tid + "/v2.0",
			"token_endpoint":         env.base + "/" + env.tid + "/oauth2/v2.0/token",
			"authorization_endpoint": env.base + "/" + env.tid + "/oauth2/v2.0/authorize",
			"jwks_uri":               env.base + "/" + env.tid + "/discovery/v2.0/keys",
		} {
			if m[field] != want {
				t.Errorf("openid-configuration(%s).%s = %v, want %s", name, field, m[field], want)
			}
		}
	}

	resp, m := env.call(http.MethodGet, "/adfs/.well-known/openid-configuration", "", nil)
	if resp.StatusCode != http.StatusOK || m["token_endpoint"] != env.base+"/adfs/oauth2/token" || m["authorization_endpoint"] != env.base+"/adfs/oauth2/authorize" {
		t.Errorf("adfs openid-configuration = %d %v", resp.StatusCode, m)
	}

	resp, m = env.call(http.MethodGet, "/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration", "", nil)
	if errName, code := entraCode(m); resp.StatusCode != http.StatusBadRequest || code != 90002 || errName != "invalid_tenant" {
		t.Errorf("unknown tenant = %d %s %d, want 400 invalid_tenant 90002", resp.StatusCode, errName, code)
	}
	if desc, _ := m["error_description"].(string); !strings.Contains(desc, "Tenant 'nosuch.onmicrosoft.com' not found") {
		t.Errorf("unknown tenant description = %q", desc)
	}

	resp, m = env.call(http.MethodGet, "/"+env.tid+"/discovery/v2.0/keys", "", nil)
	keys, _ := m["keys"].([]any)
	if resp.StatusCode != http.StatusOK || len(keys) != 1 {
		t.Errorf("jwks = %d %v, want one key", resp.StatusCode, m)
	}
}

func TestTokenMSALGo(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	as := env.msalGoAssertion(env.certs["agent"], agent.AppID, env.tokenURL())
	form := certForm(agent.AppID, as.sign(t), "https://graph.microsoft.com/.default openid offline_access profile")
	form.Set("claims", `{"access_token":{"xms_cc":{"values":["CP1"]}}}`)
	status, body := env.postToken(env.tokenURL(), form)
	if status != http.StatusOK {
		t.Fatalf("token = %d %v, want 200", status, body)
	}
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
		t.Errorf("token answer = %v", body)
	}
	claims := decodeClaims(t, body["access_token"].(string))
	want := map[string]any{
		"aud":   "https://graph.microsoft.com",
		"iss":   "https://sts.windows.net/" + env.tid + "/",
		"appid": agent.AppID,
		"azp":   agent.AppID,
		"oid":   agent.ServicePrincipalID,
		"sub":   agent.ServicePrincipalID,
		"tid":   env.tid,
		"idtyp": "app",
		"ver":   "1.0",
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("access token %s = %v, want %v", k, claims[k], v)
		}
	}
	roles, _ := claims["roles"].([]any)
	if len(roles) != 1 || roles[0] != RoleApplicationReadWriteOwned {
		t.Errorf("access token roles = %v, want [%s]", claims["roles"], RoleApplicationReadWriteOwned)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3599 {
		t.Errorf("access token lifetime = %v s, want 3599", exp-iat)
	}

	// x5t#S256 in base64url without padding is accepted too, and the v1 audience form.
	as = env.msalGoAssertion(env.certs["agent"], agent.AppID, env.base+"/contoso.onmicrosoft.com/oauth2/token")
	as.header["x5t#S256"] = strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(as.header["x5t#S256"].(string)), "=")
	if status, body := env.postToken(env.tokenURL(), certForm(agent.AppID, as.sign(t), graphAppID+"/.default")); status != http.StatusOK {
		t.Errorf("token with base64url x5t#S256 and v1 audience = %d %v, want 200", status, body)
	} else if aud := decodeClaims(t, body["access_token"].(string))["aud"]; aud != graphAppID {
		t.Errorf("aud for scope %s/.default = %v", graphAppID, aud)
	}
}

// TestTokenAzureCLI signs in as azure-cli does (docs/graph.md, "azure-cli against the emulator"): ADFS authority, RS256 with x5t,
// float iat/exp and no nbf, the custom cloud's double-slash scope, then the ARM scope.
func TestTokenAzureCLI(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	adfsToken := env.base + "/adfs/oauth2/token"

	as := env.msalPythonAssertion(env.certs["agent"], agent.AppID, adfsToken)
	status, body := env.postToken(adfsToken, certForm(agent.AppID, as.sign(t), env.base+"//.default offline_access openid profile"))
	if status != http.StatusOK {
		t.Fatalf("az token = %d %v, want 200", status, body)
	}
	claims := decodeClaims(t, body["access_token"].(string))
	if claims["aud"] != env.base+"/" || claims["tid"] != env.tid {
		t.Errorf("az token aud, tid = %v, %v; want %s/, %s", claims["aud"], claims["tid"], env.base, env.tid)
	}
	if roles, _ := claims["roles"].([]any); len(roles) != 1 {
		t.Errorf("az token roles = %v, want the Graph roles", claims["roles"])
	}
	graphTok := body["access_token"].(string)
	if resp, m := env.call(http.MethodGet, "/v1.0/applications?$filter=appId eq '"+env.apps["target"].AppID+"'", graphTok, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("Graph with the az token = %d %v", resp.StatusCode, m)
	}

	as = env.msalPythonAssertion(env.certs["agent"], agent.AppID, adfsToken)
	status, body = env.postToken(adfsToken, certForm(agent.AppID, as.sign(t), "https://management.core.windows.net//.default"))
	if status != http.StatusOK {
		t.Fatalf("az ARM token = %d %v", status, body)
	}
	armTok := body["access_token"].(string)
	if claims := decodeClaims(t, armTok); claims["aud"] != "https://management.core.windows.net/" || claims["roles"] != nil {
		t.Errorf("ARM token aud, roles = %v, %v", claims["aud"], claims["roles"])
	}
	resp, m := env.call(http.MethodGet, "/subscriptions?api-version=2019-11-01", armTok, nil)
	if v, ok := m["value"].([]any); resp.StatusCode != http.StatusOK || !ok || len(v) != 0 {
		t.Errorf("GET /subscriptions = %d %v, want 200 {\"value\":[]}", resp.StatusCode, m)
	}
	if resp, _ := env.call(http.MethodGet, "/subscriptions?api-version=2019-11-01", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /subscriptions without token = %d, want 401", resp.StatusCode)
	}
	if resp, m := env.call(http.MethodGet, "/v1.0/applications", armTok, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Graph with an ARM token = %d %v, want 401", resp.StatusCode, m)
	}
}

func TestTokenV1EndpointResource(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	endpoint := env.base + "/" + env.tid + "/oauth2/token"
	as := env.msalGoAssertion(env.certs["agent"], agent.AppID, endpoint)
	form := certForm(agent.AppID, as.sign(t), "")
	form.Del("scope")
	form.Set("resource", "https://graph.microsoft.com")
	status, body := env.postToken(endpoint, form)
	if status != http.StatusOK || body["resource"] != "https://graph.microsoft.com" || body["expires_on"] == nil {
		t.Errorf("v1 token = %d %v", status, body)
	}
}

func TestTokenSecret(t *testing.T) {
	env := newEnv(t)
	secretApp := env.apps["secret"]
	form := func(id, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}
	}
	if status, body := env.postToken(env.tokenURL(), form(secretApp.AppID, testSecret)); status != http.StatusOK {
		t.Errorf("good secret = %d %v, want 200", status, body)
	} else if acr := decodeClaims(t, body["access_token"].(string))["appidacr"]; acr != "1" {
		t.Errorf("appidacr = %v, want 1", acr)
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   int
	}{
		{"wrong secret", form(secretApp.AppID, "nope"), http.StatusUnauthorized, 7000215},
		{"secret to an app without passwords", form(env.apps["agent"].AppID, testSecret), http.StatusUnauthorized, 7000215},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.postToken(env.tokenURL(), tc.form)
			if _, code := entraCode(body); status != tc.status || code != tc.code {
				t.Errorf("token = %d AADSTS%d, want %d AADSTS%d: %v", status, code, tc.status, tc.code, body)
			}
		})
	}
	env.clk.Advance(3 * 365 * 24 * time.Hour)
	status, body := env.postToken(env.tokenURL(), form(secretApp.AppID, testSecret))
	if _, code := entraCode(body); status != http.StatusUnauthorized || code != 7000222 {
		t.Errorf("expired secret = %d AADSTS%d, want 401 AADSTS7000222", status, code)
	}
}

// TestTokenRefusals checks each refusal of the token endpoint against Entra's status, error
// and AADSTS code.
func TestTokenRefusals(t *testing.T) {
	env := newEnv(t)
	agent := env.apps["agent"]
	graph := "https://graph.microsoft.com/.default"
	now := env.clk.Now()
	otherKey := certtest.New(now, certtest.CommonName("other key"), certtest.FreshKey())
	unregistered := certtest.New(now, certtest.CommonName("not registered"))

	good := func() *assertion { return env.msalGoAssertion(env.certs["agent"], agent.AppID, env.tokenURL()) }
	with := func(mod func(a *assertion)) url.Values {
		a := good()
		mod(a)
		return certForm(agent.AppID, a.sign(t), graph)
	}
	formWithout := func(field string) url.Values {
		f := certForm(agent.AppID, good().sign(t), graph)
		f.Del(field)
		return f
	}

	tests := []struct {
		name     string
		endpoint string
		form     url.Values
		status   int
		errName  string
		code     int
		contains string
	}{
		{"missing grant_type", "", formWithout("grant_type"), 400, "invalid_request", 900144, "'grant_type'"},
		{"unsupported grant", "", func() url.Values { f := formWithout("grant_type"); f.Set("grant_type", "password"); return f }(), 400, "unsupported_grant_type", 70003, "'password'"},
		{"missing client_id", "", formWithout("client_id"), 400, "invalid_request", 900144, "'client_id'"},
		{"missing scope", "", formWithout("scope"), 400, "invalid_request", 900144, "'scope'"},
		{"scope without .default", "", func() url.Values {
			f := certForm(agent.AppID, good().sign(t), "https://graph.microsoft.com/Application.ReadWrite.All")
			return f
		}(), 400, "invalid_scope", 1002012, "/.default"},
		{"no credential", "", func() url.Values { f := formWithout("client_assertion"); return f }(), 401, "invalid_client", 7000218, "'client_assertion' or 'client_secret'"},
		{"unknown client", "", func() url.Values { f := formWithout("client_id"); f.Set("client_id", newGUID()); return f }(), 400, "unauthorized_client", 700016, "was not found in the directory"},
		{"unknown tenant", env.base + "/" + newGUID() + "/oauth2/v2.0/token", certForm(agent.AppID, good().sign(t), graph), 400, "invalid_request", 90002, "not found"},
		{"missing assertion type", "", formWithout("client_assertion_type"), 400, "invalid_request", 900144, "'client_assertion_type'"},
		{"malformed JWT", "", func() url.Values {
			f := formWithout("client_assertion")
			f.Set("client_assertion", "not.a-jwt")
			return f
		}(), 400, "invalid_request", 50027, "invalid or malformed"},
		{"HS256", "", with(func(a *assertion) { a.header["alg"] = "HS256" }), 400, "invalid_request", 5002730, "Unsupported key"},
		{"no thumbprint", "", with(func(a *assertion) { delete(a.header, "x5t#S256") }), 400, "invalid_request", 50027, "No certificate thumbprint"},
		{"wrong audience", "", with(func(a *assertion) {
			a.claims["aud"] = "https://login.microsoftonline.com/" + env.tid + "/oauth2/v2.0/token"
		}), 401, "invalid_client", 50012, "audience"},
		{"another tenant's audience", "", with(func(a *assertion) { a.claims["aud"] = env.base + "/" + newGUID() + "/oauth2/v2.0/token" }), 401, "invalid_client", 50012, "audience"},
		{"two audiences", "", with(func(a *assertion) { a.claims["aud"] = []string{env.tokenURL(), env.tokenURL()} }), 400, "invalid_request", 5002741, "2 audience values"},
		{"sub differs from iss", "", with(func(a *assertion) { a.claims["sub"] = newGUID() }), 401, "invalid_client", 50048, "Subject must match the issuer"},
		{"iss differs from client_id", "", with(func(a *assertion) { id := newGUID(); a.claims["iss"], a.claims["sub"] = id, id }), 401, "invalid_client", 700021, "doesn't match 'client_id'"},
		{"expired assertion", "", with(func(a *assertion) {
			a.claims["nbf"], a.claims["exp"] = now.Add(-20*time.Minute).Unix(), now.Add(-6*time.Minute).Unix()
		}), 401, "invalid_client", 700024, "not within its valid time range"},
		{"expired assertion without nbf", "", with(func(a *assertion) {
			delete(a.claims, "nbf")
			a.claims["exp"] = now.Add(-6 * time.Minute).Unix()
		}), 401, "invalid_client", 700024, "assertion valid from 1970-01-01T00:00:00.0000000Z"},
		{"assertion not yet valid", "", with(func(a *assertion) {
			a.claims["nbf"], a.claims["exp"] = now.Add(10*time.Minute).Unix(), now.Add(20*time.Minute).Unix()
		}), 401, "invalid_client", 700024, "not within its valid time range"},
		{"no exp", "", with(func(a *assertion) { delete(a.claims, "exp") }), 400, "invalid_request", 50027, "malformed"},
		{"certificate not registered", "", with(func(a *assertion) {
			a.header["x5t#S256"] = x5tS256Std(unregistered.DER)
			a.key = unregistered.Key
		}), 401, "invalid_client", 700027, "[Reason - The key was not found., Thumbprint of key used by client: '"},
		{"another app's certificate", "", with(func(a *assertion) {
			a.header["x5t#S256"] = x5tS256Std(env.certs["admin"].DER)
		}), 401, "invalid_client", 700027, "The key was not found."},
		{"bad signature", "", with(func(a *assertion) { a.key = otherKey.Key }), 401, "invalid_client", 700027, "The provided signature value did not match the expected signature value."},
		{"unknown resource", "", certForm(agent.AppID, good().sign(t), "https://vault.azure.net/.default"), 400, "invalid_resource", 500011, "The resource principal named https://vault.azure.net was not found"},
		{"GET", "GET", nil, 400, "invalid_request", 900561, "only accepts POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body map[string]any
			switch tc.endpoint {
			case "GET":
				resp, m := env.call(http.MethodGet, "/"+env.tid+"/oauth2/v2.0/token", "", nil)
				status, body = resp.StatusCode, m
			case "":
				status, body = env.postToken(env.tokenURL(), tc.form, "client-request-id", "corr-"+tc.name)
			default:
				status, body = env.postToken(tc.endpoint, tc.form)
			}
			errName, code := entraCode(body)
			desc, _ := body["error_description"].(string)
			if status != tc.status || errName != tc.errName || code != tc.code {
				t.Fatalf("token = %d %s AADSTS%d, want %d %s AADSTS%d: %s", status, errName, code, tc.status, tc.errName, tc.code, desc)
			}
			if !strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, tc.contains) {
				t.Errorf("error_description = %q, want it to contain %q", desc, tc.contains)
			}
			for _, f := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
				if s, _ := body[f].(string); s == "" {
					t.Errorf("answer has no %s: %v", f, body)
				}
			}
			if !strings.Contains(desc, " Trace ID: ") || !strings.Contains(desc, " Timestamp: ") {
				t.Errorf("error_description %q lacks trace id or timestamp", desc)
			}
			if tc.endpoint == "" && body["correlation_id"] != "corr-"+tc.name {
				t.Errorf("correlation_id = %v, want the client-request-id", body["correlation_id"])
			}
		})
	}
}

// TestTokenCredentialWindows: a registered certificate whose credential window has ended is
// refused as expired; an ECDSA certificate cannot sign in.
func TestTokenCredentialWindows(t *testing.T) {
	env := newEnv(t)
	for _, tc := range []struct {
		name     string
		status   int
		code     int
		contains string
	}{
		{"expired", 401, 700027, "[Reason - The key used is expired., Thumbprint of key used by client: '"},
		{"ecdsa", 400, 5002730, "Unsupported key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := env.apps[tc.name]
			as := env.msalGoAssertion(env.certs[tc.name], a.AppID, env.tokenURL())
			if tc.name == "ecdsa" {
				as.key = env.certs["agent"].Key // any RSA key: the certificate's key type decides
			}
			status, body := env.postToken(env.tokenURL(), certForm(a.AppID, as.sign(t), "https://graph.microsoft.com/.default"))
			_, code := entraCode(body)
			desc, _ := body["error_description"].(string)
			if status != tc.status || code != tc.code || !strings.Contains(desc, tc.contains) {
				t.Errorf("token = %d AADSTS%d %q, want %d AADSTS%d containing %q", status, code, desc, tc.status, tc.code, tc.contains)
			}
			if tc.name == "expired" && !strings.Contains(desc, "Found key 'Start=") {
				t.Errorf("expired key message %q lacks the found key's dates", desc)
			}
		})
	}

	// A client of another tenant is unknown here.
	other, err := env.e.AddTenant(Seed{Applications: []SeedApplication{{DisplayName: "elsewhere", KeyCredentials: []SeedKeyCredential{{Certificate: env.certs["agent"].DER}}}}})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := other.Applications[0]
	as := env.msalGoAssertion(env.certs["agent"], elsewhere.AppID, env.tokenURL())
	status, body := env.postToken(env.tokenURL(), certForm(elsewhere.AppID, as.sign(t), "https://graph.microsoft.com/.default"))
	if errName, code := entraCode(body); status != 400 || errName != "unauthorized_client" || code != 700016 {
		t.Errorf("client of another tenant = %d %s AADSTS%d, want 400 unauthorized_client AADSTS700016", status, errName, code)
	}
	// ... and signs in to its own.
	endpoint := env.base + "/" + other.ID + "/oauth2/v2.0/token"
	as = env.msalGoAssertion(env.certs["agent"], elsewhere.AppID, endpoint)
	if status, body := env.postToken(endpoint, certForm(elsewhere.AppID, as.sign(t), "https://graph.microsoft.com/.default")); status != 200 {
		t.Errorf("client in its own tenant = %d %v", status, body)
	}
}

func TestTokenRecordsSignIn(t *testing.T) {
	env := newEnv(t)
	env.token("agent")
	env.token("agent")
	for _, c := range env.e.State().Tenants[0].Clients {
		if c.DisplayName != "agent" {
			continue
		}
		if c.TokensIssued != 2 || c.LastSignIn == nil || c.LastSignIn.Thumbprint != env.e.State().Tenants[0].Applications[1].KeyCredentials[0].Thumbprint || c.LastSignIn.Method != "certificate" {
			t.Errorf("client view = %+v", c)
		}
		return
	}
	t.Fatal("no client view for agent")
}
