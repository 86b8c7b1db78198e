package onboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
)

// fakeDir is an in-memory tenant: applications with owners, service principals, Graph's app
// role assignments. It counts writes.
type fakeDir struct {
	apps    []*certs.Application
	owners  map[string][]certs.DirectoryObject // by app object id
	sps     map[string]certs.ServicePrincipal  // by app id
	grants  map[string][]certs.AppRoleAssignment
	writes  []string
	failSP  int // CreateServicePrincipal answers "not yet visible" this many times
	graphSP certs.ServicePrincipal
}

type notYet struct{}

func (notYet) Error() string       { return "404 Request_ResourceNotFound" }
func (notYet) NotYetVisible() bool { return true }
func newFake(names ...string) *fakeDir {
	d := &fakeDir{owners: map[string][]certs.DirectoryObject{}, sps: map[string]certs.ServicePrincipal{}, grants: map[string][]certs.AppRoleAssignment{}}
	d.graphSP = certs.ServicePrincipal{ID: uuid.NewString(), AppID: GraphAppID, DisplayName: "Microsoft Graph",
		AppRoles: []certs.AppRole{{ID: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", Value: "Application.Read.All"}, {ID: OwnedByRoleID, Value: OwnedByRole}}}
	d.sps[GraphAppID] = d.graphSP
	for _, n := range names {
		d.add(n)
	}
	return d
}

func (d *fakeDir) add(name string) *certs.Application {
	a := &certs.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: name}
	d.apps = append(d.apps, a)
	return a
}

func (d *fakeDir) FindApplications(_ context.Context, name string) ([]certs.Application, error) {
	var out []certs.Application
	for _, a := range d.apps {
		if strings.Contains(strings.ToLower(a.DisplayName), strings.ToLower(name)) {
			c := *a
			c.KeyCredentials = nil
			out = append(out, c)
		}
	}
	return out, nil
}

func (d *fakeDir) ApplicationsNamed(_ context.Context, name string) ([]certs.Application, error) {
	var out []certs.Application
	for _, a := range d.apps {
		if a.DisplayName == name {
			out = append(out, *a)
		}
	}
	return out, nil
}

func (d *fakeDir) Application(_ context.Context, appID string) (certs.Application, bool, error) {
	for _, a := range d.apps {
		if a.AppID == appID {
			return *a, true, nil
		}
	}
	return certs.Application{}, false, nil
}

func (d *fakeDir) Owners(_ context.Context, objectID string) ([]certs.DirectoryObject, error) {
	return slices.Clone(d.owners[objectID]), nil
}

func (d *fakeDir) CreateApplication(_ context.Context, name string) (certs.Application, error) {
	d.writes = append(d.writes, "createApp")
	return *d.add(name), nil
}

func (d *fakeDir) ServicePrincipal(_ context.Context, appID string) (certs.ServicePrincipal, bool, error) {
	sp, ok := d.sps[appID]
	return sp, ok, nil
}

func (d *fakeDir) CreateServicePrincipal(_ context.Context, appID string) (certs.ServicePrincipal, error) {
	if d.failSP > 0 {
		d.failSP--
		return certs.ServicePrincipal{}, fmt.Errorf("creating: %w", notYet{})
	}
	d.writes = append(d.writes, "createSP")
	sp := certs.ServicePrincipal{ID: uuid.NewString(), AppID: appID}
	d.sps[appID] = sp
	return sp, nil
}

func (d *fakeDir) AppRoleAssignments(_ context.Context, spID string) ([]certs.AppRoleAssignment, error) {
	return slices.Clone(d.grants[spID]), nil
}

func (d *fakeDir) AssignAppRole(_ context.Context, p, r, role string) (certs.AppRoleAssignment, error) {
	d.writes = append(d.writes, "assign")
	a := certs.AppRoleAssignment{ID: uuid.NewString(), PrincipalID: p, ResourceID: r, AppRoleID: role}
	d.grants[p] = append(d.grants[p], a)
	return a, nil
}

func (d *fakeDir) AddOwner(_ context.Context, objectID, ownerID string) error {
	d.writes = append(d.writes, "owner")
	d.owners[objectID] = append(d.owners[objectID], certs.DirectoryObject{ID: ownerID, Type: certs.ObjectServicePrincipal})
	return nil
}

func (d *fakeDir) Replace(_ context.Context, objectID string, creds []certs.KeyCredential) error {
	d.writes = append(d.writes, "replace")
	for _, a := range d.apps {
		if a.ObjectID == objectID {
			a.KeyCredentials = creds
			return nil
		}
	}
	return errors.New("no such app")
}

// answers is a Prompter with canned answers.
type answers struct {
	choose  []int
	confirm []bool
	asked   []string
}

func (a *answers) Choose(q string, n int) (int, error) {
	a.asked = append(a.asked, q)
	if len(a.choose) == 0 {
		return 0, errors.New("no answer")
	}
	c := a.choose[0]
	a.choose = a.choose[1:]
	return c, nil
}

func (a *answers) Confirm(q string) (bool, error) {
	a.asked = append(a.asked, q)
	if len(a.confirm) == 0 {
		return false, errors.New("no answer")
	}
	c := a.confirm[0]
	a.confirm = a.confirm[1:]
	return c, nil
}

func options(t *testing.T, out *bytes.Buffer) Options {
	dir := t.TempDir()
	return Options{
		TenantID:          "11111111-2222-3333-4444-555555555555",
		Out:               out,
		CredentialFiles:   credential.Files{Cert: filepath.Join(dir, "state", "agent.pem"), Key: filepath.Join(dir, "state", "agent.key")},
		CredentialOptions: credential.Options{Bits: 2048},
		ConfigFile:        filepath.Join(dir, "certagent.yaml"),
		Yes:               true,
		Probe:             func(context.Context, Agent) (string, error) { return "", nil },
		Sleep:             func(context.Context, time.Duration) error { return nil },
	}
}

func TestRunFromEmptyTenantThenNothing(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365", "Contoso HR")
	var out bytes.Buffer
	o := options(t, &out)
	var probed Agent
	o.Probe = func(_ context.Context, a Agent) (string, error) { probed = a; return "", nil }
	res, err := Run(context.Background(), d, o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if want := []string{"createApp", "createSP", "assign", "owner", "owner", "replace"}; !slices.Equal(d.writes, want) {
		t.Errorf("writes = %v, want %v", d.writes, want)
	}
	provider := d.apps[0]
	agentApp, _, _ := d.Application(context.Background(), res.AgentApp.AppID)
	sp := d.sps[agentApp.AppID]
	if !ownedBy(d.owners[provider.ObjectID], sp.ID) || !ownedBy(d.owners[agentApp.ObjectID], sp.ID) {
		t.Errorf("owners: provider %v, agent %v", d.owners[provider.ObjectID], d.owners[agentApp.ObjectID])
	}
	if g := d.grants[sp.ID]; len(g) != 1 || !g[0].Grants(d.graphSP.ID, OwnedByRoleID) {
		t.Errorf("grants = %v", g)
	}
	c, err := credential.Load(o.CredentialFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(agentApp.KeyCredentials) != 1 || agentApp.KeyCredentials[0].Thumbprint() != certs.ThumbprintSHA1(c.Cert.Raw) {
		t.Errorf("agent app credentials = %+v", agentApp.KeyCredentials)
	}
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if cfg.TenantID != o.TenantID || cfg.Auth.ClientID != agentApp.AppID || cfg.Target.AppID != provider.AppID {
		t.Errorf("config = %s %s %s", cfg.TenantID, cfg.Auth.ClientID, cfg.Target.AppID)
	}
	if probed.AppID != agentApp.AppID || probed.TargetObjectID != provider.ObjectID || probed.ServicePrincipalID != sp.ID {
		t.Errorf("probe got %+v", probed)
	}
	if len(res.Changes) != 8 {
		t.Errorf("changes = %q", res.Changes)
	}

	// A second run finds everything and changes nothing.
	cfgBefore, _ := os.ReadFile(o.ConfigFile)
	d.writes = nil
	out.Reset()
	o.AgentAppID = cfg.Auth.ClientID
	res, err = Run(context.Background(), d, o)
	if err != nil || len(d.writes) != 0 || len(res.Changes) != 0 || !strings.Contains(out.String(), "nothing to change") {
		t.Errorf("second run: %v, writes %v, changes %v\n%s", err, d.writes, res.Changes, out.String())
	}
	if cfgAfter, _ := os.ReadFile(o.ConfigFile); !bytes.Equal(cfgBefore, cfgAfter) {
		t.Error("the second run rewrote the config")
	}
}

func TestRunKeepsExistingCertificatesAndConfig(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365")
	old := certs.KeyCredential{KeyID: uuid.NewString(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, CustomKeyIdentifier: []byte("0123456789ABCDEF0123456789ABCDEF01234567")}
	agent := d.add(DefaultAgentName)
	agent.KeyCredentials = []certs.KeyCredential{old}
	var out bytes.Buffer
	o := options(t, &out)
	if err := os.WriteFile(o.ConfigFile, []byte("# mine\npolicy:\n  approval: manual\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), d, o); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if slices.Contains(d.writes, "createApp") {
		t.Error("the existing agent app was not reused")
	}
	if len(agent.KeyCredentials) != 2 || agent.KeyCredentials[0].KeyID != old.KeyID {
		t.Errorf("credentials after upload = %+v: the existing one must stay", agent.KeyCredentials)
	}
	b, _ := os.ReadFile(o.ConfigFile)
	if !strings.Contains(string(b), "# mine") || !strings.Contains(string(b), "approval: manual") || !strings.Contains(string(b), agent.AppID) {
		t.Errorf("config = %s", b)
	}
}

func TestRunAmbiguousProvider(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365", "Veeam Backup for Microsoft 365 (test)")
	var out bytes.Buffer
	o := options(t, &out)
	_, err := Run(context.Background(), d, o)
	if !errors.Is(err, ErrAmbiguous) || len(d.writes) != 0 || !strings.Contains(err.Error(), "--provider-app") {
		t.Errorf("with --yes: %v, writes %v", err, d.writes)
	}
	if !strings.Contains(out.String(), d.apps[1].AppID) || !strings.Contains(out.String(), "owners: none") {
		t.Errorf("the matches are not listed with app id and owners:\n%s", out.String())
	}

	// Asked, the person picks the second; then confirms.
	out.Reset()
	o.Yes = false
	ans := &answers{choose: []int{1}, confirm: []bool{true}}
	o.Prompt = ans
	res, err := Run(context.Background(), d, o)
	if err != nil || res.ProviderApp.AppID != d.apps[1].AppID || len(ans.asked) != 2 {
		t.Errorf("asked: %v, provider %s, questions %v", err, res.ProviderApp.DisplayName, ans.asked)
	}

	// An exact name needs no question.
	d2 := newFake("Veeam Backup for Microsoft 365", "Veeam Backup for Microsoft 365 (test)")
	o = options(t, &out)
	o.ProviderApp = "veeam backup for microsoft 365"
	if res, err := Run(context.Background(), d2, o); err != nil || res.ProviderApp.AppID != d2.apps[0].AppID {
		t.Errorf("exact name: %v %s", err, res.ProviderApp.DisplayName)
	}
	// By app id.
	d3 := newFake("Veeam Backup for Microsoft 365", "Veeam Backup for Microsoft 365 (test)")
	o = options(t, &out)
	o.ProviderApp = d3.apps[1].AppID
	if res, err := Run(context.Background(), d3, o); err != nil || res.ProviderApp.AppID != d3.apps[1].AppID {
		t.Errorf("by app id: %v %s", err, res.ProviderApp.DisplayName)
	}
	// Nothing matches.
	o = options(t, &out)
	o.ProviderApp = "Acronis"
	if _, err := Run(context.Background(), newFake("Veeam"), o); !errors.Is(err, ErrNoProvider) {
		t.Errorf("no match: %v", err)
	}
}

func TestRunDeclined(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365")
	var out bytes.Buffer
	o := options(t, &out)
	o.Yes = false
	o.Prompt = &answers{confirm: []bool{false}}
	if _, err := Run(context.Background(), d, o); !errors.Is(err, ErrDeclined) || len(d.writes) != 0 {
		t.Errorf("declined: %v, writes %v", err, d.writes)
	}
	if _, err := os.Stat(o.CredentialFiles.Key); err == nil {
		t.Error("a declined run created the key pair")
	}
}

func TestDryRunChangesNothingAndPrintsEverything(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365")
	var out bytes.Buffer
	o := options(t, &out)
	o.DryRun, o.Yes, o.Probe = true, false, nil
	res, err := Run(context.Background(), d, o)
	if err != nil || len(d.writes) != 0 {
		t.Fatalf("dry run: %v, writes %v", err, d.writes)
	}
	for _, p := range []string{o.CredentialFiles.Key, o.ConfigFile} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the dry run created %s", p)
		}
	}
	if len(res.Changes) != 8 {
		t.Errorf("planned changes = %q", res.Changes)
	}
	text := out.String()
	for _, want := range []string{
		`GET https://graph.microsoft.com/v1.0/applications?$search="displayName:Veeam"`, "ConsistencyLevel: eventual",
		"POST https://graph.microsoft.com/v1.0/applications\n", `"signInAudience":"AzureADMyOrg"`,
		"POST https://graph.microsoft.com/v1.0/servicePrincipals\n",
		"/servicePrincipals/" + d.graphSP.ID + "/appRoleAssignedTo", OwnedByRoleID,
		"/applications/" + d.apps[0].ObjectID + "/owners/$ref", "PATCH https://graph.microsoft.com/v1.0/applications/",
		"az ad app create --display-name 'certagent'", `az ad sp create --id "$AGENT_APP_ID"`, "az rest --method POST",
		"az ad app owner add --id " + d.apps[0].AppID, "az ad app credential reset", "--append", "certagent credential init",
		"Connect-MgGraph", "New-MgApplication -DisplayName 'certagent'", "New-MgServicePrincipal -AppId $agentApp.AppId",
		"New-MgServicePrincipalAppRoleAssignment", "New-MgApplicationOwnerByRef -ApplicationId $provider.Id",
		"Update-MgApplication -ApplicationId $agentApp.Id -KeyCredentials $keys",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the dry run does not print %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestRunWaitsForGraphAndEntra(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365")
	d.failSP = 2
	var out bytes.Buffer
	o := options(t, &out)
	now := time.Now()
	o.Now = func() time.Time { return now }
	o.Sleep = func(_ context.Context, dur time.Duration) error { now = now.Add(dur); return nil }
	probes := 0
	o.Probe = func(context.Context, Agent) (string, error) {
		probes++
		if probes < 3 {
			return "AADSTS700027: the new certificate is not accepted yet", nil
		}
		return "", nil
	}
	if _, err := Run(context.Background(), d, o); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "waiting for Graph to show the new app registration") ||
		strings.Count(out.String(), "waiting for Entra ID to catch up") != 1 || probes != 3 {
		t.Errorf("probes %d, output:\n%s", probes, out.String())
	}

	// A sign-in that never works ends after the bound, saying what to do.
	d = newFake("Veeam Backup for Microsoft 365")
	out.Reset()
	o = options(t, &out)
	o.Now = func() time.Time { return now }
	o.Sleep = func(_ context.Context, dur time.Duration) error { now = now.Add(dur); return nil }
	o.ProbeTimeout = time.Minute
	o.Probe = func(context.Context, Agent) (string, error) { return "AADSTS7000229", nil }
	if _, err := Run(context.Background(), d, o); err == nil || !strings.Contains(err.Error(), "run setup again later") {
		t.Errorf("never accepted: %v", err)
	}
	// An error that waiting does not fix ends at once.
	out.Reset()
	o.Probe = func(context.Context, Agent) (string, error) { return "", errors.New("tls: bad certificate") }
	if _, err := Run(context.Background(), d, o); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("permanent probe error: %v", err)
	}
}

func TestRunRefusesTwoAgentApps(t *testing.T) {
	d := newFake("Veeam Backup for Microsoft 365", DefaultAgentName, DefaultAgentName)
	var out bytes.Buffer
	if _, err := Run(context.Background(), d, options(t, &out)); err == nil || !strings.Contains(err.Error(), "--agent-name") || len(d.writes) != 0 {
		t.Errorf("two agent apps: %v, writes %v", err, d.writes)
	}
}
