package azcli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/e2e"
)

// TestSetupAgentOwnsProviderApp runs `certagent setup` (the binary, the device code approved
// by the emulator as the tenant's administrator) on a tenant that holds only the provider's
// app, then logs azure-cli in as the agent, with the key pair setup made: az sees the agent
// among the owners of the provider's app. A second client that nobody here wrote agrees with
// what setup did.
func TestSetupAgentOwnsProviderApp(t *testing.T) {
	e2e.BuildInBackground()
	seed := emulator.Seed{
		Domain:       "contoso.onmicrosoft.com",
		Users:        []emulator.SeedUser{{UserPrincipalName: "admin", DirectoryRoles: []string{emulator.DirectoryRoleGlobalAdmin}}},
		Applications: []emulator.SeedApplication{{DisplayName: "Veeam Backup for Microsoft 365"}},
	}
	dir := t.TempDir()
	emu, err := emulator.New(filepath.Join(dir, "emulator"), emulator.WithSeed(seed), emulator.WithDeviceCodeAutoApprove("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	cfgFile := filepath.Join(dir, "certagent.yaml")
	cfgText := fmt.Sprintf("cloud:\n  name: custom\n  authority_host: %s/\n  graph_url: %s\n  ca_file: %s\nauth:\n  key_bits: 2048\nstate_dir: %s\n",
		emu.URL(), emu.URL(), emu.CAFile(), filepath.Join(dir, "state"))
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Binary(t), "setup", "-c", cfgFile, "--tenant", emu.TenantID(), "--yes")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("certagent setup: %v\n%s", err, out)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatalf("the config setup wrote: %v\n%s", err, out)
	}
	var provider, agentApp emulator.ApplicationView
	for _, a := range emu.State().Tenants[0].Applications {
		switch a.AppID {
		case cfg.Target.AppID:
			provider = a
		case cfg.Auth.ClientID:
			agentApp = a
		}
	}
	if provider.AppID == "" || agentApp.ServicePrincipalID == "" {
		t.Fatalf("setup left provider %+v, agent %+v\n%s", provider, agentApp, out)
	}

	// az logs in as the agent with its certificate and key (one PEM file, as az takes it).
	certPEM, err := os.ReadFile(cfg.Auth.CertificateFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(cfg.Auth.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	both := writeTemp(t, t.TempDir(), "agent-login.pem", append(certPEM, keyPEM...))
	az := newCLI(t, emu, false)
	if _, _, err := az.Login(ctx, cfg.Auth.ClientID, both, emu.TenantID()); err != nil {
		t.Fatalf("az login as the agent: %v\n%s", err, transcript(az))
	}
	owners, _, err := az.ListAppOwners(ctx, provider.AppID)
	if err != nil {
		t.Fatalf("az ad app owner list: %v\n%s", err, transcript(az))
	}
	if !slices.ContainsFunc(owners, func(o DirectoryObject) bool {
		return o.ID == agentApp.ServicePrincipalID && o.AppID == cfg.Auth.ClientID && o.ODataType == "#microsoft.graph.servicePrincipal"
	}) {
		t.Errorf("az ad app owner list --id %s = %+v; want the agent's service principal %s", provider.AppID, owners, agentApp.ServicePrincipalID)
	}
	if stray := az.StrayCalls(); len(stray) > 0 {
		t.Errorf("az tried to leave the machine: %v", stray)
	}
}
