package onboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/securefile"
)

func ownedBy(owners []certs.DirectoryObject, id string) bool {
	return slices.ContainsFunc(owners, func(o certs.DirectoryObject) bool { return strings.EqualFold(o.ID, id) })
}

// certOnApp reports whether the agent's certificate is among its app's credentials.
func (r *run) certOnApp() bool {
	if r.cred == nil || !r.agentAppFound {
		return false
	}
	tp := certs.ThumbprintSHA1(r.cred.Cert.Raw)
	return slices.ContainsFunc(r.agentApp.KeyCredentials, func(k certs.KeyCredential) bool { return k.Thumbprint() == tp })
}

// agentAppID is the agent's app id, or a placeholder while it does not exist.
func (r *run) agentAppID() string {
	if r.agentApp.AppID != "" {
		return r.agentApp.AppID
	}
	return placeholderAppID
}

// settings are the config keys setup writes.
func (r *run) settings() []config.Setting {
	return []config.Setting{
		{Key: "tenant_id", Value: r.o.TenantID},
		{Key: "auth.client_id", Value: r.agentAppID()},
		{Key: "target.app_id", Value: r.provider.AppID},
	}
}

// describe says what a step does, for people.
func (r *run) describe(step string) string {
	switch step {
	case stepCreateApp:
		return fmt.Sprintf("create the agent's app registration %q (single tenant)", r.o.AgentName)
	case stepCreateSP:
		return "create its service principal (enterprise application)"
	case stepAssignRole:
		return "grant it Microsoft Graph's " + OwnedByRole + " (the admin consent: it may change only apps it owns)"
	case stepOwnProvider:
		return fmt.Sprintf("make it an owner of %q", r.provider.DisplayName)
	case stepOwnSelf:
		return "make it an owner of its own app registration (so it can read itself when it renews its certificate)"
	case stepInitKey:
		return fmt.Sprintf("create the agent's key pair: %s (the private key, which never leaves this machine) and %s", r.o.CredentialFiles.Key, r.o.CredentialFiles.Cert)
	case stepUploadCert:
		tp := placeholderCertTP
		if r.cred != nil {
			tp = certs.ThumbprintSHA1(r.cred.Cert.Raw)
		}
		return fmt.Sprintf("upload the agent's certificate (thumbprint %s) to its app registration, keeping any certificate there", tp)
	case stepWriteConfig:
		verb := "write"
		if r.configExisted {
			verb = "set"
		}
		return fmt.Sprintf("%s tenant_id, auth.client_id and target.app_id in %s (other keys kept)", verb, r.o.ConfigFile)
	}
	return step
}

// printPlan tells what is in place and what is to do.
func (r *run) printPlan() {
	if r.agentAppFound {
		fmt.Fprintf(r.out, "Agent's app: %s (app id %s)\n", r.agentApp.DisplayName, r.agentApp.AppID)
	} else {
		fmt.Fprintf(r.out, "Agent's app: %q does not exist yet\n", r.o.AgentName)
	}
	var inPlace []string
	if r.agentSPFound {
		inPlace = append(inPlace, "its service principal")
		if r.roleGranted {
			inPlace = append(inPlace, OwnedByRole)
		}
		if ownedBy(r.providerOwners, r.agentSP.ID) {
			inPlace = append(inPlace, "owner of the provider's app")
		}
		if ownedBy(r.agentOwners, r.agentSP.ID) {
			inPlace = append(inPlace, "owner of itself")
		}
	}
	if r.cred != nil {
		inPlace = append(inPlace, "the key pair "+r.o.CredentialFiles.Key)
		if r.certOnApp() {
			inPlace = append(inPlace, "its certificate on its app")
		}
	}
	if !slices.Contains(r.steps, stepWriteConfig) {
		inPlace = append(inPlace, "the config "+r.o.ConfigFile)
	}
	if len(inPlace) > 0 {
		fmt.Fprintf(r.out, "In place: %s\n", strings.Join(inPlace, "; "))
	}
	if len(r.steps) == 0 {
		return
	}
	fmt.Fprintln(r.out, "\nTo do:")
	for i, s := range r.steps {
		fmt.Fprintf(r.out, "  %d. %s\n", i+1, r.describe(s))
	}
}

// apply does the planned steps, in order.
func (r *run) apply(ctx context.Context) error {
	fmt.Fprintln(r.out)
	for _, s := range r.steps {
		if err := r.do(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", r.describe(s), err)
		}
		r.done = append(r.done, r.describe(s))
	}
	return nil
}

func (r *run) do(ctx context.Context, step string) error {
	switch step {
	case stepCreateApp:
		app, err := r.dir.CreateApplication(ctx, r.o.AgentName)
		if err != nil {
			return err
		}
		r.agentApp, r.agentAppFound = app, true
		fmt.Fprintf(r.out, "created app registration %q, app id %s\n", app.DisplayName, app.AppID)
	case stepCreateSP:
		var sp certs.ServicePrincipal
		err := r.whenVisible(ctx, "the new app registration", func() (err error) {
			sp, err = r.dir.CreateServicePrincipal(ctx, r.agentApp.AppID)
			return err
		})
		if err != nil {
			return err
		}
		r.agentSP, r.agentSPFound = sp, true
		fmt.Fprintf(r.out, "created its service principal %s\n", sp.ID)
	case stepAssignRole:
		err := r.whenVisible(ctx, "the new service principal", func() error {
			_, err := r.dir.AssignAppRole(ctx, r.agentSP.ID, r.graphSP.ID, r.roleID)
			return err
		})
		if err != nil {
			return err
		}
		r.roleGranted = true
		fmt.Fprintf(r.out, "granted %s (admin consent)\n", OwnedByRole)
	case stepOwnProvider:
		if err := r.whenVisible(ctx, "the new service principal", func() error {
			return r.dir.AddOwner(ctx, r.provider.ObjectID, r.agentSP.ID)
		}); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "made the agent an owner of %q\n", r.provider.DisplayName)
	case stepOwnSelf:
		if err := r.whenVisible(ctx, "the new service principal", func() error {
			return r.dir.AddOwner(ctx, r.agentApp.ObjectID, r.agentSP.ID)
		}); err != nil {
			return err
		}
		fmt.Fprintln(r.out, "made the agent an owner of its own app registration")
	case stepInitKey:
		c, created, err := credential.Init(r.o.CredentialFiles, r.o.CredentialOptions)
		if err != nil {
			return err
		}
		r.cred = c
		verb := "found"
		if created {
			verb = "created"
		}
		fmt.Fprintf(r.out, "%s the agent's key pair: %s (thumbprint %s)\n", verb, r.o.CredentialFiles.Cert, certs.ThumbprintSHA1(c.Cert.Raw))
	case stepUploadCert:
		return r.uploadCert(ctx)
	case stepWriteConfig:
		out, changed, err := config.Merge(r.configData, r.settings())
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		if _, err := config.Parse(r.o.ConfigFile, out); err != nil {
			return fmt.Errorf("the config would not load after setup: %w", err)
		}
		if err := securefile.WriteFile(r.o.ConfigFile, out); err != nil {
			return err
		}
		r.configData = out
		fmt.Fprintf(r.out, "wrote %s\n", r.o.ConfigFile)
	}
	return nil
}

// uploadCert adds the agent's certificate to its app: read the app whole, then PATCH every
// credential as read plus the new one (a PATCH replaces the collection).
func (r *run) uploadCert(ctx context.Context) error {
	var app certs.Application
	err := r.whenVisible(ctx, "the new app registration", func() error {
		a, found, err := r.dir.Application(ctx, r.agentApp.AppID)
		if err != nil {
			return err
		}
		if !found {
			return errNotYet
		}
		app = a
		return nil
	})
	if err != nil {
		return err
	}
	tp := certs.ThumbprintSHA1(r.cred.Cert.Raw)
	if slices.ContainsFunc(app.KeyCredentials, func(k certs.KeyCredential) bool { return k.Thumbprint() == tp }) {
		r.agentApp = app
		return nil
	}
	creds := make([]certs.KeyCredential, 0, len(app.KeyCredentials)+1)
	for _, k := range app.KeyCredentials {
		creds = append(creds, k.Clone())
	}
	creds = append(creds, certs.KeyCredential{
		KeyID:       uuid.NewString(),
		Type:        certs.KeyTypeX509Cert,
		Usage:       certs.KeyUsageVerify,
		Key:         append([]byte(nil), r.cred.Cert.Raw...),
		DisplayName: credentialName(r.cred, r.o.Now()),
	})
	if err := r.dir.Replace(ctx, app.ObjectID, creds); err != nil {
		return err
	}
	app.KeyCredentials = creds
	r.agentApp = app
	fmt.Fprintf(r.out, "uploaded the agent's certificate (thumbprint %s, valid until %s)\n", tp, r.cred.Cert.NotAfter.Format(time.DateOnly))
	return nil
}

// credentialName is the description of the agent's certificate on its app.
func credentialName(c *credential.Credential, now time.Time) string {
	return fmt.Sprintf("certagent sign-in (%s, set up %s)", c.Cert.Subject.CommonName, now.UTC().Format(time.DateOnly))
}

// errNotYet stands for an object setup just made that Graph does not show yet.
var errNotYet = errors.New("not visible yet")

// whenVisible runs fn, again while it fails because Graph does not show an object setup has
// just created (replication lag), for up to createdWait.
func (r *run) whenVisible(ctx context.Context, what string, fn func() error) error {
	deadline := r.o.Now().Add(createdWait)
	wait := time.Second
	said := false
	for {
		err := fn()
		if err == nil || !notYetVisible(err) || r.o.Now().After(deadline) {
			return err
		}
		if !said {
			fmt.Fprintf(r.out, "waiting for Graph to show %s...\n", what)
			said = true
		}
		if err := r.o.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, 10*time.Second)
	}
}

func notYetVisible(err error) bool {
	if errors.Is(err, errNotYet) {
		return true
	}
	var nv interface{ NotYetVisible() bool }
	return errors.As(err, &nv) && nv.NotYetVisible()
}

// verify signs in as the agent and reads the provider's app, waiting (bounded) while Entra
// catches up with the new certificate, service principal and role.
func (r *run) verify(ctx context.Context) error {
	if r.cred == nil {
		return errors.New("the agent has no key pair to sign in with")
	}
	a := Agent{
		TenantID: r.o.TenantID, AppID: r.agentApp.AppID, ServicePrincipalID: r.agentSP.ID,
		TargetAppID: r.provider.AppID, TargetObjectID: r.provider.ObjectID, Credential: r.cred,
	}
	fmt.Fprintln(r.out, "\nChecking: signing in as the agent and reading the provider's app...")
	start := r.o.Now()
	wait := 2 * time.Second
	last := ""
	for {
		reason, err := r.o.Probe(ctx, a)
		switch {
		case err != nil:
			return fmt.Errorf("checking the agent: %w", err)
		case reason == "":
			fmt.Fprintf(r.out, "The agent signs in, reads %q and owns it. Setup is done: start the agent (certagent install && certagent start, or Start-Service CertAgent).\n", r.provider.DisplayName)
			return nil
		}
		elapsed := r.o.Now().Sub(start)
		if elapsed > r.o.ProbeTimeout {
			return fmt.Errorf("the agent still cannot do its work after %s: %s. Entra can take longer to accept a new app, key or permission; run setup again later (it changes nothing that is in place, and checks again)", r.o.ProbeTimeout.Round(time.Second), reason)
		}
		if reason != last {
			fmt.Fprintf(r.out, "waiting for Entra ID to catch up (%s); this can take a few minutes...\n", reason)
			last = reason
		}
		if err := r.o.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, 15*time.Second)
	}
}
