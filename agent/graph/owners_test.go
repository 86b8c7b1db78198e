package graph_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/emulator"
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
