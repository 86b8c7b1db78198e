package emulator

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// onboardEnv is newEnv plus users: "admin" (Global Administrator), "appadmin" (Application
// Administrator) and "plain" (no role), and a provider app "Veeam Backup for Microsoft 365"
// owned by nobody.
func onboardEnv(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	env := newEnv(t, opts...)
	if _, err := env.e.AddApplication("", SeedApplication{DisplayName: "Veeam Backup for Microsoft 365"}); err != nil {
		t.Fatal(err)
	}
	for _, su := range []SeedUser{
		{UserPrincipalName: "admin", DirectoryRoles: []string{DirectoryRoleGlobalAdmin}},
		{UserPrincipalName: "appadmin", DirectoryRoles: []string{DirectoryRoleApplicationAdmin}},
		{UserPrincipalName: "plain"},
	} {
		if _, err := env.e.AddUser("", su); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range env.e.State().Tenants[0].Applications {
		env.apps[a.DisplayName] = a
	}
	return env
}

const setupScopes = "https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All openid profile offline_access"

// deviceCode starts a device code flow for the Graph command line tools' client.
func (env *testEnv) deviceCode(scope string) (int, map[string]any) {
	env.t.Helper()
	return env.postToken(env.base+"/"+env.tid+"/oauth2/v2.0/devicecode", url.Values{
		"client_id": {GraphCommandLineToolsClientID}, "scope": {scope},
	})
}

func (env *testEnv) pollDeviceCode(deviceCode string) (int, map[string]any) {
	env.t.Helper()
	return env.postToken(env.tokenURL(), url.Values{
		"grant_type": {grantDeviceCode}, "client_id": {GraphCommandLineToolsClientID},
		"device_code": {deviceCode}, "client_info": {"1"},
	})
}

// userToken signs user in with the device code flow for scope and returns the access token.
func (env *testEnv) userToken(user, scope string) string {
	env.t.Helper()
	status, dc := env.deviceCode(scope)
	if status != http.StatusOK {
		env.t.Fatalf("devicecode: %d %v", status, dc)
	}
	if err := env.e.ApproveDeviceCode(dc["user_code"].(string), user, nil); err != nil {
		env.t.Fatal(err)
	}
	status, tok := env.pollDeviceCode(dc["device_code"].(string))
	if status != http.StatusOK {
		env.t.Fatalf("redeeming the device code: %d %v", status, tok)
	}
	return tok["access_token"].(string)
}

func TestDeviceCodeFlow(t *testing.T) {
	env := onboardEnv(t)
	status, dc := env.deviceCode(setupScopes)
	if status != http.StatusOK {
		t.Fatalf("devicecode = %d %v", status, dc)
	}
	code, _ := dc["user_code"].(string)
	if len(code) != userCodeLength || dc["interval"].(float64) != deviceCodeInterval || dc["expires_in"].(float64) != 900 ||
		!strings.Contains(dc["message"].(string), code) || !strings.HasSuffix(dc["verification_uri"].(string), "/_emulator/devicelogin") {
		t.Errorf("devicecode answer = %v", dc)
	}
	// Polling before approval: authorization_pending, AADSTS70016, status 400.
	status, m := env.pollDeviceCode(dc["device_code"].(string))
	if e, n := entraCode(m); status != 400 || e != "authorization_pending" || n != 70016 {
		t.Errorf("poll before approval = %d %s %d, want 400 authorization_pending 70016", status, e, n)
	}
	// The control route lists the code and approves it.
	resp, list := env.call(http.MethodGet, "/_emulator/devicecode", "", nil)
	if items, _ := list["items"].([]any); resp.StatusCode != 200 || len(items) != 1 || items[0].(map[string]any)["state"] != "pending" {
		t.Errorf("GET /_emulator/devicecode = %d %v", resp.StatusCode, list)
	}
	resp, m = env.call(http.MethodPost, "/_emulator/devicecode/approve", "", map[string]any{"user_code": code, "user": "admin"})
	if resp.StatusCode != 200 || m["state"] != "approved" {
		t.Fatalf("approve = %d %v", resp.StatusCode, m)
	}
	status, tok := env.pollDeviceCode(dc["device_code"].(string))
	if status != 200 {
		t.Fatalf("poll after approval = %d %v", status, tok)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token", "client_info"} {
		if _, ok := tok[k].(string); !ok {
			t.Errorf("token answer lacks %s: %v", k, tok)
		}
	}
	if sc := tok["scope"].(string); !strings.Contains(sc, "https://graph.microsoft.com/Application.ReadWrite.All") || !strings.Contains(sc, "openid") {
		t.Errorf("scope = %q", sc)
	}
	claims := decodeClaims(t, tok["access_token"].(string))
	if claims["scp"] != "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All" || claims["idtyp"] != "user" ||
		claims["appid"] != GraphCommandLineToolsClientID || !strings.HasPrefix(claims["upn"].(string), "admin@") {
		t.Errorf("access token claims = %v", claims)
	}
	ci, _ := base64.RawURLEncoding.DecodeString(tok["client_info"].(string))
	if !strings.Contains(string(ci), env.tid) {
		t.Errorf("client_info = %s", ci)
	}
	// A device code is redeemed once.
	if status, m := env.pollDeviceCode(dc["device_code"].(string)); status != 400 || m["error"] != "bad_verification_code" {
		t.Errorf("second redemption = %d %v, want bad_verification_code", status, m)
	}
	// The refresh token gets another token for what was consented, not for more.
	rt := tok["refresh_token"].(string)
	status, m = env.postToken(env.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {GraphCommandLineToolsClientID},
		"refresh_token": {rt}, "scope": {"https://graph.microsoft.com/Application.ReadWrite.All offline_access"}})
	if status != 200 || decodeClaims(t, m["access_token"].(string))["scp"] != "Application.ReadWrite.All" {
		t.Errorf("refresh = %d %v", status, m)
	}
	status, m = env.postToken(env.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {GraphCommandLineToolsClientID},
		"refresh_token": {rt}, "scope": {"https://graph.microsoft.com/Directory.ReadWrite.All"}})
	if e, n := entraCode(m); status != 400 || n != 65001 {
		t.Errorf("refresh for an unconsented scope = %d %s %d, want 65001", status, e, n)
	}
	// .default gets what was consented.
	status, m = env.postToken(env.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {GraphCommandLineToolsClientID},
		"refresh_token": {rt}, "scope": {"https://graph.microsoft.com/.default"}})
	if status != 200 || decodeClaims(t, m["access_token"].(string))["scp"] != "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All" {
		t.Errorf("refresh for .default = %d %v", status, m)
	}
}

func TestDeviceCodeRefusals(t *testing.T) {
	env := onboardEnv(t, WithDeviceCodeLifetime(time.Minute))
	dcURL := env.base + "/" + env.tid + "/oauth2/v2.0/devicecode"
	for _, tc := range []struct {
		name string
		form url.Values
		code int
	}{
		{"no client", url.Values{"scope": {setupScopes}}, 900144},
		{"no scope", url.Values{"client_id": {GraphCommandLineToolsClientID}}, 900144},
		{"unknown client", url.Values{"client_id": {newGUID()}, "scope": {setupScopes}}, 700016},
		{"unknown scope", url.Values{"client_id": {GraphCommandLineToolsClientID}, "scope": {"https://graph.microsoft.com/Nope.All"}}, 70011},
		{"two resources", url.Values{"client_id": {GraphCommandLineToolsClientID}, "scope": {"https://graph.microsoft.com/User.Read https://management.azure.com/.default"}}, 28000},
	} {
		status, m := env.postToken(dcURL, tc.form)
		if _, n := entraCode(m); status != 400 || n != tc.code {
			t.Errorf("%s: %d %v, want 400 AADSTS%d", tc.name, status, m, tc.code)
		}
	}
	if status, m := env.pollDeviceCode("nonsense"); status != 400 || m["error"] != "bad_verification_code" {
		t.Errorf("unknown device code = %d %v", status, m)
	}
	// Expired: expired_token, AADSTS70020.
	_, dc := env.deviceCode(setupScopes)
	env.clk.Advance(2 * time.Minute)
	status, m := env.pollDeviceCode(dc["device_code"].(string))
	if e, n := entraCode(m); status != 400 || e != "expired_token" || n != 70020 {
		t.Errorf("expired = %d %s %d", status, e, n)
	}
	if err := env.e.ApproveDeviceCode(dc["user_code"].(string), "admin", nil); err == nil {
		t.Error("approving an expired code succeeded")
	}
	// Declined.
	_, dc = env.deviceCode(setupScopes)
	if err := env.e.DeclineDeviceCode(dc["user_code"].(string), "admin"); err != nil {
		t.Fatal(err)
	}
	if status, m := env.pollDeviceCode(dc["device_code"].(string)); status != 400 || m["error"] != "authorization_declined" {
		t.Errorf("declined = %d %v", status, m)
	}
	// An app registration that is not a public client cannot redeem a device code without a
	// credential.
	status, dc = env.postToken(dcURL, url.Values{"client_id": {env.apps["norole"].AppID}, "scope": {setupScopes}})
	if status != 200 {
		t.Fatalf("devicecode for a tenant app = %d %v", status, dc)
	}
	if err := env.e.ApproveDeviceCode(dc["user_code"].(string), "", nil); err != nil {
		t.Fatal(err)
	}
	status, m = env.postToken(env.tokenURL(), url.Values{"grant_type": {grantDeviceCode}, "client_id": {env.apps["norole"].AppID}, "device_code": {dc["device_code"].(string)}})
	if _, n := entraCode(m); status != 401 || n != 7000218 {
		t.Errorf("redeeming as a confidential app = %d %v, want 7000218", status, m)
	}
}

func TestDeviceCodeAutoApprove(t *testing.T) {
	env := onboardEnv(t, WithDeviceCodeAutoApprove("appadmin"))
	_, dc := env.deviceCode(setupScopes)
	status, tok := env.pollDeviceCode(dc["device_code"].(string))
	if status != 200 || !strings.HasPrefix(decodeClaims(t, tok["access_token"].(string))["upn"].(string), "appadmin@") {
		t.Errorf("auto-approved poll = %d %v", status, tok)
	}
}

// TestOnboardingCalls walks through what `certagent setup` does as an administrator, and
// checks that the agent can do nothing with the provider's app until it holds
// Application.ReadWrite.OwnedBy and is an owner.
func TestOnboardingCalls(t *testing.T) {
	env := onboardEnv(t)
	tok := env.userToken("admin", setupScopes)
	provider := env.apps["Veeam Backup for Microsoft 365"]

	// $search needs ConsistencyLevel: eventual.
	resp, m := env.call(http.MethodGet, `/v1.0/applications?$search="displayName:veeam"`, tok, nil)
	if code, msg := graphErr(m); resp.StatusCode != 400 || code != "Request_UnsupportedQuery" || !strings.Contains(msg, "ConsistencyLevel: eventual") {
		t.Errorf("$search without the header = %d %s %s", resp.StatusCode, code, msg)
	}
	resp, m = env.call(http.MethodGet, `/v1.0/applications?$search="displayName:veeam backup"&$count=true&$select=id,appId,displayName`, tok, nil, "ConsistencyLevel", "eventual")
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 || m["@odata.count"].(float64) != 1 {
		t.Errorf("$search = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodGet, `/v1.0/applications?$search="displayName:ackup"`, tok, nil, "ConsistencyLevel", "eventual")
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 0 {
		t.Errorf("$search matches the middle of a word: %v", m)
	}

	// Create the agent's app: the admin owns it; no service principal yet, so no sign-in.
	resp, m = env.call(http.MethodPost, "/v1.0/applications", tok, map[string]any{"displayName": "certagent-test", "signInAudience": "AzureADMyOrg"})
	if resp.StatusCode != 201 {
		t.Fatalf("create application = %d %v", resp.StatusCode, m)
	}
	appID, objectID := m["appId"].(string), m["id"].(string)
	agentCert := env.certs["norole"]
	if _, err := env.e.AddKeyCredential(appID, SeedKeyCredential{Certificate: agentCert.DER}); err != nil {
		t.Fatal(err)
	}
	as := env.msalGoAssertion(agentCert, appID, env.tokenURL())
	status, tm := env.postToken(env.tokenURL(), certForm(appID, as.sign(t), "https://graph.microsoft.com/.default"))
	if _, n := entraCode(tm); status != 401 || n != 7000229 {
		t.Errorf("sign-in without a service principal = %d %v, want 7000229", status, tm)
	}
	resp, m = env.call(http.MethodGet, "/v1.0/applications/"+objectID+"/owners", tok, nil)
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 || vals[0].(map[string]any)["@odata.type"] != "#microsoft.graph.user" {
		t.Errorf("owners of the new app = %d %v", resp.StatusCode, m)
	}

	// Its service principal; a second one is refused.
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals", tok, map[string]any{"appId": appID})
	if resp.StatusCode != 201 || m["appId"] != appID {
		t.Fatalf("create service principal = %d %v", resp.StatusCode, m)
	}
	spID := m["id"].(string)
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals", tok, map[string]any{"appId": appID})
	if code, _ := graphErr(m); resp.StatusCode != 409 || code != "Request_MultipleObjectsWithSameKeyValue" {
		t.Errorf("second service principal = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals", tok, map[string]any{"appId": newGUID()})
	if resp.StatusCode != 400 {
		t.Errorf("service principal of no application = %d %v", resp.StatusCode, m)
	}

	// The agent signs in now, but may not touch the provider's app.
	agentTok := func() string {
		as := env.msalGoAssertion(agentCert, appID, env.tokenURL())
		status, tm := env.postToken(env.tokenURL(), certForm(appID, as.sign(t), "https://graph.microsoft.com/.default"))
		if status != 200 {
			t.Fatalf("agent sign-in = %d %v", status, tm)
		}
		return tm["access_token"].(string)
	}
	patch := map[string]any{"keyCredentials": []any{}}
	if resp, _ := env.call(http.MethodPatch, "/v1.0/applications/"+provider.ObjectID, agentTok(), patch); resp.StatusCode != 403 {
		t.Errorf("agent PATCH with no role = %d, want 403", resp.StatusCode)
	}

	// Graph's service principal and its app role.
	resp, m = env.call(http.MethodGet, "/v1.0/servicePrincipals?$filter=appId eq '"+graphAppID+"'&$select=id,appId,appRoles", tok, nil)
	vals, _ := m["value"].([]any)
	if resp.StatusCode != 200 || len(vals) != 1 {
		t.Fatalf("Graph's service principal = %d %v", resp.StatusCode, m)
	}
	graph := vals[0].(map[string]any)
	var ownedByID string
	for _, r := range graph["appRoles"].([]any) {
		if rm := r.(map[string]any); rm["value"] == RoleApplicationReadWriteOwned {
			ownedByID = rm["id"].(string)
		}
	}
	if ownedByID != "18a4783c-866b-4cc7-a460-3d5e5662c884" {
		t.Errorf("Application.ReadWrite.OwnedBy app role id = %q", ownedByID)
	}
	grant := map[string]any{"principalId": spID, "resourceId": graph["id"], "appRoleId": ownedByID}
	assignURL := "/v1.0/servicePrincipals/" + graph["id"].(string) + "/appRoleAssignedTo"

	// Scopes and roles are checked per call: a token without AppRoleAssignment.ReadWrite.All,
	// or a user without a privileged role, is refused.
	narrow := env.userToken("admin", "https://graph.microsoft.com/Application.ReadWrite.All openid")
	if resp, m := env.call(http.MethodPost, assignURL, narrow, grant); resp.StatusCode != 403 {
		t.Errorf("assignment without AppRoleAssignment.ReadWrite.All = %d %v", resp.StatusCode, m)
	}
	appAdmin := env.userToken("appadmin", setupScopes)
	if resp, m := env.call(http.MethodPost, assignURL, appAdmin, grant); resp.StatusCode != 403 {
		t.Errorf("Graph app role granted by an Application Administrator = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodPost, assignURL, tok, grant)
	if resp.StatusCode != 201 || m["principalId"] != spID || m["appRoleId"] != ownedByID {
		t.Fatalf("assignment = %d %v", resp.StatusCode, m)
	}
	if id, _ := base64.RawURLEncoding.DecodeString(m["id"].(string)); len(id) != 32 {
		t.Errorf("assignment id %q is not 32 bytes of base64url", m["id"])
	}
	if resp, m := env.call(http.MethodPost, assignURL, tok, grant); resp.StatusCode != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "already exists") {
		t.Errorf("second assignment = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodGet, "/v1.0/servicePrincipals/"+spID+"/appRoleAssignments", tok, nil)
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 {
		t.Errorf("appRoleAssignments = %d %v", resp.StatusCode, m)
	}

	// With the role but not an owner: still 403 on the provider's app.
	if claims := decodeClaims(t, agentTok()); claims["roles"] == nil {
		t.Errorf("the agent's new token has no roles: %v", claims)
	}
	if resp, _ := env.call(http.MethodPatch, "/v1.0/applications/"+provider.ObjectID, agentTok(), patch); resp.StatusCode != 403 {
		t.Errorf("agent PATCH without ownership = %d, want 403", resp.StatusCode)
	}

	// Owners: a plain user may not add them; the admin may; twice is refused.
	ref := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + spID}
	plain := env.userToken("plain", setupScopes)
	if resp, _ := env.call(http.MethodPost, "/v1.0/applications/"+provider.ObjectID+"/owners/$ref", plain, ref); resp.StatusCode != 403 {
		t.Errorf("owner added by a plain user = %d", resp.StatusCode)
	}
	if resp, m := env.call(http.MethodPost, "/v1.0/applications/"+provider.ObjectID+"/owners/$ref", tok, ref); resp.StatusCode != 204 {
		t.Fatalf("add owner = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodPost, "/v1.0/applications/"+provider.ObjectID+"/owners/$ref", tok, ref)
	if _, msg := graphErr(m); resp.StatusCode != 400 || !strings.Contains(msg, "already exist for the following modified properties: 'owners'") {
		t.Errorf("second add = %d %s", resp.StatusCode, msg)
	}
	for _, bad := range []map[string]any{
		{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + newGUID()},
		{"@odata.id": "https://example.com/v1.0/directoryObjects/" + spID},
		{"@odata.id": spID},
	} {
		if resp, _ := env.call(http.MethodPost, "/v1.0/applications/"+provider.ObjectID+"/owners/$ref", tok, bad); resp.StatusCode != 404 && resp.StatusCode != 400 {
			t.Errorf("add owner %v = %d, want 400 or 404", bad, resp.StatusCode)
		}
	}
	resp, m = env.call(http.MethodGet, "/v1.0/applications/"+provider.ObjectID+"/owners", tok, nil)
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 || vals[0].(map[string]any)["appId"] != appID {
		t.Errorf("owners = %d %v", resp.StatusCode, m)
	}

	// Now the agent may write the provider's app.
	if resp, m := env.call(http.MethodPatch, "/v1.0/applications/"+provider.ObjectID, agentTok(), patch); resp.StatusCode != 204 {
		t.Errorf("agent PATCH as owner with the role = %d %v", resp.StatusCode, m)
	}
	// The admin's token: a user who is neither owner nor admin may not PATCH an app.
	if resp, _ := env.call(http.MethodPatch, "/v1.0/applications/"+env.apps["target"].ObjectID, plain, patch); resp.StatusCode != 403 {
		t.Errorf("PATCH by a plain user = %d, want 403", resp.StatusCode)
	}
	// The state shows the user owner and the users.
	st := env.e.State().Tenants[0]
	if len(st.Users) != 3 || st.GraphServicePrincipalID != graph["id"] {
		t.Errorf("state users %v, Graph service principal %s", st.Users, st.GraphServicePrincipalID)
	}
}

func TestSeedUsersFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(p, []byte(`domain: contoso.onmicrosoft.com
users:
  - userPrincipalName: admin
    directoryRoles: [Global Administrator]
applications:
  - displayName: Veeam Backup for Microsoft 365
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSeed(p)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(t.TempDir(), WithSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	us := e.State().Tenants[0].Users
	if len(us) != 1 || us[0].UserPrincipalName != "admin@contoso.onmicrosoft.com" || us[0].DirectoryRoles[0] != DirectoryRoleGlobalAdmin {
		t.Errorf("users = %+v", us)
	}
	if err := os.WriteFile(p, []byte("users:\n  - userPrincipalName: x\n    directoryRoles: [Overlord]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSeed(p); err == nil || !strings.Contains(err.Error(), "Overlord") {
		t.Errorf("unknown role: %v", err)
	}
}

// TestDeviceLoginPage: the verification_uri the emulator hands out is a form a person can use
// to approve a code by hand.
func TestDeviceLoginPage(t *testing.T) {
	env := onboardEnv(t)
	_, dc := env.deviceCode(setupScopes)
	resp, err := env.hc.Get(dc["verification_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET devicelogin = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = env.hc.PostForm(dc["verification_uri"].(string), url.Values{"code": {strings.ToLower(dc["user_code"].(string))}, "user": {"appadmin"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, tok := env.pollDeviceCode(dc["device_code"].(string))
	if status != 200 || !strings.HasPrefix(decodeClaims(t, tok["access_token"].(string))["upn"].(string), "appadmin@") {
		t.Errorf("after approval on the page: %d %v", status, tok)
	}
}
