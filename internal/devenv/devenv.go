// Package devenv sets up `certagent dev`: an emulated tenant, the agent's own credential
// registered on it, a config pointing at it, and dev.json telling scripts where everything
// is. The agent it configures is the real one with the real defaults; only the tenant is
// emulated.
package devenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/emulator/provider"
)

// Info is dev.json (docs/contract.md, "Command line": at least apiUrl, tokenFile, dropFolder,
// emulatorUrl, emulatorCaFile, tenantId, targetAppId, configFile).
type Info struct {
	APIURL         string `json:"apiUrl"`
	TokenFile      string `json:"tokenFile"`
	DropFolder     string `json:"dropFolder"`
	EmulatorURL    string `json:"emulatorUrl"`
	EmulatorCAFile string `json:"emulatorCaFile"`
	TenantID       string `json:"tenantId"`
	TargetAppID    string `json:"targetAppId"`
	ConfigFile     string `json:"configFile"`
	// AgentAppID is the agent's own app registration in the emulated tenant.
	AgentAppID string `json:"agentAppId"`
	// AgentCredentialFile is the emulator's demo credential for the agent's app
	// (certificate + key PEM), for az login; the agent itself uses its own in StateDir.
	AgentCredentialFile string `json:"agentCredentialFile"`
	// SampleCertificate is a provider certificate ready to drop.
	SampleCertificate string `json:"sampleCertificate"`
	StateDir          string `json:"stateDir"`
	PID               int    `json:"pid"`
	// RealisticSeed is the seed of the emulator's realistic mode, when it is on.
	RealisticSeed *int64 `json:"realisticSeed,omitempty"`
	// With the provider (Options.Provider): where the provider publishes this customer's
	// next certificate (the target's source.url), the provider's signing key the config
	// pins (a copy), its webhook receiver (notify.webhook_url), and its control route to
	// publish another certificate.
	ProviderCertificateURL string `json:"providerCertificateUrl,omitempty"`
	ProviderSigningKey     string `json:"providerSigningKey,omitempty"`
	ProviderWebhookURL     string `json:"providerWebhookUrl,omitempty"`
	ProviderPublishURL     string `json:"providerPublishUrl,omitempty"`
}

// Options shape the environment.
type Options struct {
	// Dir holds everything; it persists across runs.
	Dir string
	// APIListen is the agent API's address; when it is taken, a free loopback port is used.
	// Default 127.0.0.1:8471, as in a real install.
	APIListen string
	// EmulatorListen is the emulator's address (default 127.0.0.1:0).
	EmulatorListen string
	Logger         *slog.Logger
	// Realistic turns on the emulator's realistic mode (emulator.WithRealistic) with
	// RealisticSeed: sign-in propagation delays and replication lag.
	Realistic     bool
	RealisticSeed int64
	// Edit, if set, may change the generated config before it is written (tests shorten
	// intervals with it; `certagent dev` does not).
	Edit func(*config.Config)
	// Emulator are further options for the emulator (tests: a short token lifetime, a
	// clock), applied after those above.
	Emulator []emulator.Option
	// Provider makes the emulator play the backup provider too (emulator/provider, state in
	// Dir/emulator/provider) and configures the agent for a year with nobody in it: the
	// provider's signing key pinned and required (provenance), its URL of this customer's
	// next certificate fetched every minute (source, the emulator's CA pinned), and its
	// webhook told, signed with its secret (notify). Setup then publishes a new certificate,
	// as the provider does once a year: Env.Published.
	Provider bool
}

// Env is a prepared environment: a running emulator and a config for the agent.
type Env struct {
	Emulator *emulator.Emulator
	Config   *config.Config
	Info     Info
	// APIListener is bound to the API address (the agent serves on it).
	APIListener net.Listener
	// Provider is the backup provider's side, with Options.Provider; nil otherwise.
	Provider *provider.Provider
	// Published is the certificate the provider published at Setup, with Options.Provider.
	Published provider.Published
}

// Setup starts the emulator in Dir/emulator, makes sure the agent's own credential exists in
// Dir/state and is registered on the agent's app in the emulated tenant, writes
// Dir/certagent.yaml, and binds the API address. Call Close when done; Write writes dev.json
// once the agent runs.
func Setup(o Options) (*Env, error) {
	if o.Dir == "" {
		return nil, errors.New("devenv: Dir is required")
	}
	if o.APIListen == "" {
		o.APIListen = "127.0.0.1:8471"
	}
	if o.EmulatorListen == "" {
		o.EmulatorListen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	emuOpts := []emulator.Option{emulator.WithLogger(o.Logger)}
	if o.Realistic {
		emuOpts = append(emuOpts, emulator.WithRealistic(o.RealisticSeed))
	}
	var prov *provider.Provider
	if o.Provider {
		if prov, err = provider.New(filepath.Join(dir, "emulator", "provider")); err != nil {
			return nil, err
		}
		emuOpts = append(emuOpts, emulator.WithProvider(prov))
	}
	emuOpts = append(emuOpts, o.Emulator...)
	emu, err := emulator.New(filepath.Join(dir, "emulator"), emuOpts...)
	if err != nil {
		return nil, err
	}
	env := &Env{Emulator: emu, Provider: prov}
	ok := false
	defer func() {
		if !ok {
			env.Close()
		}
	}()
	if err := emu.Start(o.EmulatorListen); err != nil {
		return nil, err
	}
	demo, found := emu.DemoInfo()
	if !found {
		return nil, fmt.Errorf("devenv: %s holds an emulated tenant that is not the demo tenant; use a fresh --dir", filepath.Join(dir, "emulator"))
	}

	cfg := config.Default()
	cfg.File = filepath.Join(dir, "certagent.yaml")
	cfg.TenantID = demo.TenantID
	cfg.Cloud.Name = config.CloudCustom
	cfg.Cloud.AuthorityHost = emu.URL() + "/"
	cfg.Cloud.GraphURL = emu.URL()
	cfg.Cloud.CAFile = emu.CAFile()
	cfg.Auth.ClientID = demo.AgentAppID
	cfg.Target.AppID = demo.TargetAppID
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.DropFolder = filepath.Join(dir, "drop")
	cfg.Auth.CertificateFile = filepath.Join(cfg.StateDir, "agent.pem")
	cfg.Auth.KeyFile = filepath.Join(cfg.StateDir, "agent.key")
	cfg.API.TokenFile = filepath.Join(cfg.StateDir, "api.token")

	ln, err := net.Listen("tcp", o.APIListen)
	if err != nil {
		// A real agent (or another dev) holds the default port: take any free one.
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	env.APIListener = ln
	cfg.API.Listen = ln.Addr().String()
	if prov != nil {
		if err := withProvider(cfg, dir, emu, prov, demo.TenantID); err != nil {
			return nil, err
		}
	}
	if o.Edit != nil {
		o.Edit(cfg)
	}

	// The agent's own credential, made exactly as `certagent credential init` makes it, and
	// registered on its app the way an admin would upload it in the portal.
	c, _, err := credential.Init(credential.Files{Cert: cfg.Auth.CertificateFile, Key: cfg.Auth.KeyFile}, credential.Options{
		CommonName: "certagent dev", Bits: cfg.Auth.KeyBits, Validity: cfg.Auth.Validity.Duration(),
	})
	if err != nil {
		return nil, err
	}
	if err := register(emu, demo.AgentAppID, c); err != nil {
		return nil, err
	}
	// An admin registers the agent's credential before the agent first starts, not a moment
	// before: in realistic mode, only what happens from now on waits for propagation.
	emu.Settle()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("devenv: generated config: %w", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.File, b, 0o600); err != nil {
		return nil, err
	}
	env.Config = cfg
	env.Info = Info{
		APIURL:              "http://" + ln.Addr().String(),
		TokenFile:           cfg.API.TokenFile,
		DropFolder:          cfg.DropFolder,
		EmulatorURL:         emu.URL(),
		EmulatorCAFile:      emu.CAFile(),
		TenantID:            demo.TenantID,
		TargetAppID:         demo.TargetAppID,
		ConfigFile:          cfg.File,
		AgentAppID:          demo.AgentAppID,
		AgentCredentialFile: demo.AgentCredentialFile,
		SampleCertificate:   demo.NextProviderCertFile,
		StateDir:            cfg.StateDir,
		PID:                 os.Getpid(),
	}
	if o.Realistic {
		seed := o.RealisticSeed
		env.Info.RealisticSeed = &seed
	}
	if prov != nil {
		env.Info.ProviderCertificateURL = cfg.Target.Source.URL
		env.Info.ProviderSigningKey = cfg.Provenance.Keys[0]
		env.Info.ProviderWebhookURL = cfg.Notify.WebhookURL
		env.Info.ProviderPublishURL = emu.URL() + provider.ControlPrefix + "publish"
		// This year's delivery, published before the agent starts: the agent's first fetch
		// finds it.
		if env.Published, err = prov.PublishNew(customer(demo.TenantID), fmt.Sprintf("AUCloud VB365 %d", time.Now().AddDate(1, 0, 0).Year())); err != nil {
			return nil, err
		}
	}
	ok = true
	return env, nil
}

// customer is the provider's name for the tenant in its URLs.
func customer(tenantID string) string { return strings.ToLower(tenantID) }

// withProvider configures the agent for the provider's zero-touch year: its signing key
// pinned (a copy beside the config, as a customer keeps it) and required, its URL of the
// tenant's next certificate fetched every minute with the emulator's CA pinned, and its
// webhook told, signed with its secret (a private copy in the state folder).
func withProvider(cfg *config.Config, dir string, emu *emulator.Emulator, prov *provider.Provider, tenantID string) error {
	pub, err := os.ReadFile(prov.SigningPubPath())
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "provider-signing.pub")
	if err := os.WriteFile(keyFile, pub, 0o644); err != nil {
		return err
	}
	secret, err := os.ReadFile(prov.SecretPath())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	secretFile := filepath.Join(cfg.StateDir, "webhook.secret")
	if err := securefile.WriteFile(secretFile, secret); err != nil {
		return err
	}
	cfg.Provenance = config.Provenance{Required: true, Keys: []string{keyFile}, Wait: cfg.Provenance.Wait}
	cfg.Target.Source = config.Source{
		URL:      emu.URL() + provider.CertificatePath(customer(tenantID)),
		Interval: config.Duration(time.Minute),
		CAFile:   emu.CAFile(),
	}
	cfg.Notify.WebhookURL = emu.URL() + provider.WebhookPath
	cfg.Notify.SecretFile = secretFile
	return nil
}

// register adds the agent's certificate to its app in the emulated tenant unless it is there.
func register(emu *emulator.Emulator, appID string, c *credential.Credential) error {
	app, err := emu.Application(appID)
	if err != nil {
		return err
	}
	thumb := certs.ThumbprintSHA1(c.Cert.Raw)
	if slices.ContainsFunc(app.KeyCredentials, func(k emulator.KeyCredentialView) bool { return k.Thumbprint == thumb }) {
		return nil
	}
	_, err = emu.AddKeyCredential(appID, emulator.SeedKeyCredential{Certificate: c.Cert.Raw, DisplayName: "certagent dev sign-in"})
	return err
}

// Write writes Dir/dev.json.
func (env *Env) Write(dir string) error {
	b, err := json.MarshalIndent(env.Info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "dev.json"), append(b, '\n'), 0o644)
}

// Close stops the emulator and releases the API address if the agent did not take it.
func (env *Env) Close() error {
	if env.APIListener != nil {
		env.APIListener.Close()
	}
	if env.Emulator != nil {
		return env.Emulator.Close()
	}
	return nil
}

// Banner is what `certagent dev` prints for a newcomer; self is how to run this certagent
// (os.Args[0]).
func (env *Env) Banner(dir, self string) string {
	i := env.Info
	realistic := ""
	if s := env.Emulator.Settings(); s.Realistic() {
		realistic = fmt.Sprintf("  realistic mode  %s\n                  repeat with: %s dev --realistic-seed %d\n", s, self, s.Seed)
	}
	if env.Provider != nil {
		return fmt.Sprintf(`certagent dev --provider is running: the real agent against an emulated Entra ID tenant,
and the emulator plays the backup provider too.

%s  tenant          %s
  target app      %s  (holds a provider certificate that expires soon)
  provider        publishes at %s
                  signing key pinned: %s (provenance.required)
                  webhook receiver:   %s
  API             %s   token: %s
  emulator        %s   (CA: %s)
  everything      %s

Only certificates the provider signed reach the app now: a file dropped into %s
needs its signature beside it (name.cer.sig), and is refused without one.
  %s status -c %s
  curl -s --cacert %s %s/_emulator/provider/state
`, realistic, i.TenantID, i.TargetAppID, i.ProviderCertificateURL, i.ProviderSigningKey, i.ProviderWebhookURL,
			i.APIURL, i.TokenFile, i.EmulatorURL, i.EmulatorCAFile, filepath.Join(dir, "dev.json"), i.DropFolder,
			self, i.ConfigFile, i.EmulatorCAFile, i.EmulatorURL)
	}
	return fmt.Sprintf(`certagent dev is running: the real agent against an emulated Entra ID tenant.

%s  tenant          %s
  target app      %s  (holds a provider certificate that expires soon)
  drop folder     %s
  API             %s   token: %s
  emulator        %s   (CA: %s)
  everything      %s

Try it:
  cp %s %s/
  %s status -c %s
  curl -s -H "Authorization: Bearer $(cat %s)" %s/api/v1/rotations
  curl -s --cacert %s %s/_emulator/state

The certificate appears on the emulated app a moment after the file settles (%s), the file
moves to %s, and the audit log records each step. Stop with Ctrl-C; state is kept in %s.
`, realistic, i.TenantID, i.TargetAppID, i.DropFolder, i.APIURL, i.TokenFile, i.EmulatorURL, i.EmulatorCAFile,
		filepath.Join(dir, "dev.json"),
		i.SampleCertificate, i.DropFolder, self, i.ConfigFile, i.TokenFile, i.APIURL,
		i.EmulatorCAFile, i.EmulatorURL, env.Config.Intake.Settle.Duration(), filepath.Join(i.DropFolder, "processed"), dir)
}
