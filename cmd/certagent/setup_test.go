package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// setupEnv is an emulated tenant that holds only the provider's app(s) and an administrator,
// and a config that names the emulator (as an admin or the MSI would leave it before setup).
type setupEnv struct {
	t      *testing.T
	emu    *emulator.Emulator
	dir    string
	config string
	hc     *http.Client
}

func newSetupEnv(t *testing.T, apps []string, opts ...emulator.Option) *setupEnv {
	t.Helper()
	now := time.Now()
	var seedApps []emulator.SeedApplication
	for _, name := range apps {
		seedApps = append(seedApps, emulator.SeedApplication{DisplayName: name, KeyCredentials: []emulator.SeedKeyCredential{{
			Certificate: certtest.New(now, certtest.CommonName("AUCloud VB365 old"), certtest.ValidFor(20*24*time.Hour)).DER,
		}}})
	}
	seed := emulator.Seed{
		Domain:       "contoso.onmicrosoft.com",
		Users:        []emulator.SeedUser{{UserPrincipalName: "admin", DirectoryRoles: []string{emulator.DirectoryRoleGlobalAdmin}}},
		Applications: seedApps,
	}
	dir := t.TempDir()
	emu, err := emulator.New(filepath.Join(dir, "emulator"), append([]emulator.Option{emulator.WithSeed(seed),
		emulator.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: emu.CertPool()}}
	t.Cleanup(func() { tr.CloseIdleConnections(); emu.Close() })
	env := &setupEnv{t: t, emu: emu, dir: dir, config: filepath.Join(dir, "certagent.yaml"), hc: &http.Client{Transport: tr}}
	cfg := fmt.Sprintf(`# prepared before setup
cloud:
  name: custom
  authority_host: %s/
  graph_url: %s
  ca_file: %s
auth:
  key_bits: 2048
state_dir: %s
drop_folder: %s
intake:
  settle: 150ms
`, emu.URL(), emu.URL(), emu.CAFile(), filepath.Join(dir, "state"), filepath.Join(dir, "drop"))
	if err := os.WriteFile(env.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// approveDeviceCodes approves, as the administrator, every device code a client asks for,
// through the emulator's control route (as a person at the sign-in page would), until the
// test ends.
func (env *setupEnv) approveDeviceCodes() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	env.t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, dc := range env.emu.DeviceCodes() {
				if dc.State != "pending" {
					continue
				}
				body, _ := json.Marshal(map[string]any{"userCode": dc.UserCode, "user": "admin"})
				resp, err := env.hc.Post(env.emu.URL()+"/_emulator/devicecode/approve", "application/json", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

// tenantState returns the emulated tenant as GET /_emulator/state shows it, without the
// sign-in statistics (a check signs in; that changes no object).
func (env *setupEnv) tenantState() string {
	env.t.Helper()
	resp, err := env.hc.Get(env.emu.URL() + "/_emulator/state")
	if err != nil {
		env.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Tenants []struct {
			Applications json.RawMessage `json:"applications"`
			Users        json.RawMessage `json:"users"`
		} `json:"tenants"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		env.t.Fatal(err)
	}
	out, _ := json.Marshal(st)
	return string(out)
}

func (env *setupEnv) app(name string) emulator.ApplicationView {
	env.t.Helper()
	for _, a := range env.emu.State().Tenants[0].Applications {
		if a.DisplayName == name {
			return a
		}
	}
	env.t.Fatalf("no application %q", name)
	return emulator.ApplicationView{}
}

func (env *setupEnv) setup(stdin string, args ...string) (string, string, int) {
	env.t.Helper()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	all := append([]string{"setup", "-c", env.config, "--tenant", env.emu.TenantID()}, args...)
	code := exitCode(e, dispatch(context.Background(), e, all))
	env.t.Logf("certagent %s: exit %d\n%s%s", strings.Join(all, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// TestSetupFromEmptyTenant: from a tenant holding only the provider's app and an
// administrator, a dry run changes nothing and prints every call; setup (device code approved
// by the test) leaves an agent that signs in and completes a rotation; a second run changes
// nothing.
func TestSetupFromEmptyTenant(t *testing.T) {
	const provider = "Veeam Backup for Microsoft 365"
	// New keys sign in only 2 s after they are added, as on Entra (shorter): setup waits.
	env := newSetupEnv(t, []string{provider}, emulator.WithSignInPropagation(2*time.Second, 0))
	env.approveDeviceCodes()
	before := env.tenantState()
	cfgBefore, _ := os.ReadFile(env.config)

	out, _, code := env.setup("", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d", code)
	}
	if env.tenantState() != before {
		t.Error("the dry run changed the tenant")
	}
	if b, _ := os.ReadFile(env.config); !bytes.Equal(b, cfgBefore) {
		t.Error("the dry run changed the config")
	}
	if _, err := os.Stat(filepath.Join(env.dir, "state", "agent.key")); err == nil {
		t.Error("the dry run created the key pair")
	}
	for _, want := range []string{"POST " + env.emu.URL() + "/v1.0/applications", "/appRoleAssignedTo", "/owners/$ref",
		"PATCH " + env.emu.URL() + "/v1.0/applications/", "az ad app create", "az ad app owner add", "New-MgApplication",
		"New-MgServicePrincipalAppRoleAssignment", "New-MgApplicationOwnerByRef", "Update-MgApplication"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not print %q", want)
		}
	}

	out, _, code = env.setup("", "--yes")
	if code != 0 {
		t.Fatalf("setup: exit %d", code)
	}
	if !strings.Contains(out, "To sign in, use a web browser") || !strings.Contains(out, "Signed in as admin@contoso.onmicrosoft.com") ||
		!strings.Contains(out, "waiting for Entra ID to catch up") || !strings.Contains(out, "Setup is done") {
		t.Errorf("setup's output lacks the sign-in, the wait or the end")
	}
	cfg, err := config.Load(env.config)
	if err != nil {
		t.Fatalf("the config setup wrote does not load: %v", err)
	}
	if b, _ := os.ReadFile(env.config); !strings.Contains(string(b), "# prepared before setup") || cfg.Auth.KeyBits != 2048 {
		t.Error("setup did not keep the config's other keys")
	}
	target := env.app(provider)
	agentApp := env.app(onboardDefaultAgentName)
	if cfg.TenantID != env.emu.TenantID() || cfg.Auth.ClientID != agentApp.AppID || cfg.Target.AppID != target.AppID {
		t.Errorf("config: tenant %s client %s target %s", cfg.TenantID, cfg.Auth.ClientID, cfg.Target.AppID)
	}
	if !slices.Contains(agentApp.Roles, emulator.RoleApplicationReadWriteOwned) {
		t.Errorf("agent roles = %v", agentApp.Roles)
	}
	owns := func(a emulator.ApplicationView) bool {
		return slices.ContainsFunc(a.Owners, func(o emulator.OwnerView) bool { return o.AppID == agentApp.AppID })
	}
	if !owns(target) || !owns(agentApp) {
		t.Errorf("owners: target %+v, agent %+v", target.Owners, agentApp.Owners)
	}

	// A second run finds everything and changes nothing.
	before = env.tenantState()
	cfgBefore, _ = os.ReadFile(env.config)
	out, _, code = env.setup("", "--yes")
	if code != 0 || !strings.Contains(out, "nothing to change") {
		t.Errorf("second run: exit %d", code)
	}
	if env.tenantState() != before {
		t.Error("the second run changed the tenant")
	}
	if b, _ := os.ReadFile(env.config); !bytes.Equal(b, cfgBefore) {
		t.Error("the second run changed the config")
	}

	// The agent, as setup left it, signs in and puts a provider certificate on the app.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{Config: cfg, Version: "test", Listener: ln,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
		a.Close()
	}()
	next := certtest.New(time.Now(), certtest.CommonName("AUCloud VB365 next"), certtest.ValidFor(365*24*time.Hour))
	if err := os.MkdirAll(cfg.DropFolder, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DropFolder, "next.cer"), next.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := certs.ThumbprintSHA1(next.DER)
	deadline := time.Now().Add(30 * time.Second)
	for {
		app := env.app(provider)
		if slices.ContainsFunc(app.KeyCredentials, func(k emulator.KeyCredentialView) bool { return k.Thumbprint == want }) {
			if len(app.KeyCredentials) != 2 {
				t.Errorf("the provider's app holds %d certificates, want the old one and the new one", len(app.KeyCredentials))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not put the provider's new certificate on the app")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const onboardDefaultAgentName = "certagent"

// TestSetupLookalikes: two apps named alike make setup ask, and refuse under --yes without
// --provider-app.
func TestSetupLookalikes(t *testing.T) {
	env := newSetupEnv(t, []string{"Veeam Backup for Microsoft 365", "Veeam Backup for Microsoft 365 (staging)"})
	env.approveDeviceCodes()
	before := env.tenantState()
	out, errText, code := env.setup("", "--yes")
	if code != 1 || !strings.Contains(errText, "--provider-app") || !strings.Contains(out, env.app("Veeam Backup for Microsoft 365 (staging)").AppID) {
		t.Errorf("--yes with two matches: exit %d", code)
	}
	if env.tenantState() != before {
		t.Error("a refused run changed the tenant")
	}
	// At a console: the person picks the second and confirms.
	_, _, code = env.setup("2\ny\n")
	cfg, err := config.Load(env.config)
	if code != 0 || err != nil || cfg.Target.AppID != env.app("Veeam Backup for Microsoft 365 (staging)").AppID {
		t.Errorf("asked: exit %d, %v", code, err)
	}
}

// TestSetupDeclined: answering no changes nothing and exits 1.
func TestSetupDeclined(t *testing.T) {
	env := newSetupEnv(t, []string{"Veeam Backup for Microsoft 365"})
	env.approveDeviceCodes()
	before := env.tenantState()
	if _, _, code := env.setup("n\n"); code != 1 || env.tenantState() != before {
		t.Errorf("declined: exit %d", code)
	}
}

func TestSetupUsage(t *testing.T) {
	dir := t.TempDir()
	if _, errText, code := runCmd(t, "setup", "-c", filepath.Join(dir, "none.yaml")); code != 2 || !strings.Contains(errText, "--tenant") {
		t.Errorf("setup without a tenant: exit %d: %s", code, errText)
	}
	if _, _, code := runCmd(t, "setup", "extra"); code != 2 {
		t.Errorf("setup with an argument: exit %d", code)
	}
}

// TestSetupUseAz: --use-az signs in with the Azure CLI's login through azidentity's
// AzureCLICredential (`az account get-access-token`). A fake az on PATH prints a token the
// emulator minted for the administrator through the Azure CLI's client; the real azure-cli
// logged in as a user against the emulator is not exercised (docs/graph.md).
func TestSetupUseAz(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake az is a shell script")
	}
	env := newSetupEnv(t, []string{"Veeam Backup for Microsoft 365"})
	tok, exp, err := env.emu.UserAccessToken("admin", emulator.AzureCLIClientID, env.emu.URL(),
		[]string{emulator.ScopeApplicationReadWriteAll, emulator.ScopeAppRoleAssignmentReadWrite, emulator.ScopeDirectoryAccessAsUserAll})
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	out, _ := json.Marshal(map[string]any{"accessToken": tok, "expires_on": exp.Unix(), "tokenType": "Bearer"})
	script := fmt.Sprintf("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n", out)
	if err := os.WriteFile(filepath.Join(bin, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	text, _, code := env.setup("", "--use-az", "--yes")
	if code != 0 || !strings.Contains(text, "with the Azure CLI's login") || !strings.Contains(text, "Setup is done") {
		t.Errorf("setup --use-az: exit %d", code)
	}
	if len(env.emu.DeviceCodes()) != 0 {
		t.Error("setup --use-az asked for a device code")
	}
}

// TestDevSetup: `certagent dev --setup` starts from a tenant holding only the provider's app,
// runs setup (the emulator approving the device code) and then the agent on what setup wrote.
func TestDevSetup(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- exitCode(e, dispatch(ctx, e, []string{"dev", "--setup", "--dir", dir, "--listen", "127.0.0.1:0"}))
	}()
	var info struct {
		TenantID    string `json:"tenantId"`
		TargetAppID string `json:"targetAppId"`
		AgentAppID  string `json:"agentAppId"`
		ConfigFile  string `json:"configFile"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "dev.json")); err == nil && json.Unmarshal(b, &info) == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("dev --setup wrote no dev.json\n%s%s", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("dev --setup: exit %d\n%s", code, errb.String())
	}
	cfg, err := config.Load(info.ConfigFile)
	if err != nil || info.TargetAppID == "" || cfg.Target.AppID != info.TargetAppID || cfg.Auth.ClientID != info.AgentAppID || info.AgentAppID == "" {
		t.Errorf("dev.json %+v, config %v", info, err)
	}
	if !strings.Contains(out.String(), "Setup is done") {
		t.Errorf("dev --setup did not run setup:\n%s", out.String())
	}
}
