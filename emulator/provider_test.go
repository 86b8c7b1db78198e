package emulator

import (
	"io"
	"net/http"
	"testing"

	"github.com/aucloud/certagent/emulator/provider"
)

// TestProviderRoutes: with WithProvider the emulator serves the provider's routes over its
// HTTPS with its CA, its control routes to loopback callers, and faults apply to the
// provider's routes as to Graph's (to test the agent's fetch against a failing provider).
func TestProviderRoutes(t *testing.T) {
	p, err := provider.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, WithProvider(p))
	if env.e.Provider() != p {
		t.Fatal("Provider() is not the one given")
	}
	resp, m := env.call(http.MethodPost, "/_emulator/provider/publish", "", map[string]string{"customer": env.tid})
	if resp.StatusCode != 200 || m["path"] != provider.CertificatePath(env.tid) {
		t.Fatalf("publish: %d %v", resp.StatusCode, m)
	}
	get := func() (int, string) {
		resp, err := env.hc.Get(env.base + provider.CertificatePath(env.tid))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || len(body) < 100 {
		t.Fatalf("GET the certificate: %d %q", code, body)
	}
	if err := env.e.AddFaults(Fault{Method: http.MethodGet, Path: "/provider/", Status: http.StatusServiceUnavailable, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("with a fault: %d, want 503", code)
	}
	if code, _ := get(); code != 200 {
		t.Errorf("after the fault: %d, want 200", code)
	}
	if resp, m := env.call(http.MethodGet, "/_emulator/provider/state", "", nil); resp.StatusCode != 200 || m["fingerprint"] != p.Fingerprint() {
		t.Errorf("state: %d %v", resp.StatusCode, m)
	}

	// Without a provider the routes are not there.
	plain := newEnv(t)
	if resp, _ := plain.call(http.MethodGet, "/_emulator/provider/state", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("state without a provider: %d, want 404", resp.StatusCode)
	}
}
