package metrics

import (
	"github.com/aucloud/certagent/agent/certs"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

func TestStateFromCallbacks(t *testing.T) {
	var mu sync.Mutex
	rotations := map[string]map[string]int{"default": {"applied": 2, "failed": 1}}
	certs := []CertExpiry{
		{Target: "default", Thumbprint: "A1B2", KeyID: "k1", NotAfter: time.Unix(1_800_000_000, 0)},
		{Target: "default", Thumbprint: "", KeyID: "k2", NotAfter: time.Unix(1_700_000_000, 500_000_000)},
		{Target: "default", Thumbprint: "A1B2", KeyID: "k1", NotAfter: time.Unix(1_900_000_000, 0)}, // duplicate: dropped
		{Target: "teams", Thumbprint: "A1B2", KeyID: "k1", NotAfter: time.Unix(1_850_000_000, 0)},   // another target's: kept
		{Target: "default", Thumbprint: "C3", KeyID: "k3"},                                          // no expiry: dropped
	}
	credential := time.Unix(1_790_000_000, 0)
	lastSync := map[string]time.Time{"default": {}}
	m := New(Config{
		Version: "1.2.3",
		Rotations: func() map[string]map[string]int {
			mu.Lock()
			defer mu.Unlock()
			return rotations
		},
		Certificates:       func() []CertExpiry { return certs },
		CredentialNotAfter: func() time.Time { return credential },
		LastSync: func() map[string]time.Time {
			mu.Lock()
			defer mu.Unlock()
			return lastSync
		},
	})

	want := `
# HELP certagent_rotations Rotations by target and state.
# TYPE certagent_rotations gauge
certagent_rotations{state="applied",target="default"} 2
certagent_rotations{state="applying",target="default"} 0
certagent_rotations{state="confirmed",target="default"} 0
certagent_rotations{state="failed",target="default"} 1
certagent_rotations{state="pending_approval",target="default"} 0
certagent_rotations{state="rejected",target="default"} 0
# HELP certagent_certificate_expiry_timestamp_seconds When each certificate credential of each target app expires (endDateTime), in Unix seconds.
# TYPE certagent_certificate_expiry_timestamp_seconds gauge
certagent_certificate_expiry_timestamp_seconds{key_id="k1",target="default",thumbprint="A1B2"} 1.8e+09
certagent_certificate_expiry_timestamp_seconds{key_id="k1",target="teams",thumbprint="A1B2"} 1.85e+09
certagent_certificate_expiry_timestamp_seconds{key_id="k2",target="default",thumbprint=""} 1.7000000005e+09
# HELP certagent_agent_credential_expiry_timestamp_seconds When the agent's own sign-in credential expires, in Unix seconds.
# TYPE certagent_agent_credential_expiry_timestamp_seconds gauge
certagent_agent_credential_expiry_timestamp_seconds 1.79e+09
# HELP certagent_build_info Always 1; the version label tells the agent's version.
# TYPE certagent_build_info gauge
certagent_build_info{version="1.2.3"} 1
`
	names := []string{"certagent_rotations", "certagent_certificate_expiry_timestamp_seconds",
		"certagent_agent_credential_expiry_timestamp_seconds", "certagent_last_sync_success_timestamp_seconds", "certagent_build_info"}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// The callbacks are read at every scrape: a sync happens, a rotation is confirmed, a
	// second target appears.
	mu.Lock()
	lastSync = map[string]time.Time{"default": t0, "teams": {}}
	rotations = map[string]map[string]int{"default": {"applied": 1, "confirmed": 1, "failed": 1}, "teams": {"applying": 1}}
	mu.Unlock()
	want2 := `
# HELP certagent_last_sync_success_timestamp_seconds When each target's app was last read from Graph successfully, in Unix seconds.
# TYPE certagent_last_sync_success_timestamp_seconds gauge
certagent_last_sync_success_timestamp_seconds{target="default"} 1.795635e+09
# HELP certagent_rotations Rotations by target and state.
# TYPE certagent_rotations gauge
certagent_rotations{state="applied",target="default"} 1
certagent_rotations{state="applying",target="default"} 0
certagent_rotations{state="confirmed",target="default"} 1
certagent_rotations{state="failed",target="default"} 1
certagent_rotations{state="pending_approval",target="default"} 0
certagent_rotations{state="rejected",target="default"} 0
certagent_rotations{state="applied",target="teams"} 0
certagent_rotations{state="applying",target="teams"} 1
certagent_rotations{state="confirmed",target="teams"} 0
certagent_rotations{state="failed",target="teams"} 0
certagent_rotations{state="pending_approval",target="teams"} 0
certagent_rotations{state="rejected",target="teams"} 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want2), "certagent_rotations", "certagent_last_sync_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestNilCallbacks(t *testing.T) {
	m := New(Config{})
	n, err := testutil.GatherAndCount(m.reg, "certagent_rotations", "certagent_certificate_expiry_timestamp_seconds",
		"certagent_agent_credential_expiry_timestamp_seconds", "certagent_last_sync_success_timestamp_seconds")
	if err != nil || n != 0 {
		t.Errorf("without callbacks: %d series, %v; want none", n, err)
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP certagent_build_info Always 1; the version label tells the agent's version.
# TYPE certagent_build_info gauge
certagent_build_info{version="unknown"} 1
`), "certagent_build_info"); err != nil {
		t.Error(err)
	}
}

func TestCounters(t *testing.T) {
	m := New(Config{})
	m.GraphRequest("get", "ok")
	m.GraphRequest("get", "ok")
	m.GraphRequest("replace", "throttled")
	m.GraphRequest("token", "auth_failed")
	m.IntakeFile("accepted", "")
	m.IntakeFile("rejected", "expired")
	m.IntakeFile("rejected", "expired")
	m.IntakeFile("rejected", "contains_private_key")

	if got := testutil.ToFloat64(m.graph.WithLabelValues("get", "ok")); got != 2 {
		t.Errorf("graph get ok = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.graph.WithLabelValues("replace", "throttled")); got != 1 {
		t.Errorf("graph replace throttled = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.intake.WithLabelValues("rejected", "expired")); got != 2 {
		t.Errorf("intake rejected expired = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.intake.WithLabelValues("accepted", "")); got != 1 {
		t.Errorf("intake accepted = %v, want 1", got)
	}
	// Every verdict code has its series from the start (alerts on increase() need them).
	if got := testutil.ToFloat64(m.intake.WithLabelValues("rejected", "weak_key")); got != 0 {
		t.Errorf("intake rejected weak_key = %v, want 0", got)
	}
	if n, want := testutil.CollectAndCount(m.intake), 1+len(certs.VerdictCodes); n != want {
		t.Errorf("intake series = %d, want %d (accepted + every verdict code)", n, want)
	}
	if n := testutil.CollectAndCount(m.graph); n != 3 {
		t.Errorf("graph series = %d, want 3", n)
	}
}

func TestHandler(t *testing.T) {
	m := New(Config{Version: "1.2.3", Rotations: func() map[string]map[string]int { return map[string]map[string]int{"default": nil} }})
	m.GraphRequest("get", "ok")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		`certagent_graph_requests_total{op="get",outcome="ok"} 1`,
		`certagent_rotations{state="pending_approval",target="default"} 0`,
		`certagent_intake_files_total{code="",verdict="accepted"} 0`,
		"go_goroutines ",
		"process_",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestLint(t *testing.T) {
	m := New(Config{
		Version:   "1",
		Rotations: func() map[string]map[string]int { return map[string]map[string]int{"default": {"applied": 1}} },
		Certificates: func() []CertExpiry {
			return []CertExpiry{{Target: "default", Thumbprint: "A", KeyID: "k", NotAfter: t0}}
		},
		CredentialNotAfter: func() time.Time { return t0 },
		LastSync:           func() map[string]time.Time { return map[string]time.Time{"default": t0} },
	})
	m.GraphRequest("get", "ok")
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "certagent_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m := New(Config{Rotations: func() map[string]map[string]int { return map[string]map[string]int{"default": {"applied": 1}} }})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				m.GraphRequest("get", "ok")
				m.IntakeFile("rejected", "expired")
			}
			if i%2 == 0 {
				rec := httptest.NewRecorder()
				m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.graph.WithLabelValues("get", "ok")); got != 800 {
		t.Errorf("graph get ok = %v, want 800", got)
	}
}
