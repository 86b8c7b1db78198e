package azcli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/e2e"
)

// This file runs the certagent binary against the demo tenant with internal/e2e's harness
// (the emulator in this process, the agent as a child process), plus the few helpers the az
// tests need on top.

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.RemoveBinary() // waits for a build still running
	os.Exit(code)
}

// newEnv returns a fresh demo tenant, with the agent's own credential registered on its app
// and a config for the agent.
func newEnv(tb testing.TB) *e2e.Env {
	tb.Helper()
	return e2e.NewEnv(tb, func(c *config.Config) {
		c.Auth.KeyBits = 2048 // quicker to generate than the default; the size is not under test here
		// A short settle window keeps the drop-folder step quick; settling is tested in
		// agent/intake.
		c.Intake.Settle = config.Duration(150 * time.Millisecond)
	})
}

// startAgent runs certagent for env. proxyURL goes into its proxy variables, so that a call
// off loopback would fail.
func startAgent(env *e2e.Env, proxyURL string) *e2e.Agent {
	return env.StartAgent(
		e2e.WithEnv("HTTPS_PROXY="+proxyURL, "HTTP_PROXY="+proxyURL, "NO_PROXY=127.0.0.1,localhost"),
		e2e.WithActor("azcli-test"),
	)
}

// application returns the application appID as emu holds it.
func application(tb testing.TB, emu *emulator.Emulator, appID string) emulator.ApplicationView {
	tb.Helper()
	a, err := emu.Application(appID)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// requestLog renders emu's request log from index from on, one line a request.
func requestLog(emu *emulator.Emulator, from int) string {
	reqs := emu.Requests()
	var b strings.Builder
	for i := from; i < len(reqs); i++ {
		r := reqs[i]
		q := ""
		if r.Query != "" {
			q = "?" + r.Query
		}
		fmt.Fprintf(&b, "  %s %-6s %s%s -> %d", r.Time.Format("15:04:05.000"), r.Method, r.Path, q, r.Status)
		if r.ErrorCode != "" {
			fmt.Fprintf(&b, " %s", r.ErrorCode)
		}
		if r.Fault != "" {
			fmt.Fprintf(&b, " fault=%q", r.Fault)
		}
		fmt.Fprintf(&b, " app=%s ua=%q\n", r.AppID, r.UserAgent)
	}
	return b.String()
}

// settled reports whether a rotation state is final for a submission: applied or later, or
// refused.
func settled(state string) bool {
	switch state {
	case "applied", "confirmed", "failed", "rejected":
		return true
	}
	return false
}

// waitSettled polls the rotation id until it is settled and returns it; it fails tb.
func waitSettled(tb testing.TB, a *e2e.Agent, id string, d time.Duration) apitype.Rotation {
	tb.Helper()
	var r apitype.Rotation
	a.WaitForT(tb, "rotation "+id+" to be applied", d, func() bool {
		var err error
		r, err = a.Client.Rotation(context.Background(), id)
		if err != nil {
			tb.Fatalf("reading rotation %s: %v", id, err)
		}
		return settled(r.State)
	})
	return r
}

// waitThumbprint waits until the agent has a settled rotation for thumbprint and returns it;
// it fails tb. (e2e's WaitRotation waits for one state, so a refusal would only time out.)
func waitThumbprint(tb testing.TB, a *e2e.Agent, thumbprint string, d time.Duration) apitype.Rotation {
	tb.Helper()
	var found apitype.Rotation
	a.WaitForT(tb, "a rotation of "+thumbprint, d, func() bool {
		rs, err := a.Client.Rotations(context.Background(), "")
		if err != nil {
			tb.Fatalf("listing rotations: %v", err)
		}
		for _, r := range rs {
			if r.Certificate.Thumbprint == thumbprint && settled(r.State) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// thumbprintsOf returns the thumbprints of creds, in order.
func thumbprintsOf(creds []emulator.KeyCredentialView) []string {
	var out []string
	for _, c := range creds {
		out = append(out, c.Thumbprint)
	}
	return out
}

// count returns how many of creds hold the certificate der.
func count(creds []emulator.KeyCredentialView, der []byte) int {
	thumb := certs.ThumbprintSHA1(der)
	n := 0
	for _, c := range creds {
		if c.Thumbprint == thumb {
			n++
		}
	}
	return n
}

// TestCredentialInitJSON runs `certagent credential init --json` as an admin does before
// registering the agent's credential (the az test's agent gets its credential from devenv,
// which calls the same code without the command): the first run creates a certificate and
// says where, the second finds it and leaves it alone.
func TestCredentialInitJSON(t *testing.T) {
	// Parallel: it runs after the serial tests, by when the az test has built the binary
	// while az set itself up.
	t.Parallel()
	e2e.BuildInBackground() // overlaps the tenant's set-up when run alone
	env := newEnv(t)
	dir := t.TempDir()
	cfg := *env.Config
	cfg.File = filepath.Join(dir, "certagent.yaml")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Auth.CertificateFile = filepath.Join(cfg.StateDir, "agent.pem")
	cfg.Auth.KeyFile = filepath.Join(cfg.StateDir, "agent.key")
	cfg.API.TokenFile = filepath.Join(cfg.StateDir, "api.token")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("agent config: %v", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.File, b, 0o600); err != nil {
		t.Fatal(err)
	}

	type initOut struct {
		Created         bool   `json:"created"`
		CertificateFile string `json:"certificateFile"`
		Certificate     struct {
			Thumbprint string `json:"thumbprint"`
		} `json:"certificate"`
	}
	run := func() initOut {
		t.Helper()
		out, err := exec.Command(e2e.Binary(t), "credential", "init", "-c", cfg.File, "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("certagent credential init: %v\n%s", err, out)
		}
		var o initOut
		if err := json.Unmarshal(out, &o); err != nil || o.CertificateFile == "" {
			t.Fatalf("certagent credential init --json printed %q: %v", out, err)
		}
		return o
	}
	first := run()
	if !first.Created || first.CertificateFile != cfg.Auth.CertificateFile {
		t.Errorf("first credential init: created %v, certificateFile %s; want true, %s", first.Created, first.CertificateFile, cfg.Auth.CertificateFile)
	}
	thumb := certs.ThumbprintSHA1(readCertFile(t, first.CertificateFile))
	if first.Certificate.Thumbprint != thumb {
		t.Errorf("credential init --json names thumbprint %s, the certificate it wrote has %s", first.Certificate.Thumbprint, thumb)
	}
	again := run()
	if again.Created || again.Certificate.Thumbprint != thumb {
		t.Errorf("second credential init: created %v, thumbprint %s; want false, %s (the one made first)", again.Created, again.Certificate.Thumbprint, thumb)
	}
}

// readCertFile returns the DER of the certificate in path (PEM or DER).
func readCertFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}
