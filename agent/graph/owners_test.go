package graph_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// TestOwners: the client lists an app's owners and names its own service principal, so a
// caller can tell whether the agent owns the app (certagent doctor).
func TestOwners(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	ctx := context.Background()
	sp, err := c.ServicePrincipalID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := env.apps["agent"].ServicePrincipalID; sp != want {
		t.Errorf("ServicePrincipalID = %s, want %s", sp, want)
	}
	owners, err := c.Owners(ctx, env.apps["target"].ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 1 || owners[0].ID != sp || owners[0].Type != "servicePrincipal" {
		t.Errorf("Owners(target) = %+v, want the agent's service principal", owners)
	}
	if owners, err := c.Owners(ctx, env.apps["foreign"].ObjectID); err != nil || len(owners) != 0 {
		t.Errorf("Owners(foreign) = %+v, %v; want none", owners, err)
	}
	_, err = c.Owners(ctx, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")
	var ge *graph.Error
	if !errors.As(err, &ge) || rotation.ErrorReason(err).Code != certs.AppNotFound || ge.Op != "owners" {
		t.Errorf("Owners(unknown) = %v, want an app_not_found *graph.Error", err)
	}

	// With a read permission, the owner's app id comes too.
	if err := env.e.SetGraphRoles(env.apps["agent"].AppID, emulator.RoleApplicationReadAll); err != nil {
		t.Fatal(err)
	}
	c2 := env.client(t)
	owners, err = c2.Owners(ctx, env.apps["target"].ObjectID)
	if err != nil || len(owners) != 1 || owners[0].AppID != env.apps["agent"].AppID || owners[0].DisplayName != "agent" {
		t.Errorf("Owners(target) with Application.Read.All = %+v, %v", owners, err)
	}
}

// TestServicePrincipalIDSignInFails: a certificate the app does not hold fails with the
// token endpoint's AADSTS700027.
func TestServicePrincipalIDSignInFails(t *testing.T) {
	env := newEnv(t)
	c := env.client(t, func(cfg *graph.Config) { cfg.Credential = newSource(env.certs["foreign"]) })
	_, err := c.ServicePrincipalID(context.Background())
	var ge *graph.Error
	if !errors.As(err, &ge) || !ge.SignIn || ge.AADSTS != 700027 {
		t.Errorf("ServicePrincipalID with an unregistered certificate = %v, want AADSTS700027", err)
	}
}

// TestClientInAnotherTenant: the agent's app signs in to a second tenant with its one
// credential (registered on its app in its home tenant) once it is multitenant and consented
// there, and then reads, owns and writes that tenant's app through its service principal
// there. Before, the sign-in fails with Entra's answer and a hint that names the tenant and
// the fix: AADSTS700016 while the app is single-tenant, AADSTS7000229 (admin consent) while it
// has no service principal there.
func TestClientInAnotherTenant(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	agent := env.apps["agent"]
	fabrikam, err := env.e.AddTenant(emulator.Seed{Domain: "fabrikam.onmicrosoft.com"})
	if err != nil {
		t.Fatal(err)
	}
	inB := func() *graph.Client { return env.client(t, func(cfg *graph.Config) { cfg.TenantID = fabrikam.ID }) }
	signInFails := func(code int, contains ...string) {
		t.Helper()
		_, err := inB().ServicePrincipalID(ctx)
		var ge *graph.Error
		if !errors.As(err, &ge) || !ge.SignIn || ge.AADSTS != code || rotation.ErrorReason(err).Code != certs.AuthFailed {
			t.Fatalf("sign-in to fabrikam = %v, want AADSTS%d auth_failed", err, code)
		}
		// What status shows: the reason's message, which ends with the hint.
		msg := rotation.ErrorReason(err).Message
		for _, s := range contains {
			if !strings.Contains(msg, s) {
				t.Errorf("reason %q lacks %q", msg, s)
			}
		}
	}
	signInFails(700016, fabrikam.ID, "multitenant", "admin consent")
	if err := env.e.SetSignInAudience(agent.AppID, emulator.SignInAudienceMultipleOrgs); err != nil {
		t.Fatal(err)
	}
	signInFails(7000229, fabrikam.ID, "adminconsent?client_id="+agent.AppID, "Application.ReadWrite.OwnedBy")

	sp, err := env.e.ConsentApplication(fabrikam.ID, agent.AppID, emulator.RoleApplicationReadWriteOwned)
	if err != nil {
		t.Fatal(err)
	}
	backup := certtest.New(env.now, certtest.CommonName("fabrikam provider"))
	appB, err := env.e.AddApplication(fabrikam.ID, emulator.SeedApplication{DisplayName: "fabrikam backup", Owners: []string{agent.AppID},
		KeyCredentials: []emulator.SeedKeyCredential{{Certificate: backup.DER}}})
	if err != nil {
		t.Fatal(err)
	}
	c := inB()
	if got, err := c.ServicePrincipalID(ctx); err != nil || got != sp || got == agent.ServicePrincipalID {
		t.Fatalf("ServicePrincipalID in fabrikam = %s, %v; want %s (not the home one, %s)", got, err, sp, agent.ServicePrincipalID)
	}
	owners, err := c.Owners(ctx, appB.ObjectID)
	if err != nil || len(owners) != 1 || owners[0].ID != sp {
		t.Errorf("Owners(fabrikam backup) = %+v, %v; want the agent's service principal in fabrikam", owners, err)
	}
	app, err := c.Get(ctx, appB.AppID)
	if err != nil {
		t.Fatal(err)
	}
	added := certtest.New(env.now, certtest.CommonName("fabrikam provider next"))
	creds := append(slices.Clone(app.KeyCredentials), certs.KeyCredential{
		KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: added.DER,
		StartDateTime: added.Cert.NotBefore, EndDateTime: added.Cert.NotAfter,
	})
	if err := c.Replace(ctx, app.ObjectID, creds); err != nil {
		t.Fatalf("Replace in fabrikam: %v", err)
	}
	v, err := env.e.Application(appB.AppID)
	if err != nil || len(v.KeyCredentials) != 2 || v.KeyCredentials[1].Thumbprint != thumb(added) {
		t.Errorf("fabrikam backup after Replace = %+v, %v", v.KeyCredentials, err)
	}
	// The home tenant's client does not see fabrikam's app.
	if _, err := env.client(t).Get(ctx, appB.AppID); rotation.ErrorReason(err).Code != certs.AppNotFound {
		t.Errorf("Get of fabrikam's app from the home tenant = %v, want app_not_found", err)
	}
}
