package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/emulator"
)

// runDoctorAt runs `certagent doctor --json` with the clock at now (nil: the real one).
func runDoctorAt(t *testing.T, cfgFile string, now func() time.Time) (map[string]check, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: now}
	code := exitCode(env, dispatch(context.Background(), env, []string{"doctor", "-c", cfgFile, "--json"}))
	return checkLines(t, out.String()), code, out.String()
}

// doctorAppB is a second target app that the agent does not own.
const doctorAppB = "b0000000-0000-4000-8000-0000000000dc"

var doctorChecks = []string{"config", "state folder", "drop folder", "token file", "credential", "store", "clock", "sign-in", "target app", "owner"}

// TestDoctor: doctor passes against `certagent dev`'s environment, with the agent running and
// stopped, and fails with the right line, and a fix, for each broken part.
func TestDoctor(t *testing.T) {
	env := testDevEnv(t, nil)
	cfg := env.Config
	ra := startRun(t, cfg)

	// Every line passes on a healthy environment; the rest of the test builds on that.
	lines, code, _ := runDoctorAt(t, cfg.File, nil)
	var bad []string
	for _, name := range doctorChecks {
		if l, ok := lines[name]; !ok || l.Status != statusOK {
			bad = append(bad, fmt.Sprintf("%q = %+v", name, l))
		}
	}
	if code != 0 || len(bad) > 0 {
		t.Fatalf("doctor with the dev agent running: exit %d, lines not ok: %s", code, strings.Join(bad, "; "))
	}
	if !strings.Contains(lines["store"].Message, "asked the agent") || !strings.Contains(lines["store"].Message, "ready") {
		t.Errorf("store line with the agent running = %q, want it to say it asked the agent", lines["store"].Message)
	}
	ra.stop()
	lines, code, _ = runDoctorAt(t, cfg.File, nil)
	if code != 0 || lines["store"].Status != statusOK || !strings.Contains(lines["store"].Message, "audit chain intact") {
		t.Errorf("doctor with the agent stopped: exit %d, store %+v", code, lines["store"])
	}

	c, err := credential.Load(agent.CredentialFiles(cfg))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := c.Cert.NotAfter
	unregistered := t.TempDir()
	if _, _, err := credential.Init(credential.Files{Cert: filepath.Join(unregistered, "agent.pem"), Key: filepath.Join(unregistered, "agent.key")}, credential.Options{CommonName: "not registered", Bits: 2048}); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(t.TempDir(), "not-a-folder")
	os.WriteFile(aFile, []byte("x"), 0o600)

	tests := []struct {
		name     string
		config   func(*config.Config)                // a changed copy of the config, when set
		break_   func(t *testing.T) (restore func()) // a change to the environment, when set
		now      func() time.Time                    // the clock, when set
		check    string                              // the line that must show it
		status   string
		contains []string // in the message or the fix
	}{
		{name: "wrong tenant", config: func(c *config.Config) { c.TenantID = "99999999-9999-4999-8999-999999999999" },
			check: "sign-in", status: statusFail, contains: []string{"90002", "tenant_id"}},
		{name: "unregistered agent certificate", config: func(c *config.Config) {
			c.Auth.CertificateFile, c.Auth.KeyFile = filepath.Join(unregistered, "agent.pem"), filepath.Join(unregistered, "agent.key")
		}, check: "sign-in", status: statusFail, contains: []string{"AADSTS700027", "Upload certificate"}},
		{name: "agent not an owner", break_: func(t *testing.T) func() {
			if err := env.Emulator.SetOwners(env.Info.TargetAppID); err != nil {
				t.Fatal(err)
			}
			return func() { env.Emulator.SetOwners(env.Info.TargetAppID, env.Info.AgentAppID) }
		}, check: "owner", status: statusFail, contains: []string{"not an owner", "Add owners"}},
		{name: "second target not owned", config: func(c *config.Config) {
			c.Targets = []config.Target{{Name: "exchange", AppID: c.Target.AppID}, {Name: "teams", AppID: doctorAppB}}
			c.Target = config.Target{}
		}, break_: func(t *testing.T) func() {
			if _, err := env.Emulator.Application(doctorAppB); err != nil {
				if _, err := env.Emulator.AddApplication(env.Info.TenantID, emulator.SeedApplication{DisplayName: "Veeam Teams backup", AppID: doctorAppB}); err != nil {
					t.Fatal(err)
				}
			}
			return func() {}
		}, check: "owner (teams)", status: statusFail, contains: []string{"not an owner", "Veeam Teams backup"}},
		{name: "second target's app missing", config: func(c *config.Config) {
			c.Targets = []config.Target{{Name: "exchange", AppID: c.Target.AppID}, {Name: "gone", AppID: "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}}
			c.Target = config.Target{}
		}, check: "target app (gone)", status: statusFail, contains: []string{"target gone", "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}},
		{name: "no Graph permission", break_: func(t *testing.T) func() {
			if err := env.Emulator.SetGraphRoles(env.Info.AgentAppID); err != nil {
				t.Fatal(err)
			}
			return func() { env.Emulator.SetGraphRoles(env.Info.AgentAppID, emulator.RoleApplicationReadWriteOwned) }
		}, check: "target app", status: statusFail, contains: []string{"Authorization_RequestDenied", "Application.ReadWrite.OwnedBy"}},
		{name: "expired credential", now: func() time.Time { return notAfter.Add(time.Hour) },
			check: "credential", status: statusFail, contains: []string{"expired", "credential init"}},
		{name: "credential due for renewal", now: func() time.Time { return notAfter.Add(-10 * 24 * time.Hour) },
			check: "credential", status: statusWarn, contains: []string{"renew_before"}},
		{name: "missing drop folder", config: func(c *config.Config) { c.DropFolder = filepath.Join(t.TempDir(), "gone") },
			check: "drop folder", status: statusFail, contains: []string{"does not exist", "drop_folder"}},
		{name: "drop folder is a file", config: func(c *config.Config) { c.DropFolder = aFile },
			check: "drop folder", status: statusFail, contains: []string{"not a folder"}},
		{name: "unwritable drop folder", break_: func(t *testing.T) func() {
			if os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			os.Chmod(cfg.DropFolder, 0o500)
			return func() { os.Chmod(cfg.DropFolder, 0o755) }
		}, check: "drop folder", status: statusFail, contains: []string{"cannot be created", "write access"}},
		{name: "token file 0644", break_: func(t *testing.T) func() {
			if err := os.Chmod(cfg.API.TokenFile, 0o644); err != nil {
				t.Fatal(err)
			}
			return func() { os.Chmod(cfg.API.TokenFile, 0o600) }
		}, check: "token file", status: statusFail, contains: []string{"0644", "chmod 600"}},
		{name: "clock skew", now: func() time.Time { return time.Now().Add(10 * time.Minute) },
			check: "clock", status: statusWarn, contains: []string{"ahead of", "5 minutes"}},
		{name: "damaged store", break_: func(t *testing.T) func() {
			path := agent.StorePath(cfg)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/3], 0o600)
			return func() { os.WriteFile(path, b, 0o600) }
		}, check: "store", status: statusFail, contains: []string{"cut short", "store rebuild"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := cfg.File
			if tc.config != nil {
				file = writeConfigCopy(t, cfg, tc.config)
			}
			if tc.break_ != nil {
				t.Cleanup(tc.break_(t))
			}
			lines, code, out := runDoctorAt(t, file, tc.now)
			l := lines[tc.check]
			if l.Status != tc.status {
				t.Errorf("line %q = %+v, want %s; doctor printed:\n%s", tc.check, l, tc.status, out)
			}
			for _, w := range tc.contains {
				if !strings.Contains(l.Message+" "+l.Fix, w) {
					t.Errorf("line %q lacks %q: %+v", tc.check, w, l)
				}
			}
			wantCode := 0
			if tc.status == statusFail {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			for _, name := range doctorChecks {
				if _, ok := lines[name]; !ok && !strings.Contains(tc.check, " (") {
					t.Errorf("no %q line", name)
				}
			}
			if strings.HasPrefix(tc.check, "owner (") || strings.HasPrefix(tc.check, "target app (") {
				// Each target has its lines; the first target's pass.
				for _, name := range []string{"target app (exchange)", "owner (exchange)"} {
					if l := lines[name]; l.Status != statusOK {
						t.Errorf("line %q = %+v, want ok", name, l)
					}
				}
			}
		})
	}

	t.Run("bad config", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(bad, []byte("tenant_id: x\napi:\n  listen: 0.0.0.0:1\n"), 0o600)
		lines, code, _ := runDoctorAt(t, bad, nil)
		if l := lines["config"]; code != 1 || l.Status != statusFail || !strings.Contains(l.Fix, "config check") {
			t.Errorf("doctor with a bad config: exit %d, %+v", code, l)
		}
	})
	t.Run("text", func(t *testing.T) {
		out, _, code := runCmd(t, "doctor", "-c", cfg.File)
		t.Logf("doctor:\n%s", out)
		if code != 0 || !strings.Contains(out, "ok    config") || !strings.Contains(out, "ok    owner") {
			t.Errorf("doctor text: exit %d\n%s", code, out)
		}
	})
}
