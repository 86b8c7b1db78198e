package emulator

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

// mtEnv is newEnv's tenant (contoso, the home tenant) with a multitenant application, and two
// more tenants:
//
//	provider        in contoso: multitenant, Application.ReadWrite.OwnedBy there, certificate
//	                "provider"
//	fabrikam        consented to provider with Application.ReadWrite.OwnedBy (service principal
//	                spB); apps "fabrikam backup" (owned by provider's service principal) and
//	                "fabrikam other" (owned by nobody); a Global Administrator "admin"
//	northwind       never consented to provider
type mtEnv struct {
	*testEnv
	provider          ApplicationView
	fabrikam          TenantView
	northwind         TenantView
	spB               string
	backupB, otherB   ApplicationView
	providerCert      certtest.Cert
	fabrikamAdminUser string
}

func newMTEnv(t *testing.T, opts ...Option) *mtEnv {
	t.Helper()
	env := &mtEnv{testEnv: newEnv(t, opts...)}
	e := env.e
	env.providerCert = certtest.New(env.clk.Now(), certtest.CommonName("provider"))
	var err error
	env.provider, err = e.AddApplication("", SeedApplication{
		DisplayName: "provider", SignInAudience: SignInAudienceMultipleOrgs, GraphRoles: []string{RoleApplicationReadWriteOwned},
		KeyCredentials: []SeedKeyCredential{{Certificate: env.providerCert.DER}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env.certs["provider"] = env.providerCert
	env.apps["provider"] = env.provider
	if env.fabrikam, err = e.AddTenant(Seed{Domain: "fabrikam.onmicrosoft.com",
		Users: []SeedUser{{UserPrincipalName: "admin", DirectoryRoles: []string{DirectoryRoleGlobalAdmin}}}}); err != nil {
		t.Fatal(err)
	}
	env.fabrikamAdminUser = env.fabrikam.Users[0].UserPrincipalName
	if env.northwind, err = e.AddTenant(Seed{Domain: "northwind.onmicrosoft.com"}); err != nil {
		t.Fatal(err)
	}
	if env.spB, err = e.ConsentApplication(env.fabrikam.ID, env.provider.AppID, RoleApplicationReadWriteOwned); err != nil {
		t.Fatal(err)
	}
	backup := certtest.New(env.clk.Now(), certtest.CommonName("fabrikam backup"))
	if env.backupB, err = e.AddApplication(env.fabrikam.ID, SeedApplication{DisplayName: "fabrikam backup",
		Owners: []string{env.provider.AppID}, KeyCredentials: []SeedKeyCredential{{Certificate: backup.DER}}}); err != nil {
		t.Fatal(err)
	}
	if env.otherB, err = e.AddApplication(env.fabrikam.ID, SeedApplication{DisplayName: "fabrikam other"}); err != nil {
		t.Fatal(err)
	}
	return env
}

// tokenURLOf is the v2 token endpoint of the tenant named tenant (id or domain).
func (env *testEnv) tokenURLOf(tenant string) string {
	return env.base + "/" + tenant + "/oauth2/v2.0/token"
}

// signInTo signs in to tenant as appID with certificate c, the way azidentity does, asking
// for Graph.
func (env *testEnv) signInTo(tenant, appID string, c certtest.Cert) (int, map[string]any) {
	env.t.Helper()
	as := env.msalGoAssertion(c, appID, env.tokenURLOf(tenant))
	return env.postToken(env.tokenURLOf(tenant), certForm(appID, as.sign(env.t), "https://graph.microsoft.com/.default openid offline_access profile"))
}

// tokenFrom signs in and returns the access token, failing the test otherwise.
func (env *mtEnv) tokenFrom(tenant, appID string, c certtest.Cert) string {
	env.t.Helper()
	status, body := env.signInTo(tenant, appID, c)
	if status != http.StatusOK {
		env.t.Fatalf("signing in to %s as %s: %d %v", tenant, appID, status, body)
	}
	return body["access_token"].(string)
}

// TestMultiTenantSignIn: a multitenant application signs in to a tenant that consented to it
// with the certificate of its application object (in its home tenant), and gets a token of
// that tenant naming its service principal there, with the permissions granted there. A
// single-tenant application is not found in another tenant; a multitenant one not consented
// there is missing its service principal.
func TestMultiTenantSignIn(t *testing.T) {
	env := newMTEnv(t)

	// At home: the home service principal and the home roles.
	home := decodeClaims(t, env.tokenFrom(env.tid, env.provider.AppID, env.providerCert))
	if home["tid"] != env.tid || home["oid"] != env.provider.ServicePrincipalID {
		t.Errorf("home token: tid %v oid %v, want %s %s", home["tid"], home["oid"], env.tid, env.provider.ServicePrincipalID)
	}
	// In fabrikam, named by id or by domain: fabrikam's service principal, fabrikam's roles.
	for _, tenant := range []string{env.fabrikam.ID, "fabrikam.onmicrosoft.com"} {
		c := decodeClaims(t, env.tokenFrom(tenant, env.provider.AppID, env.providerCert))
		roles, _ := c["roles"].([]any)
		if c["tid"] != env.fabrikam.ID || c["oid"] != env.spB || c["sub"] != env.spB || c["appid"] != env.provider.AppID ||
			c["iss"] != "https://sts.windows.net/"+env.fabrikam.ID+"/" || len(roles) != 1 || roles[0] != RoleApplicationReadWriteOwned {
			t.Errorf("token from %s = %v; want tid %s, oid and sub %s, roles [%s]", tenant, c, env.fabrikam.ID, env.spB, RoleApplicationReadWriteOwned)
		}
	}
	// The state shows the client in fabrikam, its home tenant and its sign-in.
	var client *ClientView
	for _, tv := range env.e.State().Tenants {
		for i, cv := range tv.Clients {
			if tv.ID == env.fabrikam.ID && cv.AppID == env.provider.AppID {
				client = &tv.Clients[i]
			}
		}
	}
	if client == nil || client.ServicePrincipalID != env.spB || client.HomeTenantID != env.tid || client.TokensIssued != 2 ||
		client.LastSignIn == nil || client.LastSignIn.Thumbprint != certs.ThumbprintSHA1(env.providerCert.DER) {
		t.Errorf("fabrikam's client view of provider = %+v", client)
	}

	unregistered := certtest.New(env.clk.Now(), certtest.CommonName("not on provider"))
	tests := []struct {
		name     string
		tenant   string
		appID    string
		cert     certtest.Cert
		aud      string // the assertion's audience when not the endpoint posted to
		status   int
		errName  string
		code     int
		contains string
	}{
		{"single-tenant app in another tenant", env.fabrikam.ID, env.apps["agent"].AppID, env.certs["agent"], "",
			400, "unauthorized_client", 700016, "was not found in the directory '" + env.fabrikam.ID + "'"},
		{"multitenant app not consented", env.northwind.ID, env.provider.AppID, env.providerCert, "",
			401, "invalid_client", 7000229, "is missing service principal in the tenant " + env.northwind.ID},
		{"a certificate not on the home application", env.fabrikam.ID, env.provider.AppID, unregistered, "",
			401, "invalid_client", 700027, "The key was not found."},
		{"an assertion for the home tenant's endpoint", env.fabrikam.ID, env.provider.AppID, env.providerCert, env.tokenURL(),
			401, "invalid_client", 50012, "audience"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := env.tokenURLOf(tc.tenant)
			aud := tc.aud
			if aud == "" {
				aud = endpoint
			}
			as := env.msalGoAssertion(tc.cert, tc.appID, aud)
			status, body := env.postToken(endpoint, certForm(tc.appID, as.sign(t), "https://graph.microsoft.com/.default"))
			errName, code := entraCode(body)
			desc, _ := body["error_description"].(string)
			if status != tc.status || errName != tc.errName || code != tc.code || !strings.Contains(desc, tc.contains) {
				t.Errorf("token = %d %s AADSTS%d %q, want %d %s AADSTS%d containing %q", status, errName, code, desc, tc.status, tc.errName, tc.code, tc.contains)
			}
		})
	}

	// The older answer for a tenant without consent, when asked for.
	s := env.e.Settings()
	s.UnconsentedErrorCode = UnconsentedError700016
	if err := env.e.SetSettings(s); err != nil {
		t.Fatal(err)
	}
	status, body := env.signInTo(env.northwind.ID, env.provider.AppID, env.providerCert)
	if errName, code := entraCode(body); status != 400 || errName != "unauthorized_client" || code != 700016 {
		t.Errorf("not consented, UnconsentedError700016: %d %v", status, body)
	}

	// Made single-tenant again, the app keeps its service principal in fabrikam but cannot
	// sign in there any more; at home it still can.
	adminTok := env.token("admin")
	resp, m := env.call(http.MethodPatch, "/v1.0/applications/"+env.provider.ObjectID, adminTok, map[string]any{"signInAudience": "AzureADMyOrg"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH signInAudience = %d %v", resp.StatusCode, m)
	}
	status, body = env.signInTo(env.fabrikam.ID, env.provider.AppID, env.providerCert)
	if _, code := entraCode(body); status != 400 || code != 700016 {
		t.Errorf("single-tenant again, in fabrikam: %d %v, want AADSTS700016", status, body)
	}
	if status, body := env.signInTo(env.tid, env.provider.AppID, env.providerCert); status != 200 {
		t.Errorf("single-tenant again, at home: %d %v", status, body)
	}
}

// TestMultiTenantSignInPropagation: a key added to the home application signs in to the other
// tenant only once sign-in propagation has passed, as at home; a key removed keeps working
// there for a while too.
func TestMultiTenantSignInPropagation(t *testing.T) {
	env := newMTEnv(t, WithSignInPropagation(10*time.Second, 20*time.Second))
	next := certtest.New(env.clk.Now(), certtest.CommonName("provider next"))
	kv, err := env.e.AddKeyCredential(env.provider.AppID, SeedKeyCredential{Certificate: next.DER})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := env.signInTo(env.fabrikam.ID, env.provider.AppID, next); status != 401 {
		t.Errorf("a key just added, in fabrikam: %d %v, want AADSTS700027", status, body)
	} else if _, code := entraCode(body); code != 700027 {
		t.Errorf("a key just added, in fabrikam: AADSTS%d, want 700027", code)
	}
	env.clk.Advance(11 * time.Second)
	if status, body := env.signInTo(env.fabrikam.ID, env.provider.AppID, next); status != 200 {
		t.Errorf("after propagation, in fabrikam: %d %v", status, body)
	}
	if err := env.e.RemoveKeyCredential(env.provider.AppID, kv.KeyID); err != nil {
		t.Fatal(err)
	}
	if status, body := env.signInTo(env.fabrikam.ID, env.provider.AppID, next); status != 200 {
		t.Errorf("a key just removed, in fabrikam: %d %v, want it still accepted", status, body)
	}
	env.clk.Advance(21 * time.Second)
	if status, _ := env.signInTo(env.fabrikam.ID, env.provider.AppID, next); status != 401 {
		t.Errorf("a key removed long ago, in fabrikam: %d, want 401", status)
	}
}

// TestMultiTenantGraph: in the tenant that consented, the multitenant application's service
// principal is the caller: Application.ReadWrite.OwnedBy lets it write the apps it owns there
// and no other; Graph lists it among the tenant's service principals and the app's owners,
// with its home tenant; the application object itself is not in that tenant.
func TestMultiTenantGraph(t *testing.T) {
	env := newMTEnv(t)
	tok := env.tokenFrom(env.fabrikam.ID, env.provider.AppID, env.providerCert)

	// Reads of the tenant's apps, by appId.
	resp, m := env.call(http.MethodGet, "/v1.0/applications(appId='"+env.backupB.AppID+"')?$select=id,keyCredentials", tok, nil)
	if resp.StatusCode != 200 || len(keyCredentialsOf(t, m)) != 1 {
		t.Fatalf("GET fabrikam backup = %d %v", resp.StatusCode, m)
	}
	// A write to the owned app: the whole collection, plus one.
	added := certtest.New(env.clk.Now(), certtest.CommonName("added in fabrikam"))
	kcs := []map[string]any{{"keyId": keyCredentialsOf(t, m)[0]["keyId"]},
		{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(added.DER)}}
	resp, m = env.call(http.MethodPatch, "/v1.0/applications/"+env.backupB.ObjectID, tok, map[string]any{"keyCredentials": kcs})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH of the owned app in fabrikam = %d %v", resp.StatusCode, m)
	}
	v, err := env.e.Application(env.backupB.AppID)
	if err != nil || len(v.KeyCredentials) != 2 || v.KeyCredentials[1].Thumbprint != certs.ThumbprintSHA1(added.DER) {
		t.Errorf("fabrikam backup after the PATCH = %+v, %v", v.KeyCredentials, err)
	}
	// Not owned: refused.
	resp, m = env.call(http.MethodPatch, "/v1.0/applications/"+env.otherB.ObjectID, tok, map[string]any{"keyCredentials": []any{}})
	if code, _ := graphErr(m); resp.StatusCode != 403 || code != "Authorization_RequestDenied" {
		t.Errorf("PATCH of an app it does not own = %d %v, want 403", resp.StatusCode, m)
	}
	// The application object lives in its home tenant only.
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications(appId='"+env.provider.AppID+"')", tok, nil); resp.StatusCode != 404 {
		t.Errorf("GET of the provider's application object from fabrikam = %d, want 404", resp.StatusCode)
	}
	if resp, _ := env.call(http.MethodPost, "/v1.0/applications/"+env.provider.ObjectID+"/addKey", tok, map[string]any{}); resp.StatusCode != 404 {
		t.Errorf("addKey on the provider's application object from fabrikam = %d, want 404", resp.StatusCode)
	}

	// Owners of the app: the provider's service principal in fabrikam, homed in contoso.
	resp, m = env.call(http.MethodGet, "/v1.0/applications/"+env.backupB.ObjectID+"/owners", tok, nil)
	owners, _ := m["value"].([]any)
	if resp.StatusCode != 200 || len(owners) != 1 {
		t.Fatalf("owners = %d %v", resp.StatusCode, m)
	}
	if o := owners[0].(map[string]any); o["@odata.type"] != "#microsoft.graph.servicePrincipal" || o["id"] != env.spB ||
		o["appId"] != env.provider.AppID || o["appOwnerOrganizationId"] != env.tid || o["signInAudience"] != SignInAudienceMultipleOrgs {
		t.Errorf("owner = %v", o)
	}
	// Its service principal in fabrikam, by appId, and its permissions there.
	resp, m = env.call(http.MethodGet, "/v1.0/servicePrincipals?$filter=appId eq '"+env.provider.AppID+"'", tok, nil)
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 || vals[0].(map[string]any)["id"] != env.spB {
		t.Errorf("servicePrincipals by appId in fabrikam = %d %v", resp.StatusCode, m)
	}
	resp, m = env.call(http.MethodGet, "/v1.0/servicePrincipals(appId='"+env.provider.AppID+"')/appRoleAssignments", tok, nil)
	if vals, _ := m["value"].([]any); resp.StatusCode != 200 || len(vals) != 1 || vals[0].(map[string]any)["principalId"] != env.spB {
		t.Errorf("appRoleAssignments of the service principal in fabrikam = %d %v", resp.StatusCode, m)
	}
	// An app it creates in fabrikam is its own there.
	resp, m = env.call(http.MethodPost, "/v1.0/applications", tok, map[string]any{"displayName": "made in fabrikam"})
	if resp.StatusCode != 201 {
		t.Fatalf("create application in fabrikam = %d %v", resp.StatusCode, m)
	}
	made, err := env.e.Application(m["appId"].(string))
	if err != nil || len(made.Owners) != 1 || made.Owners[0].ServicePrincipalID != env.spB || made.Owners[0].HomeTenantID != env.tid {
		t.Errorf("owners of the app it made = %+v, %v", made.Owners, err)
	}

	// A rename of the application object reaches its home service principal only.
	if resp, m := env.call(http.MethodPatch, "/v1.0/applications/"+env.provider.ObjectID, env.token("admin"), map[string]any{"displayName": "provider renamed"}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rename = %d %v", resp.StatusCode, m)
	}
	_, m = env.call(http.MethodGet, "/v1.0/servicePrincipals/"+env.spB, tok, nil)
	if m["displayName"] != "provider" {
		t.Errorf("the service principal in fabrikam after a rename at home = %v, want the name it was made with", m["displayName"])
	}

	// Tokens of the home tenant do not reach fabrikam's apps.
	homeTok := env.tokenFrom(env.tid, env.provider.AppID, env.providerCert)
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications/"+env.backupB.ObjectID, homeTok, nil); resp.StatusCode != 404 {
		t.Errorf("GET of fabrikam's app with a home token = %d, want 404", resp.StatusCode)
	}
}

// TestMultiTenantConsentThroughGraph: an administrator of another tenant adds a multitenant
// application's service principal there (POST /servicePrincipals {appId}), grants it a Graph
// permission and makes it an owner, as admin consent and setup do; the application then signs
// in there with those rights. A single-tenant application cannot be added; an app without
// Application.ReadWrite.All cannot add one.
func TestMultiTenantConsentThroughGraph(t *testing.T) {
	env := newMTEnv(t)
	admin, _, err := env.e.UserAccessToken(env.fabrikamAdminUser, GraphCommandLineToolsClientID, "https://graph.microsoft.com",
		[]string{ScopeApplicationReadWriteAll, ScopeAppRoleAssignmentReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	resp, m := env.call(http.MethodPost, "/v1.0/servicePrincipals", admin, map[string]any{"appId": env.apps["agent"].AppID})
	if resp.StatusCode != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "multitenant") {
		t.Errorf("adding a single-tenant app = %d %v, want 400", resp.StatusCode, m)
	}
	// Northwind's consent, through Graph.
	if _, err := env.e.AddUser(env.northwind.ID, SeedUser{UserPrincipalName: "admin", DirectoryRoles: []string{DirectoryRoleApplicationAdmin}}); err != nil {
		t.Fatal(err)
	}
	nwAdmin, _, err := env.e.UserAccessToken("admin@northwind.onmicrosoft.com", GraphCommandLineToolsClientID, "https://graph.microsoft.com",
		[]string{ScopeApplicationReadWriteAll, ScopeAppRoleAssignmentReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals", nwAdmin, map[string]any{"appId": env.provider.AppID})
	if resp.StatusCode != 201 || m["appId"] != env.provider.AppID || m["appOwnerOrganizationId"] != env.tid || m["signInAudience"] != SignInAudienceMultipleOrgs {
		t.Fatalf("adding the provider to northwind = %d %v", resp.StatusCode, m)
	}
	spN := m["id"].(string)
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals", nwAdmin, map[string]any{"appId": env.provider.AppID})
	if code, _ := graphErr(m); resp.StatusCode != 409 || code != "Request_MultipleObjectsWithSameKeyValue" {
		t.Errorf("adding it twice = %d %v, want 409", resp.StatusCode, m)
	}
	// It signs in now, with no permission yet.
	c := decodeClaims(t, env.tokenFrom(env.northwind.ID, env.provider.AppID, env.providerCert))
	if c["oid"] != spN || c["roles"] != nil {
		t.Errorf("northwind token before the grant = %v", c)
	}

	// Graph's app role: granted by a Global Administrator of northwind (the Application
	// Administrator may not).
	resp, m = env.call(http.MethodGet, "/v1.0/servicePrincipals(appId='"+graphAppID+"')", nwAdmin, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("Graph's service principal in northwind = %d %v", resp.StatusCode, m)
	}
	graphSP := m["id"].(string)
	grant := map[string]any{"principalId": spN, "resourceId": graphSP, "appRoleId": "18a4783c-866b-4cc7-a460-3d5e5662c884"}
	if resp, _ := env.call(http.MethodPost, "/v1.0/servicePrincipals/"+graphSP+"/appRoleAssignedTo", nwAdmin, grant); resp.StatusCode != 403 {
		t.Errorf("grant by an Application Administrator = %d, want 403", resp.StatusCode)
	}
	if _, err := env.e.AddUser(env.northwind.ID, SeedUser{UserPrincipalName: "global", DirectoryRoles: []string{DirectoryRoleGlobalAdmin}}); err != nil {
		t.Fatal(err)
	}
	global, _, err := env.e.UserAccessToken("global@northwind.onmicrosoft.com", GraphCommandLineToolsClientID, "https://graph.microsoft.com",
		[]string{ScopeApplicationReadWriteAll, ScopeAppRoleAssignmentReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	resp, m = env.call(http.MethodPost, "/v1.0/servicePrincipals/"+graphSP+"/appRoleAssignedTo", global, grant)
	if resp.StatusCode != 201 || m["principalId"] != spN || m["principalDisplayName"] != "provider" {
		t.Fatalf("grant = %d %v", resp.StatusCode, m)
	}
	// Ownership of a northwind app.
	nwApp, err := env.e.AddApplication(env.northwind.ID, SeedApplication{DisplayName: "northwind backup"})
	if err != nil {
		t.Fatal(err)
	}
	resp, m = env.call(http.MethodPost, "/v1.0/applications/"+nwApp.ObjectID+"/owners/$ref", global,
		map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + spN})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("owner add = %d %v", resp.StatusCode, m)
	}
	tok := env.tokenFrom(env.northwind.ID, env.provider.AppID, env.providerCert)
	if roles, _ := decodeClaims(t, tok)["roles"].([]any); len(roles) != 1 || roles[0] != RoleApplicationReadWriteOwned {
		t.Errorf("northwind token after the grant: roles %v", roles)
	}
	resp, m = env.call(http.MethodPatch, "/v1.0/applications/"+nwApp.ObjectID, tok, map[string]any{"displayName": "northwind backup (managed)"})
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("PATCH of the app it now owns in northwind = %d %v", resp.StatusCode, m)
	}

	// An app-only caller needs Application.ReadWrite.All to add another tenant's app.
	providerTok := env.tokenFrom(env.fabrikam.ID, env.provider.AppID, env.providerCert)
	other, err := env.e.AddApplication(env.tid, SeedApplication{DisplayName: "other multitenant", SignInAudience: SignInAudienceMultipleOrgs})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := env.call(http.MethodPost, "/v1.0/servicePrincipals", providerTok, map[string]any{"appId": other.AppID}); resp.StatusCode != 403 {
		t.Errorf("adding another tenant's app with OwnedBy = %d, want 403", resp.StatusCode)
	}
}

// TestConsentApplicationErrors: the helper refuses what Entra would not consent to, and owner
// references name consented applications only.
func TestConsentApplicationErrors(t *testing.T) {
	env := newMTEnv(t)
	if _, err := env.e.ConsentApplication(newGUID(), env.provider.AppID); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant: %v, want ErrNotFound", err)
	}
	if _, err := env.e.ConsentApplication(env.fabrikam.ID, newGUID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown app: %v, want ErrNotFound", err)
	}
	if _, err := env.e.ConsentApplication(env.fabrikam.ID, env.apps["agent"].AppID); !errors.Is(err, ErrNotMultiTenant) {
		t.Errorf("single-tenant app: %v, want ErrNotMultiTenant", err)
	}
	if _, err := env.e.ConsentApplication(env.tid, env.provider.AppID); err == nil {
		t.Error("consent in the app's home tenant succeeded")
	}
	if _, err := env.e.ConsentApplication(env.fabrikam.ID, env.provider.AppID, "Mail.Send"); err == nil {
		t.Error("consent to an unknown Graph role succeeded")
	}
	// Again: the same service principal, with the roles added.
	sp, err := env.e.ConsentApplication(env.fabrikam.ID, env.provider.AppID, RoleApplicationReadAll)
	if err != nil || sp != env.spB {
		t.Errorf("consenting again = %s, %v; want %s", sp, err, env.spB)
	}
	if roles := env.clientOf(env.fabrikam.ID, env.provider.AppID).Roles; len(roles) != 2 {
		t.Errorf("roles after consenting again = %v", roles)
	}
	if _, err := env.e.AddApplication(env.northwind.ID, SeedApplication{DisplayName: "x", Owners: []string{env.provider.AppID}}); err == nil {
		t.Error("an owner not consented in the tenant was accepted")
	}
	if err := env.e.SetOwners(env.otherB.AppID, env.provider.AppID); err != nil {
		t.Errorf("SetOwners naming the consented app: %v", err)
	}
	if err := env.e.SetSignInAudience(env.apps["agent"].AppID, "AzureADandPersonalMicrosoftAccount"); err == nil {
		t.Error("SetSignInAudience accepted an audience the emulator does not model")
	}
	if err := env.e.SetSignInAudience(env.apps["agent"].AppID, SignInAudienceMultipleOrgs); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.ConsentApplication(env.fabrikam.ID, env.apps["agent"].AppID); err != nil {
		t.Errorf("consent after SetSignInAudience: %v", err)
	}
}

// clientOf returns the client view of appID in tenant.
func (env *mtEnv) clientOf(tenant, appID string) ClientView {
	env.t.Helper()
	for _, tv := range env.e.State().Tenants {
		if tv.ID != tenant {
			continue
		}
		for _, c := range tv.Clients {
			if c.AppID == appID {
				return c
			}
		}
	}
	env.t.Fatalf("no client %s in tenant %s", appID, tenant)
	return ClientView{}
}
