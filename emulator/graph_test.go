package emulator

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

func TestGraphAuthentication(t *testing.T) {
	env := newEnv(t)
	good := env.token("reader")
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("not the signature"))
	arm, err := env.e.AccessToken(env.apps["reader"].AppID, "https://management.azure.com/")
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1.0/applications/" + env.apps["target"].ObjectID

	tests := []struct {
		name string
		tok  string
		want string
	}{
		{"no token", "", "Access token is empty."},
		{"garbage", "garbage", "CompactToken parsing failed with error code: 80049217"},
		{"bad signature", tampered, "Invalid signature"},
		{"wrong audience", arm, "Access token validation failure. Invalid audience."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := env.call(http.MethodGet, path, tc.tok, nil, "client-request-id", "abc-123")
			code, msg := graphErr(m)
			if resp.StatusCode != http.StatusUnauthorized || code != "InvalidAuthenticationToken" || msg != tc.want {
				t.Fatalf("GET = %d %s %q, want 401 InvalidAuthenticationToken %q", resp.StatusCode, code, msg, tc.want)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate challenge")
			}
			inner, _ := m["error"].(map[string]any)["innerError"].(map[string]any)
			if inner["client-request-id"] != "abc-123" || inner["request-id"] == "" || inner["date"] == "" {
				t.Errorf("innerError = %v, want date, request-id and the echoed client-request-id", inner)
			}
		})
	}

	if resp, m := env.call(http.MethodGet, path, good, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with a good token = %d %v", resp.StatusCode, m)
	}
	env.clk.Advance(time.Hour + 6*time.Minute)
	resp, m := env.call(http.MethodGet, path, good, nil)
	if _, msg := graphErr(m); resp.StatusCode != http.StatusUnauthorized || msg != "Lifetime validation failed, the token is expired." {
		t.Errorf("GET with an expired token = %d %q, want 401 expired", resp.StatusCode, msg)
	}
}

func TestGraphGetApplication(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	target := env.apps["target"]
	der := env.certs["target"].DER
	byID := "/v1.0/applications/" + target.ObjectID
	byAppID := "/v1.0/applications(appId='" + target.AppID + "')"

	for _, path := range []string{byID, byAppID} {
		resp, m := env.call(http.MethodGet, path, tok, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %v", path, resp.StatusCode, m)
		}
		if m["id"] != target.ObjectID || m["appId"] != target.AppID || m["displayName"] != "target" {
			t.Errorf("GET %s = %v", path, m)
		}
		if ctx, _ := m["@odata.context"].(string); ctx != env.base+"/v1.0/$metadata#applications/$entity" {
			t.Errorf("@odata.context = %q", ctx)
		}
		kcs := keyCredentialsOf(t, m)
		if len(kcs) != 1 || kcs[0]["key"] != nil {
			t.Errorf("GET %s without $select: keyCredentials = %v, want one with key null", path, kcs)
		}
		if _, ok := m["web"]; !ok {
			t.Errorf("GET %s without $select lacks the unmodelled properties", path)
		}
	}

	for _, path := range []string{byID, byAppID} {
		resp, m := env.call(http.MethodGet, path+"?$select=id,appId,displayName,keyCredentials", tok, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with $select = %d %v", path, resp.StatusCode, m)
		}
		kcs := keyCredentialsOf(t, m)
		if len(kcs) != 1 || kcs[0]["key"] != base64.StdEncoding.EncodeToString(der) {
			t.Fatalf("GET with $select=keyCredentials: key = %v, want the certificate", kcs[0]["key"])
		}
		k := kcs[0]
		want := map[string]any{
			"customKeyIdentifier": certs.ThumbprintSHA1(der),
			"displayName":         "target cert",
			"type":                "AsymmetricX509Cert",
			"usage":               "Verify",
			"keyId":               target.KeyCredentials[0].KeyID,
			"startDateTime":       graphTime(env.certs["target"].Cert.NotBefore),
			"endDateTime":         graphTime(env.certs["target"].Cert.NotAfter),
		}
		for f, v := range want {
			if k[f] != v {
				t.Errorf("keyCredential.%s = %v, want %v", f, k[f], v)
			}
		}
		if _, ok := m["web"]; ok {
			t.Error("$select answer carries unselected properties")
		}
		if ctx, _ := m["@odata.context"].(string); !strings.HasSuffix(ctx, "#applications(id,appId,displayName,keyCredentials)/$entity") {
			t.Errorf("@odata.context = %q", ctx)
		}
	}

	tests := []struct {
		name   string
		path   string
		status int
		code   string
		msg    string
	}{
		{"unknown select", byID + "?$select=appId,frobnicate", 400, "Request_BadRequest", "Could not find a property named 'frobnicate' on type 'microsoft.graph.application'"},
		{"unknown object", "/v1.0/applications/" + newGUID(), 404, "Request_ResourceNotFound", "does not exist or one of its queried reference-property objects are not present."},
		{"unknown appId", "/v1.0/applications(appId='" + newGUID() + "')", 404, "Request_ResourceNotFound", "does not exist"},
		{"appId in the id position", "/v1.0/applications/" + target.AppID, 404, "Request_ResourceNotFound", "does not exist"},
		{"not a GUID", "/v1.0/applications/xyz", 400, "Request_BadRequest", "Invalid object identifier 'xyz'."},
		{"unknown segment", "/v1.0/frobnicate", 400, "BadRequest", "Resource not found for the segment 'frobnicate'."},
		{"unknown action", byID + "/frobnicate", 400, "BadRequest", "Resource not found for the segment 'frobnicate'."},
		{"expand", byID + "?$expand=owners", 400, "Request_UnsupportedQuery", "$expand"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := env.call(http.MethodGet, tc.path, tok, nil)
			code, msg := graphErr(m)
			if resp.StatusCode != tc.status || code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("GET %s = %d %s %q, want %d %s containing %q", tc.path, resp.StatusCode, code, msg, tc.status, tc.code, tc.msg)
			}
		})
	}

	// $select with one property returns only it.
	_, m := env.call(http.MethodGet, byID+"?select=APPID", tok, nil)
	if len(m) != 2 || m["appId"] != target.AppID {
		t.Errorf("GET ?select=APPID = %v, want @odata.context and appId only", m)
	}
}

func TestGraphList(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	target := env.apps["target"]

	q := url.Values{"$filter": {"appId eq '" + strings.ToUpper(target.AppID) + "'"}, "$select": {"id,appId,keyCredentials"}}
	resp, m := env.call(http.MethodGet, "/v1.0/applications?"+q.Encode(), tok, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("filtered list = %d %v", resp.StatusCode, m)
	}
	vals, _ := m["value"].([]any)
	if len(vals) != 1 {
		t.Fatalf("filtered list = %v, want one application", m)
	}
	app := vals[0].(map[string]any)
	if app["id"] != target.ObjectID || keyCredentialsOf(t, app)[0]["key"] != nil {
		t.Errorf("filtered list entry = %v, want the target with key null", app)
	}
	if ctx, _ := m["@odata.context"].(string); ctx != env.base+"/v1.0/$metadata#applications(id,appId,keyCredentials)" {
		t.Errorf("@odata.context = %q", ctx)
	}

	for filter, want := range map[string]int{
		"displayName eq 'target'":         1,
		"startswith(displayName,'a')":     2, // agent, admin
		"id eq '" + target.ObjectID + "'": 1,
		"appId eq '" + newGUID() + "'":    0,
	} {
		_, m := env.call(http.MethodGet, "/v1.0/applications?"+url.Values{"$filter": {filter}}.Encode(), tok, nil)
		if vals, _ := m["value"].([]any); len(vals) != want {
			t.Errorf("$filter=%s: %d applications, want %d", filter, len(vals), want)
		}
	}
	for _, filter := range []string{"notes eq 'x'", "appId ne 'x'", "appId eq 'a' and displayName eq 'b'", "endswith(displayName,'t')"} {
		resp, m := env.call(http.MethodGet, "/v1.0/applications?"+url.Values{"$filter": {filter}}.Encode(), tok, nil)
		if code, _ := graphErr(m); resp.StatusCode != 400 || code != "Request_UnsupportedQuery" {
			t.Errorf("$filter=%s = %d %s, want 400 Request_UnsupportedQuery", filter, resp.StatusCode, code)
		}
	}

	// Paging: all nine applications, four at a time.
	var names []string
	next := "/v1.0/applications?$top=4&$select=displayName"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		resp, m := env.call(http.MethodGet, next, tok, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %v", next, resp.StatusCode, m)
		}
		for _, v := range m["value"].([]any) {
			names = append(names, v.(map[string]any)["displayName"].(string))
		}
		link, _ := m["@odata.nextLink"].(string)
		next = strings.TrimPrefix(link, env.base)
	}
	if len(names) != 9 {
		t.Errorf("paged list = %v, want 9 applications", names)
	}
}

// TestGraphPermissions checks who may read and write what.
func TestGraphPermissions(t *testing.T) {
	env := newEnv(t)
	patchBody := func(name string) map[string]any {
		return map[string]any{"keyCredentials": []map[string]any{{"keyId": env.apps[name].KeyCredentials[0].KeyID}}}
	}
	tests := []struct {
		caller, target string
		method         string
		status         int
	}{
		{"reader", "target", http.MethodGet, 200},
		{"reader", "target", http.MethodPatch, 403},
		{"norole", "target", http.MethodGet, 403},
		{"norole", "norole", http.MethodGet, 403}, // no implicit read of itself
		{"norole", "norole", http.MethodPatch, 403},
		{"stranger", "target", http.MethodGet, 200}, // OwnedBy reads every application
		{"stranger", "target", http.MethodPatch, 403},
		{"agent", "target", http.MethodPatch, 204},
		{"agent", "agent", http.MethodPatch, 403}, // OwnedBy, not an owner of itself
		{"agent", "admin", http.MethodPatch, 403},
		{"admin", "target", http.MethodPatch, 204},
		{"admin", "norole", http.MethodPatch, 204},
	}
	for _, tc := range tests {
		t.Run(tc.caller+" "+tc.method+" "+tc.target, func(t *testing.T) {
			var body any
			if tc.method == http.MethodPatch {
				body = patchBody(tc.target)
			}
			resp, m := env.call(tc.method, "/v1.0/applications/"+env.apps[tc.target].ObjectID, env.token(tc.caller), body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s = %d %v, want %d", tc.method, resp.StatusCode, m, tc.status)
			}
			if tc.status == 403 {
				if code, msg := graphErr(m); code != "Authorization_RequestDenied" || msg != "Insufficient privileges to complete the operation." {
					t.Errorf("403 body = %s %q", code, msg)
				}
			}
		})
	}

	// Ownership is checked live: adding the stranger as owner lets it write.
	if err := env.e.SetOwners(env.apps["target"].AppID, "agent", "stranger"); err != nil {
		t.Fatal(err)
	}
	if resp, m := env.call(http.MethodPatch, "/v1.0/applications/"+env.apps["target"].ObjectID, env.token("stranger"), patchBody("target")); resp.StatusCode != 204 {
		t.Errorf("PATCH by a new owner = %d %v, want 204", resp.StatusCode, m)
	}
}

func TestGraphOwnedByReadsOwnedOnly(t *testing.T) {
	env := newEnv(t, WithOwnedByReadsOwnedOnly())
	tok := env.token("agent")
	_, m := env.call(http.MethodGet, "/v1.0/applications", tok, nil)
	vals, _ := m["value"].([]any)
	if len(vals) != 1 || vals[0].(map[string]any)["displayName"] != "target" {
		t.Errorf("list by OwnedBy = %v, want the owned target only", vals)
	}
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications/"+env.apps["admin"].ObjectID, tok, nil); resp.StatusCode != 403 {
		t.Errorf("GET of a non-owned app = %d, want 403", resp.StatusCode)
	}
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications/"+env.apps["target"].ObjectID, tok, nil); resp.StatusCode != 200 {
		t.Errorf("GET of the owned app = %d, want 200", resp.StatusCode)
	}
}

// TestGraphTenantIsolation: a token of one tenant does not see another tenant's apps.
func TestGraphTenantIsolation(t *testing.T) {
	env := newEnv(t)
	c := certtest.New(env.clk.Now(), certtest.CommonName("other tenant admin"))
	other, err := env.e.AddTenant(Seed{Applications: []SeedApplication{{DisplayName: "other admin", GraphRoles: []string{RoleApplicationReadWriteAll}, KeyCredentials: []SeedKeyCredential{{Certificate: c.DER}}}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := env.e.AccessToken(other.Applications[0].AppID, "https://graph.microsoft.com")
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := env.call(http.MethodGet, "/v1.0/applications/"+env.apps["target"].ObjectID, tok, nil); resp.StatusCode != 404 {
		t.Errorf("GET of another tenant's app = %d, want 404", resp.StatusCode)
	}
	_, m := env.call(http.MethodGet, "/v1.0/applications", tok, nil)
	if vals, _ := m["value"].([]any); len(vals) != 1 {
		t.Errorf("list in the other tenant = %v, want its one app", vals)
	}
}

// TestGraphRequestIDs: every Graph answer carries request-id and client-request-id, and an
// error's innerError carries both with its date; without a client-request-id from the client,
// Graph reports the request id as the client's.
func TestGraphRequestIDs(t *testing.T) {
	env := newEnv(t)
	tok := env.token("reader")
	good := "/v1.0/applications/" + env.apps["target"].ObjectID
	missing := "/v1.0/applications/" + newGUID()
	for _, tc := range []struct {
		name     string
		path     string
		clientID string
		status   int
	}{
		{"error with client id", missing, "abc-123", http.StatusNotFound},
		{"error without client id", missing, "", http.StatusNotFound},
		{"success with client id", good, "abc-123", http.StatusOK},
		{"success without client id", good, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.clientID != "" {
				hdr = []string{"client-request-id", tc.clientID}
			}
			resp, m := env.call(http.MethodGet, tc.path, tok, nil, hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET = %d %v, want %d", resp.StatusCode, m, tc.status)
			}
			reqID := resp.Header.Get("request-id")
			wantClient := tc.clientID
			if wantClient == "" {
				wantClient = reqID
			}
			if reqID == "" || resp.Header.Get("client-request-id") != wantClient {
				t.Errorf("headers request-id %q client-request-id %q, want a request id and client-request-id %q", reqID, resp.Header.Get("client-request-id"), wantClient)
			}
			if tc.status == http.StatusOK {
				return
			}
			inner, _ := m["error"].(map[string]any)["innerError"].(map[string]any)
			if inner["request-id"] != reqID || inner["client-request-id"] != wantClient || inner["date"] == "" {
				t.Errorf("innerError = %v, want date, request-id %q, client-request-id %q", inner, reqID, wantClient)
			}
		})
	}
}
