package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/devenv"
)

// agentWithApproval starts the agent in-process against an emulated tenant, with the given
// approval mode, and returns its config file.
func agentWithApproval(t *testing.T, approval string) string {
	t.Helper()
	env, err := devenv.Setup(devenv.Options{Dir: t.TempDir(), APIListen: "127.0.0.1:0", Edit: func(c *config.Config) {
		c.Intake.Settle = config.Duration(100 * time.Millisecond)
		c.Policy.Approval = approval
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	ln := env.APIListener
	env.APIListener = nil
	a, err := agent.New(agent.Options{Config: env.Config, Logger: slog.New(slog.DiscardHandler), Version: "test", Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	// The config names the listener's real address.
	cfg := env.Config
	cfg.API.Listen = ln.Addr().String()
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.File, b, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := runCmd(t, "status", "-c", cfg.File); code != 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cfg.File
}

// TestRotationVerbs: the yearly procedure from a shell: submit, see it waiting, approve,
// see it applied, confirm; refusals and wrong states exit 1 with the reason.
func TestRotationVerbs(t *testing.T) {
	cfgFile := agentWithApproval(t, config.ApprovalManual)
	dir := t.TempDir()
	now := time.Now()
	good := filepath.Join(dir, "provider-2027.cer")
	os.WriteFile(good, certtest.New(now, certtest.CommonName("AUCloud VB365 2027")).PEM(), 0o644)
	bad := filepath.Join(dir, "key.pem")
	c := certtest.New(now)
	os.WriteFile(bad, append(c.PEM(), c.KeyPEM()...), 0o644)

	out, _, code := runCmd(t, "submit", good, "-c", cfgFile, "--json")
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, out)
	}
	var res submitResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Outcome != "created" || res.Rotation == nil || res.Rotation.State != "pending_approval" {
		t.Fatalf("submit --json = %s (%v)", out, err)
	}
	id := res.Rotation.ID

	out, _, code = runCmd(t, "submit", good, bad, "-c", cfgFile)
	if code != 1 || !strings.Contains(out, "already known as rotation "+id) || !strings.Contains(out, "contains_private_key") {
		t.Errorf("submit of a known and a refused file: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "-----BEGIN") || strings.Contains(out, string(c.KeyPEM()[40:80])) {
		t.Errorf("submit echoed key material:\n%s", out)
	}

	// status: a rotation waits for approval (a warning): exit 1.
	if out, _, code := runCmd(t, "status", "-c", cfgFile); code != 1 || !strings.Contains(out, "awaiting_approval") {
		t.Errorf("status with a pending approval: exit %d\n%s", code, out)
	}

	out, _, code = runCmd(t, "rotations", "-c", cfgFile)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "pending_approval") || !strings.Contains(out, "AUCloud VB365 2027") {
		t.Errorf("rotations list: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCmd(t, "rotations", "confirm", id, "-c", cfgFile); code != 1 || !strings.Contains(errOut, "pending_approval") {
		t.Errorf("confirm before approval: exit %d, %s", code, errOut)
	}
	if out, _, code := runCmd(t, "rotations", "approve", id, "--note", "checked with AUCloud", "-c", cfgFile); code != 0 || !strings.Contains(out, "applying") && !strings.Contains(out, "applied") {
		t.Errorf("approve: exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ = runCmd(t, "rotations", "show", id, "-c", cfgFile, "--json")
		var r apitype.Rotation
		json.Unmarshal([]byte(out), &r)
		if r.State == "applied" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation not applied:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _, code = runCmd(t, "rotations", "list", "--state", "applied", "-c", cfgFile)
	if code != 0 || !strings.Contains(out, id) {
		t.Errorf("rotations list --state applied: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "rotations", "confirm", id, "--note", "emailed AUCloud", "-c", cfgFile)
	if code != 0 || !strings.Contains(out, "confirmed") || !strings.Contains(out, "emailed AUCloud") || !strings.Contains(out, "api:") {
		t.Errorf("confirm: exit %d\n%s", code, out)
	}
	if _, _, code := runCmd(t, "rotations", "show", "no-such-id", "-c", cfgFile); code != 1 {
		t.Errorf("show of an unknown id: exit %d, want 1", code)
	}
	for _, args := range [][]string{{"rotations", "approve"}, {"rotations", "frobnicate", "x"}, {"rotations", "list", "extra"}, {"submit"}} {
		if _, _, code := runCmd(t, append(args, "-c", cfgFile)...); code != 2 {
			t.Errorf("certagent %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestStatusExitCodes: 2 when the agent cannot be reached.
func TestStatusExitCodes(t *testing.T) {
	env := newStartupEnv(t) // a config whose agent does not run
	if _, errOut, code := runCmd(t, "status", "-c", env.config); code != 2 || !strings.Contains(errOut, "start the agent") {
		t.Errorf("status of an agent that never ran: exit %d, %s", code, errOut)
	}
	os.WriteFile(filepath.Join(env.state, "api.token"), []byte(strings.Repeat("ab", 32)), 0o600)
	if _, errOut, code := runCmd(t, "status", "-c", env.config); code != 2 || !strings.Contains(errOut, "not answering") {
		t.Errorf("status of a stopped agent: exit %d, %s", code, errOut)
	}
}
