package emulator

import (
	"net/http"
	"testing"
)

// TestGraphListOwners: GET /applications/{id}/owners and /applications(appId='...')/owners
// list the owners as directoryObjects; readers need a read permission; an unknown app is 404,
// another method 405.
func TestGraphListOwners(t *testing.T) {
	env := newEnv(t)
	target, agent := env.apps["target"], env.apps["agent"]
	owners := func(caller, path string) (int, []map[string]any, map[string]any) {
		t.Helper()
		resp, m := env.call(http.MethodGet, path, env.token(caller), nil)
		var out []map[string]any
		if vals, ok := m["value"].([]any); ok {
			for _, v := range vals {
				out = append(out, v.(map[string]any))
			}
		}
		return resp.StatusCode, out, m
	}

	for _, path := range []string{
		"/v1.0/applications/" + target.ObjectID + "/owners",
		"/v1.0/applications(appId='" + target.AppID + "')/owners",
	} {
		status, got, m := owners("reader", path)
		if status != 200 || len(got) != 1 {
			t.Fatalf("GET %s by a reader = %d %v, want the one owner", path, status, m)
		}
		o := got[0]
		if o["@odata.type"] != "#microsoft.graph.servicePrincipal" || o["id"] != agent.ServicePrincipalID || o["appId"] != agent.AppID || o["displayName"] != "agent" {
			t.Errorf("owner = %v, want the agent's service principal", o)
		}
		if m["@odata.context"] != "https://"+env.host+"/v1.0/$metadata#directoryObjects" {
			t.Errorf("@odata.context = %v", m["@odata.context"])
		}
	}

	// The agent (OwnedBy) reads the owners of the app it owns: itself.
	status, got, _ := owners("agent", "/v1.0/applications/"+target.ObjectID+"/owners")
	if status != 200 || len(got) != 1 || got[0]["id"] != agent.ServicePrincipalID {
		t.Errorf("owners read with OwnedBy = %d %v, want the agent's service principal", status, got)
	}
	if status, got, _ := owners("reader", "/v1.0/applications/"+agent.ObjectID+"/owners"); status != 200 || len(got) != 0 {
		t.Errorf("owners of an app without owners = %d %v, want an empty list", status, got)
	}

	for _, tc := range []struct {
		name, caller, method, path string
		status                     int
		code                       string
	}{
		{"no permission", "norole", http.MethodGet, "/v1.0/applications/" + target.ObjectID + "/owners", 403, "Authorization_RequestDenied"},
		{"unknown app", "reader", http.MethodGet, "/v1.0/applications/" + newGUID() + "/owners", 404, "Request_ResourceNotFound"},
		{"unsupported option", "reader", http.MethodGet, "/v1.0/applications/" + target.ObjectID + "/owners?$orderby=id", 400, "Request_UnsupportedQuery"},
		{"POST", "admin", http.MethodPost, "/v1.0/applications/" + target.ObjectID + "/owners", 405, "Request_BadRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := env.call(tc.method, tc.path, env.token(tc.caller), nil)
			if code, _ := graphErr(m); resp.StatusCode != tc.status || code != tc.code {
				t.Errorf("%s %s = %d %v, want %d %s", tc.method, tc.path, resp.StatusCode, m, tc.status, tc.code)
			}
		})
	}

	// Owners change live.
	if err := env.e.SetOwners(target.AppID, "agent", "stranger"); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := owners("reader", "/v1.0/applications/"+target.ObjectID+"/owners"); len(got) != 2 || got[1]["id"] != env.apps["stranger"].ServicePrincipalID {
		t.Errorf("owners after adding one = %v", got)
	}
}
