package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/emulator"
)

// adminEnv is newEnv plus the provider's app and users: "admin" (Global Administrator) and
// "appadmin" (Application Administrator).
func adminEnv(t *testing.T) *env {
	t.Helper()
	env := newEnv(t)
	if _, err := env.e.AddApplication("", emulator.SeedApplication{DisplayName: "Veeam Backup for Microsoft 365"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []emulator.SeedUser{
		{UserPrincipalName: "admin", DirectoryRoles: []string{emulator.DirectoryRoleGlobalAdmin}},
		{UserPrincipalName: "appadmin", DirectoryRoles: []string{emulator.DirectoryRoleApplicationAdmin}},
	} {
		if _, err := env.e.AddUser("", u); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range env.e.State().Tenants[0].Applications {
		env.apps[a.DisplayName] = a
	}
	return env
}

// admin returns an Admin that signs in with the device code flow, the code approved by user
// as soon as it is shown (through the emulator's control route, as a person would).
func (env *env) admin(t *testing.T, user string) (*graph.Admin, *[]graph.DeviceCodePrompt) {
	t.Helper()
	var prompts []graph.DeviceCodePrompt
	a, err := graph.NewAdmin(graph.AdminConfig{
		Config: graph.Config{
			TenantID: env.tenant, AuthorityHost: env.e.URL() + "/", GraphURL: env.e.URL(),
			RootCAs: env.e.CertPool(), Timeout: 20 * time.Second,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
		DeviceCode: func(ctx context.Context, p graph.DeviceCodePrompt) error {
			prompts = append(prompts, p)
			go func() {
				time.Sleep(200 * time.Millisecond) // the client polls at least once before
				if err := env.e.ApproveDeviceCode(p.UserCode, user, nil); err != nil {
					t.Errorf("approving %s: %v", p.UserCode, err)
				}
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.CloseIdleConnections)
	return a, &prompts
}

func TestAdminOnboardingOperations(t *testing.T) {
	env := adminEnv(t)
	ctx := context.Background()
	a, prompts := env.admin(t, "admin")
	user, err := a.SignIn(ctx)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	if !strings.HasPrefix(user, "admin@") || len(*prompts) != 1 || !strings.Contains((*prompts)[0].Message, (*prompts)[0].UserCode) {
		t.Errorf("SignIn = %q, prompts %+v", user, *prompts)
	}
	// The device code request asked for the two scopes only (plus OpenID Connect's).
	for _, dc := range env.e.DeviceCodes() {
		if !slices.Equal(dc.Scopes, graph.AdminScopes) || dc.ClientID != graph.GraphCommandLineToolsClientID {
			t.Errorf("device code flow = %+v, want scopes %v", dc, graph.AdminScopes)
		}
	}

	found, err := a.FindApplications(ctx, "veeam backup")
	if err != nil || len(found) != 1 || found[0].DisplayName != "Veeam Backup for Microsoft 365" {
		t.Fatalf("FindApplications = %+v, %v", found, err)
	}
	provider := found[0]
	if none, err := a.ApplicationsNamed(ctx, "certagent it's mine"); err != nil || len(none) != 0 {
		t.Errorf("ApplicationsNamed = %v, %v", none, err)
	}

	app, err := a.CreateApplication(ctx, "certagent it's mine")
	if err != nil {
		t.Fatal(err)
	}
	if named, err := a.ApplicationsNamed(ctx, "certagent it's mine"); err != nil || len(named) != 1 || named[0].AppID != app.AppID {
		t.Errorf("ApplicationsNamed after create = %+v, %v", named, err)
	}
	if _, found, err := a.ServicePrincipal(ctx, app.AppID); err != nil || found {
		t.Errorf("service principal before creation: found %v, %v", found, err)
	}
	sp, err := a.CreateServicePrincipal(ctx, app.AppID)
	if err != nil || sp.AppID != app.AppID {
		t.Fatalf("CreateServicePrincipal = %+v, %v", sp, err)
	}
	if again, err := a.CreateServicePrincipal(ctx, app.AppID); err != nil || again.ID != sp.ID {
		t.Errorf("second CreateServicePrincipal = %+v, %v; want the existing one", again, err)
	}
	graphSP, found2, err := a.ServicePrincipal(ctx, graph.GraphAppID)
	if err != nil || !found2 {
		t.Fatalf("Graph's service principal: %v %v", found2, err)
	}
	roleID, ok := graphSP.AppRoleID(graph.OwnedByRole)
	if !ok || roleID != graph.OwnedByRoleID {
		t.Fatalf("Graph's %s app role = %q, %v", graph.OwnedByRole, roleID, ok)
	}
	ar, err := a.AssignAppRole(ctx, sp.ID, graphSP.ID, roleID)
	if err != nil || !ar.Grants(graphSP.ID, roleID) || ar.PrincipalID != sp.ID {
		t.Fatalf("AssignAppRole = %+v, %v", ar, err)
	}
	if again, err := a.AssignAppRole(ctx, sp.ID, graphSP.ID, roleID); err != nil || again.ID != ar.ID {
		t.Errorf("second AssignAppRole = %+v, %v; want the existing one", again, err)
	}
	if list, err := a.AppRoleAssignments(ctx, sp.ID); err != nil || len(list) != 1 || list[0].ID != ar.ID {
		t.Errorf("AppRoleAssignments = %+v, %v", list, err)
	}
	for range 2 { // AddOwner is idempotent although Graph is not
		if err := a.AddOwner(ctx, provider.ObjectID, sp.ID); err != nil {
			t.Fatalf("AddOwner: %v", err)
		}
	}
	owners, err := a.Owners(ctx, provider.ObjectID)
	if err != nil || len(owners) != 1 || owners[0].Type != certs.ObjectServicePrincipal || owners[0].AppID != app.AppID {
		t.Errorf("Owners = %+v, %v", owners, err)
	}
	mine, err := a.Owners(ctx, app.ObjectID)
	if err != nil || len(mine) != 1 || mine[0].Type != certs.ObjectUser || !strings.HasPrefix(mine[0].UserPrincipalName, "admin@") {
		t.Errorf("owners of the new app = %+v, %v", mine, err)
	}

	// The agent's certificate, uploaded to its own app by the administrator.
	cert := env.certs["foreign"]
	err = a.Replace(ctx, app.ObjectID, []certs.KeyCredential{{KeyID: "6f0c6ac4-2a77-4c5e-9c9f-1e0e3c8f0a11", Type: certs.KeyTypeX509Cert,
		Usage: certs.KeyUsageVerify, Key: cert.DER, DisplayName: "certagent"}})
	if err != nil {
		t.Fatal(err)
	}
	read, found3, err := a.Application(ctx, app.AppID)
	if err != nil || !found3 || len(read.KeyCredentials) != 1 || read.KeyCredentials[0].Thumbprint() != certs.ThumbprintSHA1(cert.DER) {
		t.Errorf("Application = %+v, %v, %v", read, found3, err)
	}
	if _, found, err := a.Application(ctx, "0c2c4a9d-5f1c-4d6e-8f4e-7d4b8e3c2a10"); err != nil || found {
		t.Errorf("unknown application: found %v, %v", found, err)
	}
	// One sign-in served every call: no second device code.
	if len(*prompts) != 1 {
		t.Errorf("%d device code prompts, want 1", len(*prompts))
	}
}

// TestAdminRoleRefusal: an Application Administrator cannot grant Microsoft Graph's app
// roles; the error says what is needed.
func TestAdminRoleRefusal(t *testing.T) {
	env := adminEnv(t)
	ctx := context.Background()
	a, _ := env.admin(t, "appadmin")
	if _, err := a.SignIn(ctx); err != nil {
		t.Fatal(err)
	}
	graphSP, _, err := a.ServicePrincipal(ctx, graph.GraphAppID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.AssignAppRole(ctx, env.apps["foreign"].ServicePrincipalID, graphSP.ID, graph.OwnedByRoleID)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.StatusCode != 403 || !strings.Contains(ge.Reason().Message, "Privileged Role Administrator") {
		t.Errorf("AssignAppRole as an Application Administrator = %v", err)
	}
}

// TestAdminDeviceCodeExpired: a code nobody enters ends the sign-in when it expires, and the
// error says what to do.
func TestAdminDeviceCodeExpired(t *testing.T) {
	env := newEnv(t, emulator.WithDeviceCodeLifetime(time.Second))
	a, err := graph.NewAdmin(graph.AdminConfig{
		Config:     graph.Config{TenantID: env.tenant, AuthorityHost: env.e.URL() + "/", GraphURL: env.e.URL(), RootCAs: env.e.CertPool()},
		DeviceCode: func(context.Context, graph.DeviceCodePrompt) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = a.SignIn(ctx)
	var ge *graph.Error
	if !errors.As(err, &ge) || !ge.SignIn || !strings.Contains(ge.Reason().Message, "expired") {
		t.Errorf("SignIn with a code nobody entered = %v", err)
	}
}

// TestAdminAzureCLI: --use-az takes the Azure CLI's login through azidentity's
// AzureCLICredential, which runs `az account get-access-token`. A fake az on PATH prints a
// token the emulator minted for the admin through the Azure CLI's client, and records its
// arguments.
func TestAdminAzureCLI(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake az is a shell script")
	}
	env := adminEnv(t)
	tok, exp, err := env.e.UserAccessToken("admin", emulator.AzureCLIClientID, env.e.URL(),
		[]string{emulator.ScopeApplicationReadWriteAll, emulator.ScopeAppRoleAssignmentReadWrite, emulator.ScopeDirectoryAccessAsUserAll})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, _ := json.Marshal(map[string]any{"accessToken": tok, "expiresOn": exp.Local().Format("2006-01-02 15:04:05.000000"),
		"expires_on": exp.Unix(), "tenant": env.tenant, "tokenType": "Bearer"})
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\ncat <<'EOF'\n%s\nEOF\n", filepath.Join(dir, "args"), out)
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	a, err := graph.NewAdmin(graph.AdminConfig{
		Config:      graph.Config{TenantID: env.tenant, AuthorityHost: env.e.URL() + "/", GraphURL: env.e.URL(), RootCAs: env.e.CertPool()},
		UseAzureCLI: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	user, err := a.SignIn(context.Background())
	if err != nil || !strings.HasPrefix(user, "admin@") {
		t.Fatalf("SignIn = %q, %v", user, err)
	}
	found, err := a.FindApplications(context.Background(), "Veeam")
	if err != nil || len(found) != 1 {
		t.Errorf("FindApplications with the Azure CLI's token = %+v, %v", found, err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if want := "account get-access-token -o json --resource " + env.e.URL() + " --tenant " + env.tenant; !strings.Contains(string(args), want) {
		t.Errorf("az was run with %q, want %q", args, want)
	}

	// No az login: azidentity reports az's message, and the error says what to do.
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte("#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := graph.NewAdmin(graph.AdminConfig{
		Config:      graph.Config{TenantID: env.tenant, AuthorityHost: env.e.URL() + "/", GraphURL: env.e.URL(), RootCAs: env.e.CertPool()},
		UseAzureCLI: true,
	})
	_, err = b.SignIn(context.Background())
	var ge *graph.Error
	if !errors.As(err, &ge) || !strings.Contains(ge.Reason().Message, "az login") {
		t.Errorf("SignIn without an az login = %v", err)
	}
}
