package emulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUnknownLoginPaths: a path the login service does not have is a bare 404 (as Entra's
// is), not an AADSTS error, which describes requests to real endpoints.
func TestUnknownLoginPaths(t *testing.T) {
	env := newEnv(t)
	for _, p := range []string{"/" + env.tid + "/oauth2/v2.0/nothing", "/adfs/nothing", "/metadata/endpoints"} {
		resp, err := env.hc.Get(env.base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "AADSTS") {
			t.Errorf("GET %s = %d %q; want a bare 404", p, resp.StatusCode, b)
		}
	}
}
