package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/onboard"
)

const setupSynopsis = "setup [-c FILE] [--tenant ID] [--provider-app NAME-OR-APPID] [--agent-name NAME] [--yes] [--dry-run] [--use-az]"

// setupProbeTimeout bounds the wait for the agent's first sign-in; tests shorten it.
var setupProbeTimeout = onboard.DefaultProbeTimeout

// runSetup is `certagent setup`: the one-time tenant work (docs/contract.md), done as an
// administrator signed in with a device code (or the Azure CLI's login).
func runSetup(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "setup", setupSynopsis)
	configFile := fs.String("c", "", "config file to write, merged into when it exists (default "+config.DefaultPath()+")")
	tenant := fs.String("tenant", "", "the tenant: its id (a GUID) or a verified domain (default: tenant_id of the config)")
	providerApp := fs.String("provider-app", "", `the provider's app registration, by display name or app id (default: search for "`+onboard.DefaultProviderSearch+`")`)
	agentName := fs.String("agent-name", "", `display name of the agent's own app registration (default "`+onboard.DefaultAgentName+`")`)
	yes := fs.Bool("yes", false, "answer yes to every question; refuse where a choice is needed")
	dryRun := fs.Bool("dry-run", false, "change nothing: print the plan, each Graph call, and the same steps as Azure CLI and Microsoft Graph PowerShell commands")
	useAz := fs.Bool("use-az", false, "sign in with the Azure CLI's login (az account get-access-token) instead of a device code")
	verbose := fs.Bool("v", false, "log each Graph request")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("setup takes no arguments (got %q)", rest[0])
	}
	path := *configFile
	if path == "" {
		path = config.DefaultPath()
	}
	cfg, _, err := config.LoadIncomplete(path)
	switch {
	case config.IsNotExist(err):
		cfg = config.Default()
		cfg.File = path
	case err != nil:
		return err
	}
	tenantID := *tenant
	if tenantID == "" {
		tenantID = cfg.TenantID
	}
	if tenantID == "" {
		return usagef("setup needs the tenant: --tenant <tenant id or verified domain>")
	}
	roots, err := setupRootCAs(cfg)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	conn := graph.Config{
		TenantID: tenantID, AuthorityHost: cfg.AuthorityHost(), GraphURL: cfg.GraphURL(),
		RootCAs: roots, Timeout: cfg.Graph.Timeout.Duration(), Logger: log,
	}
	out := env.stdout
	acfg := graph.AdminConfig{Config: conn, UseAzureCLI: *useAz}
	if !*useAz {
		acfg.DeviceCode = func(_ context.Context, p graph.DeviceCodePrompt) error {
			fmt.Fprintf(out, "\n%s\n(certagent asks for %s, for this run only; the token is never stored.)\n\n",
				p.Message, strings.Join(graph.AdminScopes, " and "))
			return nil
		}
	}
	admin, err := graph.NewAdmin(acfg)
	if err != nil {
		return err
	}
	defer admin.CloseIdleConnections()
	how := "a device code"
	if *useAz {
		how = "the Azure CLI's login"
	}
	fmt.Fprintf(out, "Signing in to tenant %s as an administrator, with %s...\n", tenantID, how)
	user, err := admin.SignIn(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in as %s.\n\n", user)

	host, _ := os.Hostname()
	res, err := onboard.Run(ctx, admin, onboard.Options{
		TenantID:        tenantID,
		ProviderApp:     *providerApp,
		AgentName:       *agentName,
		AgentAppID:      cfg.Auth.ClientID,
		Yes:             *yes,
		DryRun:          *dryRun,
		Prompt:          &linePrompter{in: bufio.NewReader(env.stdin), out: out},
		Out:             out,
		CredentialFiles: agent.CredentialFiles(cfg),
		CredentialOptions: credential.Options{
			CommonName: "certagent " + host, Bits: cfg.Auth.KeyBits, Validity: cfg.Auth.Validity.Duration(),
		},
		ConfigFile:   cfg.File,
		GraphBaseURL: admin.GraphBaseURL(),
		Probe:        agentProbe(conn),
		ProbeTimeout: setupProbeTimeout,
	})
	switch {
	case errors.Is(err, onboard.ErrDeclined):
		return &exitError{code: 1, msg: "nothing was changed"}
	case err != nil:
		return err
	}
	if !*dryRun && len(res.Changes) > 0 {
		fmt.Fprintf(out, "\n%d change(s) made. The config is %s.\n", len(res.Changes), cfg.File)
	}
	return nil
}

// setupRootCAs trusts cloud.ca_file besides the system's CAs (nil: the system's only).
func setupRootCAs(cfg *config.Config) (*x509.CertPool, error) {
	if cfg.Cloud.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.Cloud.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading cloud.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cloud.ca_file %s holds no PEM certificate", cfg.Cloud.CAFile)
	}
	return pool, nil
}

// agentProbe signs in as the agent, as the service will, and reads the provider's app and
// its owners. What Entra has not caught up with yet (the new key, service principal or role;
// docs/graph.md, "Sign-in propagation") is a reason to wait, anything else an error.
func agentProbe(conn graph.Config) onboard.Probe {
	return func(ctx context.Context, a onboard.Agent) (string, error) {
		cfg := conn
		cfg.ClientID = a.AppID
		cfg.Credential = credential.NewSource(a.Credential)
		cfg.Logger = slog.New(slog.DiscardHandler)
		c, err := graph.New(cfg)
		if err != nil {
			return "", err
		}
		defer c.CloseIdleConnections()
		app, err := c.Get(ctx, a.TargetAppID)
		if err != nil {
			return waitOrFail(err)
		}
		owners, err := c.Owners(ctx, app.ObjectID)
		if err != nil {
			return waitOrFail(err)
		}
		for _, o := range owners {
			if strings.EqualFold(o.ID, a.ServicePrincipalID) && o.Type == certs.ObjectServicePrincipal {
				return "", nil
			}
		}
		return "the agent is not among the owners of the provider's app yet", nil
	}
}

// waitOrFail sorts a probe's error: what time fixes (a key, service principal or role Entra
// does not know yet, an outage) is a reason to wait.
func waitOrFail(err error) (string, error) {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return "", err
	}
	short := fmt.Sprintf("%d %s", ge.StatusCode, ge.Code)
	if ge.SignIn {
		short = fmt.Sprintf("AADSTS%d", ge.AADSTS)
	}
	switch {
	case ge.Transient():
		return "Entra or Graph is unavailable: " + short, nil
	case ge.SignIn && (ge.AADSTS == 700027 || ge.AADSTS == 7000229 || ge.AADSTS == 700016):
		return "the agent's sign-in is not accepted yet: " + short, nil
	case !ge.SignIn && (ge.StatusCode == http.StatusUnauthorized || ge.StatusCode == http.StatusForbidden || ge.StatusCode == http.StatusNotFound):
		return "Graph does not let the agent read the provider's app yet: " + short, nil
	}
	return "", err
}

// linePrompter asks on the console: a number to choose, y or n to confirm. At the end of the
// input (a script, no console) it answers nothing and the run stops.
type linePrompter struct {
	in  *bufio.Reader
	out io.Writer
}

func (p *linePrompter) line(question string) (string, error) {
	fmt.Fprint(p.out, question+" ")
	s, err := p.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		return "", errors.New("no answer on standard input (run setup at a console, or answer with --yes and --provider-app)")
	}
	return strings.TrimSpace(s), nil
}

func (p *linePrompter) Choose(question string, n int) (int, error) {
	for range 3 {
		s, err := p.line(fmt.Sprintf("%s [1-%d]:", question, n))
		if err != nil {
			return 0, err
		}
		if i, err := strconv.Atoi(s); err == nil && i >= 1 && i <= n {
			return i - 1, nil
		}
		fmt.Fprintf(p.out, "Answer with a number from 1 to %d.\n", n)
	}
	return 0, errors.New("no valid answer")
}

func (p *linePrompter) Confirm(question string) (bool, error) {
	s, err := p.line(question + " [y/N]:")
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
