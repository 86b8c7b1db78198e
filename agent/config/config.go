package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aucloud/certagent/agent/certpolicy"
)

// Values of cloud.name.
const (
	CloudPublic       = "public"       // Microsoft Entra ID and Graph, worldwide
	CloudUSGovernment = "usgovernment" // Azure US Government (GCC High, DoD)
	CloudChina        = "china"        // Azure operated by 21Vianet
	CloudCustom       = "custom"       // cloud.authority_host and cloud.graph_url as given (an emulator)
)

// AuthCertificate is the only auth.method today: the agent signs in with a certificate and
// private key of its own.
const AuthCertificate = "certificate"

// Values of policy.approval.
const (
	ApprovalAuto   = "auto"   // an accepted certificate is uploaded at once
	ApprovalManual = "manual" // a person approves each upload
)

// Values of log.format.
const (
	LogText = "text"
	LogJSON = "json"
)

// DefaultListen is the default api.listen (docs/contract.md, "Names and places").
const DefaultListen = "127.0.0.1:8471"

// Config is certagent's configuration. Load and Parse return it with every default applied
// and every relative path made absolute; Default returns the defaults alone. The yaml tags
// are the file's keys: decoding walks them, so a field added here is a key of the file (and
// must be documented in configs/certagent.example.yaml, which a test checks).
//
// A Config is not modified by its methods and is safe for concurrent reads.
type Config struct {
	// File is the config file it was read from (absolute after Load), or "" when it was
	// built in code. Errors name it.
	File string `yaml:"-"`

	// TenantID is the Entra ID tenant: its GUID or a verified domain such as
	// contoso.onmicrosoft.com. Required.
	TenantID string `yaml:"tenant_id"`
	// Cloud is the national cloud, or custom endpoints.
	Cloud Cloud `yaml:"cloud"`
	// Auth is how the agent itself signs in to Entra ID.
	Auth Auth `yaml:"auth"`
	// Target is the app registration that receives the provider's certificates, when there
	// is one. Use Targets for several; EffectiveTargets gives the list either way.
	Target Target `yaml:"target"`
	// Targets lists several app registrations (for example a backup app per service or per
	// region), each with a name; the same keys as target. Use target or targets, not both.
	Targets []Target `yaml:"targets"`
	// DropFolder is where the provider's .cer files arrive. Default per OS.
	DropFolder string `yaml:"drop_folder"`
	// Intake is how the drop folder is watched.
	Intake Intake `yaml:"intake"`
	// Policy is what certificate the agent accepts, and whether a person approves uploads.
	Policy Policy `yaml:"policy"`
	// Provenance is whether certificates must come signed by the provider, and its keys.
	// Each target may add its own (a target's provenance section).
	Provenance Provenance `yaml:"provenance"`
	// API is the local REST API.
	API API `yaml:"api"`
	// StateDir holds the store, the audit log, the agent's credential and the API token.
	// Default per OS.
	StateDir string `yaml:"state_dir"`
	// Log is the agent's operational log (the audit log is in the store).
	Log Log `yaml:"log"`
	// Graph tunes the Microsoft Graph client.
	Graph Graph `yaml:"graph"`
	// Monitor is the periodic read of the target app.
	Monitor Monitor `yaml:"monitor"`
	// Notify tells the provider that an upload is done.
	Notify Notify `yaml:"notify"`

	// lines maps each key path found in the file ("auth", "auth.key_bits",
	// "policy.allowed_subjects[1]") to its line, so that Validate and CheckFiles can say
	// where a problem is. nil for a Config built in code.
	lines map[string]int
}

// Cloud is the config's cloud section.
type Cloud struct {
	// Name is CloudPublic, CloudUSGovernment, CloudChina or CloudCustom.
	Name string `yaml:"name"`
	// AuthorityHost is the Entra ID sign-in endpoint, such as
	// https://login.microsoftonline.com/. Required for custom; for the others it overrides
	// the cloud's own. Use Config.AuthorityHost for the effective value.
	AuthorityHost string `yaml:"authority_host"`
	// GraphURL is the Microsoft Graph endpoint without the version, such as
	// https://graph.microsoft.com. Required for custom; for the others it overrides the
	// cloud's own. Use Config.GraphURL for the effective value.
	GraphURL string `yaml:"graph_url"`
	// CAFile is a PEM bundle of CA certificates trusted for both endpoints, in addition to
	// the system's (an emulator, a TLS-inspecting proxy). Optional.
	CAFile string `yaml:"ca_file"`
}

// Auth is the config's auth section: the agent's own sign-in.
type Auth struct {
	// ClientID is the application (client) ID of the agent's own app registration. Required.
	ClientID string `yaml:"client_id"`
	// Method is AuthCertificate.
	Method string `yaml:"method"`
	// CertificateFile is the agent's public certificate (PEM). Default <state_dir>/agent.pem.
	CertificateFile string `yaml:"certificate_file"`
	// KeyFile is the agent's private key (PEM), which the agent creates readable by
	// administrators/root and the service only. Default <state_dir>/agent.key.
	KeyFile string `yaml:"key_file"`
	// KeyBits is the RSA key size of a key the agent generates: 2048, 3072 or 4096.
	KeyBits int `yaml:"key_bits"`
	// Validity is the lifetime of a certificate the agent generates for itself.
	Validity Duration `yaml:"validity"`
	// RenewBefore is how long before its certificate expires the agent renews it.
	RenewBefore Duration `yaml:"renew_before"`
}

// DefaultTargetName names the single target of a config with target: rather than targets:.
const DefaultTargetName = "default"

// Target is the config's target section, and each entry of targets.
type Target struct {
	// Name names the target in the status, the API, the drop folder (drop/<name>/ with
	// several targets) and the audit log: lower-case letters, digits and dashes. Required in
	// targets; DefaultTargetName for target.
	Name string `yaml:"name"`
	// TenantID is the tenant the app registration is in; "" means the top-level tenant_id.
	TenantID string `yaml:"tenant_id"`
	// AppID is the application (client) ID of the app registration the provider's
	// certificates are added to. Required.
	AppID string `yaml:"app_id"`
	// Policy overrides the top-level policy for this target.
	Policy TargetPolicy `yaml:"policy"`
	// Retire removes superseded certificates from the app.
	Retire Retire `yaml:"retire"`
	// Provenance overrides the top-level provenance for this target: it may require
	// signatures where the top level does not, and pin its own keys.
	Provenance Provenance `yaml:"provenance"`
	// Source is where the agent fetches the provider's next certificate for this target by
	// itself; empty url: it does not.
	Source Source `yaml:"source"`
}

// Provenance is the config's provenance section, and a target's: certificates signed by the
// provider (agent/provenance).
type Provenance struct {
	// Required refuses every certificate without a valid signature by one of Keys. In a
	// target's section, true requires it for that target; false keeps the top level's.
	Required bool `yaml:"required"`
	// Keys are the provider's public signing keys: paths of PEM files (relative to the
	// config file) or PEM text ("-----BEGIN PUBLIC KEY-----..."). Several, while the
	// provider changes its key. A target's list replaces the top level's.
	Keys []string `yaml:"keys"`
	// Wait is how long a certificate dropped without its name.cer.sig waits for it (with
	// Required) before it is refused (signature_missing), and a name.cer.sig for its
	// certificate (certificate_missing). A target's 0 takes the top level's.
	Wait Duration `yaml:"wait"`
}

// Source is a target's source section: the provider's HTTPS endpoint for this customer's
// next certificate, fetched with its signature (url + ".sig").
type Source struct {
	// URL is an https URL; "" turns fetching off.
	URL string `yaml:"url"`
	// Interval is how often the URL is fetched (with ETag, ±10% jitter).
	Interval Duration `yaml:"interval"`
	// CAFile is a PEM file of the CA certificates to trust for URL instead of the system's
	// (a pinned CA). "" trusts the system's.
	CAFile string `yaml:"ca_file"`
}

// TargetPolicy is a target's policy overrides; empty values take the top-level policy's.
type TargetPolicy struct {
	// Approval is ApprovalAuto or ApprovalManual; "" takes policy.approval.
	Approval string `yaml:"approval"`
	// AllowedSubjects, AllowedIssuers and AllowedThumbprints replace the top-level lists
	// when not empty. With several targets they also route a certificate dropped at the top
	// of the drop folder to the target whose lists name it.
	AllowedSubjects    []string `yaml:"allowed_subjects"`
	AllowedIssuers     []string `yaml:"allowed_issuers"`
	AllowedThumbprints []string `yaml:"allowed_thumbprints"`
}

// Retire is a target's retire section: removing superseded certificates from the app.
type Retire struct {
	// Enabled removes, once a newer certificate has been confirmed for After, the older
	// certificates on the app that the target's policy names (it needs an allow-list).
	Enabled bool `yaml:"enabled"`
	// After is how long a newer certificate must have been confirmed, and an old one been on
	// the app, before the old one is removed.
	After Duration `yaml:"after"`
	// DryRun only reports (in the status) what would be removed.
	DryRun bool `yaml:"dry_run"`
}

// TargetConfig is one target with every default applied: what the agent runs.
type TargetConfig struct {
	Name       string
	TenantID   string
	AppID      string
	Approval   string
	Policy     certpolicy.Policy
	Retire     Retire
	DropFolder string
	// Provenance is the target's with the top level's filled in: required when either
	// requires it, the target's keys or else the top level's, the target's wait or else the
	// top level's.
	Provenance Provenance
	// Source is the target's source, its interval defaulted.
	Source Source
}

// EffectiveTargets returns the targets the agent runs: target as DefaultTargetName (dropping into the drop
// folder itself), or each of targets (dropping into drop_folder/<name>/), with the
// top-level tenant and policy where a target leaves them out.
func (c *Config) EffectiveTargets() []TargetConfig {
	list := c.Targets
	single := len(list) == 0
	if single {
		t := c.Target
		if t.Name == "" {
			t.Name = DefaultTargetName
		}
		list = []Target{t}
	}
	out := make([]TargetConfig, 0, len(list))
	for _, t := range list {
		tc := TargetConfig{Name: t.Name, TenantID: t.TenantID, AppID: t.AppID, Approval: t.Policy.Approval, Policy: c.Policy.CertPolicy(), Retire: t.Retire}
		if tc.TenantID == "" {
			tc.TenantID = c.TenantID
		}
		if tc.Approval == "" {
			tc.Approval = c.Policy.Approval
		}
		if len(t.Policy.AllowedSubjects) > 0 {
			tc.Policy.AllowedSubjects = t.Policy.AllowedSubjects
		}
		if len(t.Policy.AllowedIssuers) > 0 {
			tc.Policy.AllowedIssuers = t.Policy.AllowedIssuers
		}
		if len(t.Policy.AllowedThumbprints) > 0 {
			tc.Policy.AllowedThumbprints = t.Policy.AllowedThumbprints
		}
		if tc.Retire.After == 0 {
			tc.Retire.After = DefaultRetireAfter
		}
		tc.Provenance = Provenance{Required: c.Provenance.Required || t.Provenance.Required, Keys: c.Provenance.Keys, Wait: c.Provenance.Wait}
		if len(t.Provenance.Keys) > 0 {
			tc.Provenance.Keys = t.Provenance.Keys
		}
		if t.Provenance.Wait != 0 {
			tc.Provenance.Wait = t.Provenance.Wait
		}
		if tc.Provenance.Wait == 0 {
			tc.Provenance.Wait = DefaultProvenanceWait
		}
		tc.Source = t.Source
		if tc.Source.Interval == 0 {
			tc.Source.Interval = DefaultSourceInterval
		}
		tc.DropFolder = c.DropFolder
		if !single {
			tc.DropFolder = filepath.Join(c.DropFolder, t.Name)
		}
		out = append(out, tc)
	}
	return out
}

// DefaultRetireAfter is retire.after's default.
const DefaultRetireAfter = Duration(14 * 24 * time.Hour)

// Defaults of provenance.wait and source.interval.
const (
	DefaultProvenanceWait = Duration(10 * time.Minute)
	DefaultSourceInterval = Duration(24 * time.Hour)
)

// Intake is the config's intake section.
type Intake struct {
	// Settle is how long a file's size and modification time must stay the same before it is
	// read.
	Settle Duration `yaml:"settle"`
	// RescanInterval is how often the whole folder is scanned, even when events work.
	RescanInterval Duration `yaml:"rescan_interval"`
	// Poll turns file-system events off (network shares do not deliver them): the folder is
	// scanned every PollInterval instead.
	Poll bool `yaml:"poll"`
	// PollInterval is the scan interval when Poll is set.
	PollInterval Duration `yaml:"poll_interval"`
	// RouteToAll sends a certificate dropped at the top of the drop folder that the policies
	// of several targets name to all of them, instead of refusing it (ambiguous_target).
	RouteToAll bool `yaml:"route_to_all"`
}

// Policy is the config's policy section. CertPolicy turns it into the certificate rules.
type Policy struct {
	// Approval is ApprovalAuto or ApprovalManual.
	Approval string `yaml:"approval"`
	// MinRSABits is the shortest RSA key accepted.
	MinRSABits int `yaml:"min_rsa_bits"`
	// MinValidityDays is how many days a certificate must still be valid when it arrives.
	MinValidityDays int `yaml:"min_validity_days"`
	// AllowedSubjects are subject patterns ('*' wildcard, case-insensitive); empty allows
	// any.
	AllowedSubjects []string `yaml:"allowed_subjects"`
	// AllowedIssuers are issuer patterns; empty allows any.
	AllowedIssuers []string `yaml:"allowed_issuers"`
	// AllowedThumbprints are SHA-1 thumbprints (40 hex digits; spaces and colons allowed);
	// empty allows any.
	AllowedThumbprints []string `yaml:"allowed_thumbprints"`
	// DisplayNameTemplate is a text/template over certpolicy.NameData for the credential's
	// description in Entra ID; "" means certpolicy.DefaultNameTemplate.
	DisplayNameTemplate string `yaml:"display_name_template"`
}

// API is the config's api section.
type API struct {
	// Listen is the API's host:port, on a loopback address.
	Listen string `yaml:"listen"`
	// TokenFile holds the API's bearer token. Default <state_dir>/api.token.
	TokenFile string `yaml:"token_file"`
}

// Log is the config's log section.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is LogText or LogJSON.
	Format string `yaml:"format"`
	// File is the log file; "" writes to standard error.
	File string `yaml:"file"`
}

// Graph is the config's graph section.
type Graph struct {
	// Timeout bounds one request.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts is how many times a transient failure is tried before a rotation fails.
	MaxAttempts int `yaml:"max_attempts"`
}

// Monitor is the config's monitor section.
type Monitor struct {
	// SyncInterval is how often the agent reads the target app from Graph.
	SyncInterval Duration `yaml:"sync_interval"`
	// ExpiryWarning: status reports certificate_expiring when the newest certificate on the
	// target app has less than this left. 0 turns the warning off.
	ExpiryWarning Duration `yaml:"expiry_warning"`
	// ExpiryThresholds: when the newest certificate on a target app has less than one of
	// these left, the agent warns once (log record event=certificate_expiring, and the
	// webhook's certificate.expiring). Whole days; an empty list turns the warnings off.
	ExpiryThresholds []Duration `yaml:"expiry_thresholds"`
}

// Notify is the config's notify section.
type Notify struct {
	// WebhookURL receives a POST when a rotation is applied; "" means a person confirms.
	WebhookURL string `yaml:"webhook_url"`
	// Headers are extra HTTP headers sent with the webhook, such as Authorization.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one webhook request.
	Timeout Duration `yaml:"timeout"`
	// SecretFile holds the secret deliveries are signed with (Standard Webhooks): whsec_
	// and base64, or a raw string of at least 24 bytes; one per line while it changes. A
	// private file, like the API token. "" sends unsigned deliveries.
	SecretFile string `yaml:"secret_file"`
}

// Well-known endpoints of the national clouds, as of 2026-11-25.
var cloudEndpoints = map[string]struct{ authority, graph string }{
	CloudPublic:       {"https://login.microsoftonline.com/", "https://graph.microsoft.com"},
	CloudUSGovernment: {"https://login.microsoftonline.us/", "https://graph.microsoft.us"},
	CloudChina:        {"https://login.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn"},
}

// base returns the defaults that do not depend on the file: everything but the paths.
func base() *Config {
	return &Config{
		Cloud: Cloud{Name: CloudPublic},
		Auth: Auth{
			Method:      AuthCertificate,
			KeyBits:     3072,
			Validity:    Duration(365 * 24 * time.Hour),
			RenewBefore: Duration(30 * 24 * time.Hour),
		},
		Target: Target{Retire: Retire{After: DefaultRetireAfter}, Source: Source{Interval: DefaultSourceInterval}},
		Intake: Intake{
			Settle:         Duration(2 * time.Second),
			RescanInterval: Duration(60 * time.Second),
			PollInterval:   Duration(5 * time.Second),
		},
		Policy: Policy{
			Approval:        ApprovalAuto,
			MinRSABits:      certpolicy.DefaultMinRSABits,
			MinValidityDays: int(certpolicy.DefaultMinValidity / (24 * time.Hour)),
		},
		Provenance: Provenance{Wait: DefaultProvenanceWait},
		API:        API{Listen: DefaultListen},
		Log:        Log{Level: "info", Format: LogText},
		Graph:      Graph{Timeout: Duration(30 * time.Second), MaxAttempts: 6},
		Monitor: Monitor{SyncInterval: Duration(time.Hour), ExpiryWarning: Duration(30 * 24 * time.Hour),
			ExpiryThresholds: []Duration{Duration(30 * 24 * time.Hour), Duration(14 * 24 * time.Hour), Duration(7 * 24 * time.Hour), Duration(24 * time.Hour)}},
		Notify: Notify{Timeout: Duration(10 * time.Second)},
	}
}

// Default returns a Config holding every default and no file: the OS's state directory and
// drop folder, and the files derived from them. It does not pass Validate, since tenant_id,
// auth.client_id and target.app_id have no default.
func Default() *Config {
	c := base()
	c.applyDefaults()
	return c
}

// AuthorityHost returns the Entra ID sign-in endpoint for the cloud, with a trailing slash:
// cloud.authority_host when set, else the cloud's own (public
// https://login.microsoftonline.com/, usgovernment https://login.microsoftonline.us/, china
// https://login.chinacloudapi.cn/). It returns "" for a custom cloud without one, which
// Validate refuses.
func (c *Config) AuthorityHost() string {
	h := c.Cloud.AuthorityHost
	if h == "" {
		h = cloudEndpoints[c.Cloud.Name].authority
	}
	if h != "" && !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return h
}

// GraphURL returns the Microsoft Graph endpoint for the cloud, without the API version and
// without a trailing slash: cloud.graph_url when set, else the cloud's own (public
// https://graph.microsoft.com, usgovernment https://graph.microsoft.us, china
// https://microsoftgraph.chinacloudapi.cn). It returns "" for a custom cloud without one,
// which Validate refuses.
func (c *Config) GraphURL() string {
	u := c.Cloud.GraphURL
	if u == "" {
		u = cloudEndpoints[c.Cloud.Name].graph
	}
	return strings.TrimRight(u, "/")
}

// CertPolicy returns the certificate rules of the policy section.
func (p Policy) CertPolicy() certpolicy.Policy {
	return certpolicy.Policy{
		MinRSABits:         p.MinRSABits,
		MinValidity:        time.Duration(p.MinValidityDays) * 24 * time.Hour,
		AllowedSubjects:    p.AllowedSubjects,
		AllowedIssuers:     p.AllowedIssuers,
		AllowedThumbprints: p.AllowedThumbprints,
	}
}

// Marshal returns the effective configuration as YAML, every key included, in the order of
// the example file. Parse reads it back to an equal Config. Notify headers are written as
// they are: the output is as secret as the config file itself.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# certagent configuration. Every key is documented in certagent.example.yaml.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return b.Bytes(), nil
}
