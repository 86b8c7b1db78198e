// Package onboard does the one-time tenant work of `certagent setup`: it finds the provider's
// app registration, creates or reuses the agent's app and service principal, grants it
// Microsoft Graph's Application.ReadWrite.OwnedBy, makes it an owner of the provider's app and
// of its own, creates the agent's key pair and uploads the certificate, writes the config, and
// checks that the agent signs in. It talks to Graph through the small Directory interface
// (graph.Admin in the program, a fake in tests), so it builds without msgraph.
//
// A run first reads what exists, then plans what is missing, then (after a confirmation
// unless Yes) does only that: run twice, the second run changes nothing. DryRun stops after
// the plan and prints every Graph call it would make, and the same steps as Azure CLI and
// Microsoft Graph PowerShell commands, for administrators whose change process wants a script.
package onboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
)

// Defaults and well-known ids.
const (
	// DefaultProviderSearch is what setup searches for without --provider-app.
	DefaultProviderSearch = "Veeam"
	// DefaultAgentName is the display name of the agent's app registration.
	DefaultAgentName = "certagent"
	// GraphAppID is Microsoft Graph's application id.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// OwnedByRole is Graph's app role the agent needs, and OwnedByRoleID its published id.
	OwnedByRole   = "Application.ReadWrite.OwnedBy"
	OwnedByRoleID = "18a4783c-866b-4cc7-a460-3d5e5662c884"
	// DefaultProbeTimeout bounds the wait for the agent's first sign-in.
	DefaultProbeTimeout = 5 * time.Minute
	// createdWait bounds the wait for Graph to show an object setup just created.
	createdWait = 90 * time.Second
)

// Directory is what setup needs of Microsoft Graph, signed in as an administrator.
// graph.Admin satisfies it. Methods may be called one at a time only.
type Directory interface {
	// FindApplications returns the applications whose display name matches name as Graph's
	// $search does.
	FindApplications(ctx context.Context, name string) ([]certs.Application, error)
	// ApplicationsNamed returns the applications whose display name is exactly name.
	ApplicationsNamed(ctx context.Context, name string) ([]certs.Application, error)
	// Application reads an application by app id, with its key credentials; found is false
	// when there is none.
	Application(ctx context.Context, appID string) (app certs.Application, found bool, err error)
	// Owners lists an application's owners.
	Owners(ctx context.Context, objectID string) ([]certs.DirectoryObject, error)
	// CreateApplication creates a single-tenant app registration.
	CreateApplication(ctx context.Context, displayName string) (certs.Application, error)
	// ServicePrincipal reads the service principal of an app id; found is false when the
	// tenant has none.
	ServicePrincipal(ctx context.Context, appID string) (sp certs.ServicePrincipal, found bool, err error)
	// CreateServicePrincipal creates an application's service principal (or returns the
	// existing one).
	CreateServicePrincipal(ctx context.Context, appID string) (certs.ServicePrincipal, error)
	// AppRoleAssignments lists the app roles granted to a service principal.
	AppRoleAssignments(ctx context.Context, spID string) ([]certs.AppRoleAssignment, error)
	// AssignAppRole grants an app role (returns the existing assignment when there is one).
	AssignAppRole(ctx context.Context, principalID, resourceID, appRoleID string) (certs.AppRoleAssignment, error)
	// AddOwner makes a directory object an owner of an application (nil when it is already).
	AddOwner(ctx context.Context, objectID, ownerID string) error
	// Replace sets an application's keyCredentials to exactly creds (PATCH).
	Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error
}

// Prompter asks the person running setup.
type Prompter interface {
	// Choose asks which of options (already shown, numbered from 1) to take and returns its
	// index.
	Choose(question string, n int) (int, error)
	// Confirm asks a yes/no question.
	Confirm(question string) (bool, error)
}

// Agent is what Probe checks.
type Agent struct {
	TenantID           string
	AppID              string
	ServicePrincipalID string
	TargetAppID        string
	TargetObjectID     string
	Credential         *credential.Credential
}

// Probe signs in as the agent and reads the target app and its owners. It returns a reason
// to wait (Entra has not caught up yet: a new key, a new service principal, a new role) or
// an error that waiting does not fix, or neither when the agent can do its work.
type Probe func(ctx context.Context, a Agent) (waitFor string, err error)

// Options shape a run. TenantID, Out, CredentialFiles and ConfigFile are required; Prompt
// unless Yes or DryRun; Probe unless DryRun.
type Options struct {
	TenantID string
	// ProviderApp names the provider's app by display name or app id ("" searches for
	// DefaultProviderSearch).
	ProviderApp string
	// AgentName is the display name of the agent's app (default DefaultAgentName).
	AgentName string
	// AgentAppID is auth.client_id of an existing config: that app is reused when it exists.
	AgentAppID string
	// Yes answers every question with yes and refuses where a choice is needed.
	Yes bool
	// DryRun changes nothing: it prints the plan, the Graph calls and the scripts.
	DryRun bool
	Prompt Prompter
	Out    io.Writer
	// CredentialFiles and CredentialOptions are the agent's key pair and how to make it.
	CredentialFiles   credential.Files
	CredentialOptions credential.Options
	// ConfigFile is the config to write (merged into when it exists).
	ConfigFile string
	// GraphBaseURL is Graph's base with the version, for printed calls and scripts (default
	// https://graph.microsoft.com/v1.0).
	GraphBaseURL string
	Probe        Probe
	// ProbeTimeout bounds the wait for the agent's sign-in (default DefaultProbeTimeout).
	ProbeTimeout time.Duration
	// Now and Sleep are the clock (defaults: time.Now, a timer).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Result says what a run found and did.
type Result struct {
	ProviderApp certs.Application
	AgentApp    certs.Application
	AgentSP     certs.ServicePrincipal
	// Changes lists what was changed (DryRun: what would be); empty when all was in place.
	Changes []string
}

// ErrNoProvider, ErrAmbiguous and ErrDeclined are the ways a run ends without changing
// anything because of what it found or was told.
var (
	ErrNoProvider = errors.New("no provider app found")
	ErrAmbiguous  = errors.New("several provider apps match")
	ErrDeclined   = errors.New("setup was not confirmed")
)

// step kinds, in the order they are done.
const (
	stepCreateApp     = "createApp"
	stepCreateSP      = "createServicePrincipal"
	stepAssignRole    = "assignRole"
	stepOwnProvider   = "ownProvider"
	stepOwnSelf       = "ownSelf"
	stepInitKey       = "initCredential"
	stepUploadCert    = "uploadCertificate"
	stepWriteConfig   = "writeConfig"
	placeholderApp    = "<new app's object id>"
	placeholderAppID  = "<new app's appId>"
	placeholderSP     = "<new service principal's id>"
	placeholderCertTP = "<new certificate's thumbprint>"
)

// run holds one run's state.
type run struct {
	o   Options
	dir Directory
	out io.Writer

	provider       certs.Application
	providerOwners []certs.DirectoryObject
	agentApp       certs.Application
	agentAppFound  bool
	agentOwners    []certs.DirectoryObject
	agentSP        certs.ServicePrincipal
	agentSPFound   bool
	roleGranted    bool
	graphSP        certs.ServicePrincipal
	roleID         string
	cred           *credential.Credential
	configData     []byte
	configExisted  bool
	steps          []string
	done           []string
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Run does setup against dir. See the package documentation.
func Run(ctx context.Context, dir Directory, o Options) (Result, error) {
	switch {
	case o.TenantID == "":
		return Result{}, errors.New("setup: the tenant is required")
	case o.Out == nil:
		return Result{}, errors.New("setup: Out is required")
	case o.CredentialFiles.Cert == "" || o.CredentialFiles.Key == "":
		return Result{}, errors.New("setup: the credential files are required")
	case o.ConfigFile == "":
		return Result{}, errors.New("setup: the config file is required")
	case o.Prompt == nil && !o.Yes && !o.DryRun:
		return Result{}, errors.New("setup: a prompt is required without Yes")
	case o.Probe == nil && !o.DryRun:
		return Result{}, errors.New("setup: a probe is required")
	}
	if o.AgentName == "" {
		o.AgentName = DefaultAgentName
	}
	if o.GraphBaseURL == "" {
		o.GraphBaseURL = "https://graph.microsoft.com/v1.0"
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	r := &run{o: o, dir: dir, out: o.Out}
	if o.DryRun {
		fmt.Fprintln(r.out, "Dry run: nothing will be changed. Graph calls made to read the tenant:")
		r.dir = &recorder{dir: dir, out: r.out, base: o.GraphBaseURL}
	}
	if err := r.discover(ctx); err != nil {
		return r.result(), err
	}
	r.plan()
	r.printPlan()
	if len(r.steps) == 0 {
		fmt.Fprintln(r.out, "\nEverything is in place: nothing to change.")
		if o.DryRun {
			return r.result(), nil
		}
		return r.result(), r.verify(ctx)
	}
	if o.DryRun {
		r.printDryRun()
		return r.result(), nil
	}
	if !o.Yes {
		ok, err := o.Prompt.Confirm("Make these changes?")
		if err != nil {
			return r.result(), err
		}
		if !ok {
			return r.result(), ErrDeclined
		}
	}
	if err := r.apply(ctx); err != nil {
		return r.result(), err
	}
	return r.result(), r.verify(ctx)
}

func (r *run) result() Result {
	res := Result{ProviderApp: r.provider, AgentApp: r.agentApp, AgentSP: r.agentSP}
	if r.o.DryRun {
		for _, s := range r.steps {
			res.Changes = append(res.Changes, r.describe(s))
		}
	} else {
		res.Changes = append(res.Changes, r.done...)
	}
	return res
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// discover reads what exists.
func (r *run) discover(ctx context.Context) error {
	if err := r.findProvider(ctx); err != nil {
		return err
	}
	if err := r.findAgentApp(ctx); err != nil {
		return err
	}
	gsp, found, err := r.dir.ServicePrincipal(ctx, GraphAppID)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("tenant %s has no service principal for Microsoft Graph (app id %s)", r.o.TenantID, GraphAppID)
	}
	r.graphSP = gsp
	r.roleID, found = gsp.AppRoleID(OwnedByRole)
	if !found {
		if len(gsp.AppRoles) > 0 {
			return fmt.Errorf("microsoft Graph's service principal has no app role %s", OwnedByRole)
		}
		r.roleID = OwnedByRoleID // roles not returned: use the published id
	}
	if r.agentAppFound {
		sp, found, err := r.dir.ServicePrincipal(ctx, r.agentApp.AppID)
		if err != nil {
			return err
		}
		r.agentSP, r.agentSPFound = sp, found
		if r.agentOwners, err = r.dir.Owners(ctx, r.agentApp.ObjectID); err != nil {
			return err
		}
	}
	if r.agentSPFound {
		list, err := r.dir.AppRoleAssignments(ctx, r.agentSP.ID)
		if err != nil {
			return err
		}
		r.roleGranted = slices.ContainsFunc(list, func(a certs.AppRoleAssignment) bool { return a.Grants(r.graphSP.ID, r.roleID) })
	}
	c, err := credential.Load(r.o.CredentialFiles)
	switch {
	case err == nil:
		r.cred = c
	case !errors.Is(err, credential.ErrNotFound):
		return err
	}
	r.configData, err = os.ReadFile(r.o.ConfigFile)
	switch {
	case err == nil:
		r.configExisted = true
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("reading config file: %w", err)
	}
	return nil
}

// findProvider finds the provider's app: by app id, or by name, asking which when several
// match.
func (r *run) findProvider(ctx context.Context) error {
	term := strings.TrimSpace(r.o.ProviderApp)
	if guidRE.MatchString(term) {
		app, found, err := r.dir.Application(ctx, term)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: no app registration has app id %s in tenant %s", ErrNoProvider, term, r.o.TenantID)
		}
		owners, err := r.dir.Owners(ctx, app.ObjectID)
		if err != nil {
			return err
		}
		r.provider, r.providerOwners = app, owners
		fmt.Fprintf(r.out, "Provider's app: %s\n", r.summary(app, owners))
		return nil
	}
	named := term != ""
	if !named {
		term = DefaultProviderSearch
	}
	found, err := r.dir.FindApplications(ctx, term)
	if err != nil {
		return err
	}
	found = slices.DeleteFunc(found, func(a certs.Application) bool {
		return strings.EqualFold(a.AppID, r.o.AgentAppID) || strings.EqualFold(a.DisplayName, r.o.AgentName)
	})
	if len(found) == 0 {
		return fmt.Errorf("%w: no app registration's name matches %q in tenant %s; name it with --provider-app (its display name or app id)", ErrNoProvider, term, r.o.TenantID)
	}
	owners := make([][]certs.DirectoryObject, len(found))
	for i, a := range found {
		if owners[i], err = r.dir.Owners(ctx, a.ObjectID); err != nil {
			return err
		}
	}
	choice := -1
	if len(found) == 1 {
		choice = 0
	} else if named {
		for i, a := range found {
			if strings.EqualFold(a.DisplayName, term) {
				if choice >= 0 {
					choice = -1
					break
				}
				choice = i
			}
		}
	}
	if choice < 0 {
		fmt.Fprintf(r.out, "App registrations matching %q:\n", term)
		for i, a := range found {
			fmt.Fprintf(r.out, "  %d) %s\n", i+1, r.summary(a, owners[i]))
		}
		if r.o.Yes || r.o.Prompt == nil {
			var ids []string
			for _, a := range found {
				ids = append(ids, a.AppID)
			}
			return fmt.Errorf("%w %q (app ids %s): choose one with --provider-app <app id>", ErrAmbiguous, term, strings.Join(ids, ", "))
		}
		i, err := r.o.Prompt.Choose("Which one is the provider's app?", len(found))
		if err != nil {
			return err
		}
		if i < 0 || i >= len(found) {
			return fmt.Errorf("no app registration number %d", i+1)
		}
		choice = i
	}
	r.provider, r.providerOwners = found[choice], owners[choice]
	// A search answers without key bytes: read the chosen one whole.
	if app, ok, err := r.dir.Application(ctx, r.provider.AppID); err != nil {
		return err
	} else if ok {
		r.provider = app
	}
	fmt.Fprintf(r.out, "Provider's app: %s\n", r.summary(r.provider, r.providerOwners))
	return nil
}

// summary describes an app for a person choosing: id, owners, certificates.
func (r *run) summary(a certs.Application, owners []certs.DirectoryObject) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n       app id %s", a.DisplayName, a.AppID)
	var names []string
	for _, o := range owners {
		names = append(names, o.String())
	}
	if len(names) == 0 {
		names = []string{"none"}
	}
	fmt.Fprintf(&b, "; owners: %s", strings.Join(names, ", "))
	var newest time.Time
	n := 0
	for _, k := range a.KeyCredentials {
		if k.Type != certs.KeyTypeX509Cert {
			continue
		}
		n++
		if k.EndDateTime.After(newest) {
			newest = k.EndDateTime
		}
	}
	switch n {
	case 0:
		b.WriteString("; no certificates")
	default:
		days := certs.DaysBetween(r.o.Now(), newest)
		fmt.Fprintf(&b, "; %d certificate(s), the newest expires %s (%s)", n, newest.Format(time.DateOnly), daysText(days))
	}
	return b.String()
}

func daysText(days int) string {
	switch {
	case days < 0:
		return fmt.Sprintf("expired %d days ago", -days)
	case days == 1:
		return "in 1 day"
	}
	return fmt.Sprintf("in %d days", days)
}

// findAgentApp finds the agent's own app: the config's auth.client_id, else by name.
func (r *run) findAgentApp(ctx context.Context) error {
	if r.o.AgentAppID != "" {
		app, found, err := r.dir.Application(ctx, r.o.AgentAppID)
		if err != nil {
			return err
		}
		if found {
			r.agentApp, r.agentAppFound = app, true
			return nil
		}
		fmt.Fprintf(r.out, "The config's auth.client_id %s names no app registration in tenant %s: looking for %q instead.\n", r.o.AgentAppID, r.o.TenantID, r.o.AgentName)
	}
	named, err := r.dir.ApplicationsNamed(ctx, r.o.AgentName)
	if err != nil {
		return err
	}
	switch len(named) {
	case 0:
		return nil
	case 1:
		app, found, err := r.dir.Application(ctx, named[0].AppID)
		if err != nil {
			return err
		}
		if !found {
			app = named[0]
		}
		r.agentApp, r.agentAppFound = app, true
		return nil
	}
	var ids []string
	for _, a := range named {
		ids = append(ids, a.AppID)
	}
	return fmt.Errorf("%d app registrations are named %q (app ids %s): give the agent's app another name with --agent-name, or set auth.client_id in the config to the one to use", len(named), r.o.AgentName, strings.Join(ids, ", "))
}

// plan lists the steps still needed.
func (r *run) plan() {
	add := func(s string) { r.steps = append(r.steps, s) }
	if !r.agentAppFound {
		add(stepCreateApp)
	}
	if !r.agentSPFound {
		add(stepCreateSP)
		add(stepAssignRole)
		add(stepOwnProvider)
		add(stepOwnSelf)
	} else {
		if !r.roleGranted {
			add(stepAssignRole)
		}
		if !ownedBy(r.providerOwners, r.agentSP.ID) {
			add(stepOwnProvider)
		}
		if !ownedBy(r.agentOwners, r.agentSP.ID) {
			add(stepOwnSelf)
		}
	}
	if r.cred == nil {
		add(stepInitKey)
	}
	if r.cred == nil || !r.certOnApp() {
		add(stepUploadCert)
	}
	if _, changed, err := config.Merge(r.configData, r.settings()); err != nil || changed {
		add(stepWriteConfig)
	}
}
