// Package azcli drives Debian's azure-cli (az 2.45), a real Microsoft client that nobody here
// wrote, against the emulated tenant, so that the emulator is checked against more than the
// agent's own Graph code. Tests and benchmarks only: shipped code never imports it.
//
// A CLI runs az with a private configuration folder, the emulator's CA, telemetry off and
// every proxy variable pointing at a Sentinel, an HTTP proxy on loopback that lets nothing
// through: a call az would make to the internet fails at once and is remembered, instead of
// leaking or hanging. The emulator's own address (127.0.0.1) bypasses the proxy.
//
// The custom cloud follows docs/graph.md: activeDirectory is the emulator's /adfs (MSAL-Python
// then skips instance discovery on login.microsoftonline.com), microsoftGraphResourceId is
// the emulator's base URL with a trailing slash (Graph's base and the token scope),
// resourceManager is the emulator's base URL (az login lists subscriptions there). The two
// other endpoints az requires, activeDirectoryResourceId and activeDirectoryGraphResourceId,
// keep the public cloud's values: without them `az cloud register` asks
// {resourceManager}/metadata/endpoints, which the emulator does not serve. az uses the
// first as the ARM token scope at login and never the second in these flows.
package azcli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled says that no az executable was found.
var ErrNotInstalled = errors.New("azure-cli (az) is not installed: run `apt-get install -y azure-cli` (.ci/run installs it)")

// DefaultCloudName is the name under which the emulator is registered as an az cloud.
const DefaultCloudName = "CertagentEmulator"

// Config says where az runs and what it talks to.
type Config struct {
	// Dir is az's private configuration folder (AZURE_CONFIG_DIR); it also receives the
	// cloud definition. Required.
	Dir string
	// EmulatorURL is the emulator's base URL, https://127.0.0.1:PORT. Required.
	EmulatorURL string
	// CAFile is the emulator's CA certificate (PEM). Required.
	CAFile string
	// Bin is the az executable (default: az looked up in PATH).
	Bin string
	// CloudName names the cloud (default DefaultCloudName).
	CloudName string
	// Debug adds --debug to every command, so that each Result's Stderr holds the HTTP
	// exchanges az logged (see Exchanges). Access tokens are cut short by az itself.
	Debug bool
}

// CLI runs az commands against one emulator. It is safe for concurrent use, but az's
// configuration folder is shared by its commands: run them one at a time.
type CLI struct {
	cfg      Config
	bin      string
	sentinel *Sentinel
	env      []string

	// mu protects history.
	mu      sync.Mutex
	history []Result
}

// New checks that az is installed, writes the cloud definition into cfg.Dir and starts the
// proxy sentinel. It runs no az command: call Setup next. Close stops the sentinel.
func New(cfg Config) (*CLI, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("azcli: Config.Dir is required")
	case cfg.EmulatorURL == "":
		return nil, errors.New("azcli: Config.EmulatorURL is required")
	case cfg.CAFile == "":
		return nil, errors.New("azcli: Config.CAFile is required")
	}
	cfg.EmulatorURL = strings.TrimRight(cfg.EmulatorURL, "/")
	if cfg.CloudName == "" {
		cfg.CloudName = DefaultCloudName
	}
	if cfg.Bin == "" {
		cfg.Bin = "az"
	}
	bin, err := exec.LookPath(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	if _, err := os.Stat(cfg.CAFile); err != nil {
		return nil, fmt.Errorf("azcli: reading the emulator's CA: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("azcli: creating az's configuration folder: %w", err)
	}
	b, err := json.MarshalIndent(CloudConfig(cfg.EmulatorURL), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "cloud.json"), append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("azcli: writing the cloud definition: %w", err)
	}
	s, err := NewSentinel()
	if err != nil {
		return nil, err
	}
	c := &CLI{cfg: cfg, bin: bin, sentinel: s}
	c.env = Environ(os.Environ(), cfg.Dir, cfg.CAFile, s.URL())
	return c, nil
}

// CloudConfig returns the cloud definition `az cloud register --cloud-config` takes for an
// emulator at base (https://127.0.0.1:PORT, no trailing slash).
func CloudConfig(base string) map[string]any {
	return map[string]any{
		"endpoints": map[string]string{
			"activeDirectory":                base + "/adfs",
			"activeDirectoryResourceId":      "https://management.core.windows.net/",
			"activeDirectoryGraphResourceId": "https://graph.windows.net/",
			"microsoftGraphResourceId":       base + "/",
			"resourceManager":                base,
		},
	}
}

// Environ returns parent without the variables that would change what az does (AZURE_*,
// CA bundles, proxies) and with az's private configuration: configDir, telemetry off, JSON
// output, caFile trusted, and every proxy variable set to proxyURL except for loopback
// addresses.
func Environ(parent []string, configDir, caFile, proxyURL string) []string {
	drop := map[string]bool{
		"REQUESTS_CA_BUNDLE": true, "CURL_CA_BUNDLE": true, "SSL_CERT_FILE": true, "SSL_CERT_DIR": true,
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
	}
	var env []string
	for _, kv := range parent {
		k, _, _ := strings.Cut(kv, "=")
		uk := strings.ToUpper(k)
		if drop[uk] || strings.HasPrefix(uk, "AZURE_") {
			continue
		}
		env = append(env, kv)
	}
	const noProxy = "127.0.0.1,localhost,::1"
	return append(env,
		"AZURE_CONFIG_DIR="+configDir,
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_OUTPUT=json",
		"AZURE_CORE_NO_COLOR=true",
		"AZURE_CORE_SURVEY_MESSAGE=false",
		"REQUESTS_CA_BUNDLE="+caFile,
		"HTTPS_PROXY="+proxyURL, "https_proxy="+proxyURL,
		"HTTP_PROXY="+proxyURL, "http_proxy="+proxyURL,
		"ALL_PROXY="+proxyURL, "all_proxy="+proxyURL,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy,
	)
}

// CloudName returns the name of the emulator's cloud in az.
func (c *CLI) CloudName() string { return c.cfg.CloudName }

// Dir returns az's configuration folder.
func (c *CLI) Dir() string { return c.cfg.Dir }

// Sentinel returns the proxy that catches az's calls to anything but loopback.
func (c *CLI) Sentinel() *Sentinel { return c.sentinel }

// Close stops the sentinel.
func (c *CLI) Close() error { return c.sentinel.Close() }

// VersionCheck is the one call az 2.45 makes off loopback in these flows: on its first
// command in a fresh configuration folder it checks connectivity (HEAD
// https://azure.microsoft.com, from handle_version_update in azure/cli/core/util.py, which
// no setting turns off) before it would look for a newer version on GitHub. The sentinel
// refuses it and az carries on without the version information.
const VersionCheck = "CONNECT azure.microsoft.com:443"

// StrayCalls returns the requests az (or anything else given the sentinel as proxy) tried
// to send off loopback, other than VersionCheck.
func (c *CLI) StrayCalls() []string {
	var out []string
	for _, s := range c.sentinel.Stray() {
		if s != VersionCheck {
			out = append(out, s)
		}
	}
	return out
}

// Result is one finished az command.
type Result struct {
	// Args are az's arguments (without the executable).
	Args   []string
	Stdout []byte
	Stderr []byte
	// ExitCode is az's exit status, -1 when it did not run to an end.
	ExitCode int
	Started  time.Time
	// Duration is the wall time from starting the process to its exit.
	Duration time.Duration
}

// Command returns the command line, for messages.
func (r Result) Command() string { return "az " + strings.Join(r.Args, " ") }

// Errors returns the messages az printed as errors, without its logger names and without
// the duplicate its --debug mode prints.
func (r Result) Errors() []string { return ErrorLines(r.Stderr) }

// ExitError is an az command that ran and failed.
type ExitError struct {
	Result Result
}

func (e *ExitError) Error() string {
	msg := strings.Join(e.Result.Errors(), "; ")
	if msg == "" {
		msg = strings.TrimSpace(lastLines(e.Result.Stderr, 3))
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Result.Command(), e.Result.ExitCode, msg)
}

// Run runs az with args (plus --debug when Config.Debug) and records the result in the
// history. A command that exits non-zero returns its Result and an *ExitError; one that
// cannot start returns another error.
func (c *CLI) Run(ctx context.Context, args ...string) (Result, error) {
	if c.cfg.Debug {
		args = append(args[:len(args):len(args)], "--debug")
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Dir = c.cfg.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := Result{Args: args, Started: time.Now(), ExitCode: -1}
	err := cmd.Run()
	res.Duration = time.Since(res.Started)
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	c.mu.Lock()
	c.history = append(c.history, res)
	c.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ctx.Err() == nil:
		return res, &ExitError{Result: res}
	case err != nil:
		return res, fmt.Errorf("running %s: %w", res.Command(), err)
	}
	return res, nil
}

// History returns every command run so far, oldest first.
func (c *CLI) History() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Result{}, c.history...)
}

// Setup registers the emulator as a cloud and makes it az's active cloud.
func (c *CLI) Setup(ctx context.Context) error {
	if _, err := c.Run(ctx, "cloud", "register", "-n", c.cfg.CloudName, "--cloud-config", "@"+filepath.Join(c.cfg.Dir, "cloud.json")); err != nil {
		return err
	}
	_, err := c.Run(ctx, "cloud", "set", "-n", c.cfg.CloudName)
	return err
}

// Account is what `az login` prints for each account it found.
type Account struct {
	CloudName string `json:"cloudName"`
	ID        string `json:"id"`
	IsDefault bool   `json:"isDefault"`
	Name      string `json:"name"`
	State     string `json:"state"`
	TenantID  string `json:"tenantId"`
	User      struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"user"`
}

// Login signs az in as the service principal appID of tenant with a certificate and its
// private key in one PEM file, without subscriptions.
func (c *CLI) Login(ctx context.Context, appID, certAndKeyFile, tenant string) ([]Account, Result, error) {
	res, err := c.Run(ctx, "login", "--service-principal", "-u", appID, "-p", certAndKeyFile,
		"--tenant", tenant, "--allow-no-subscriptions", "--output", "json")
	if err != nil {
		return nil, res, err
	}
	var accts []Account
	if err := json.Unmarshal(res.Stdout, &accts); err != nil {
		return nil, res, fmt.Errorf("decoding the output of %s: %w", res.Command(), err)
	}
	return accts, res, nil
}

// AppendCertificate adds the certificate in certFile (PEM or DER) to the app registration
// appID, keeping the others: `az ad app credential reset --id appID --cert @certFile --append`.
func (c *CLI) AppendCertificate(ctx context.Context, appID, certFile string) (Result, error) {
	return c.Run(ctx, "ad", "app", "credential", "reset", "--id", appID, "--cert", "@"+certFile, "--append", "--output", "json")
}

// KeyCredential is one certificate credential as `az ad app credential list --cert` prints
// it: Graph's keyCredential JSON.
type KeyCredential struct {
	CustomKeyIdentifier *string   `json:"customKeyIdentifier"`
	DisplayName         *string   `json:"displayName"`
	EndDateTime         time.Time `json:"endDateTime"`
	Key                 *string   `json:"key"`
	KeyID               string    `json:"keyId"`
	StartDateTime       time.Time `json:"startDateTime"`
	Type                string    `json:"type"`
	Usage               string    `json:"usage"`
}

// Thumbprint returns the certificate's SHA-1 thumbprint (upper-case hex) as the
// customKeyIdentifier says it: the 40 hex digits Graph shows, or the base64 of the 20 raw
// bytes. It returns "" for any other customKeyIdentifier.
func (k KeyCredential) Thumbprint() string { return ThumbprintOfCKI(k.CustomKeyIdentifier) }

// ThumbprintOfCKI reads a thumbprint out of a customKeyIdentifier as Graph renders it (see
// KeyCredential.Thumbprint); cki may be nil.
func ThumbprintOfCKI(cki *string) string {
	if cki == nil {
		return ""
	}
	s := *cki
	if len(s) == 40 {
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToUpper(s)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 20 {
		return strings.ToUpper(hex.EncodeToString(b))
	}
	return ""
}

// ListCertificates returns the certificate credentials of the app registration appID.
func (c *CLI) ListCertificates(ctx context.Context, appID string) ([]KeyCredential, Result, error) {
	res, err := c.Run(ctx, "ad", "app", "credential", "list", "--id", appID, "--cert", "--output", "json")
	if err != nil {
		return nil, res, err
	}
	var creds []KeyCredential
	if err := json.Unmarshal(res.Stdout, &creds); err != nil {
		return nil, res, fmt.Errorf("decoding the output of %s: %w", res.Command(), err)
	}
	return creds, res, nil
}

// DirectoryObject is one owner as `az ad app owner list` prints it: Graph's directoryObject
// JSON (a servicePrincipal or a user).
type DirectoryObject struct {
	ODataType         string `json:"@odata.type"`
	ID                string `json:"id"`
	AppID             string `json:"appId"`
	DisplayName       string `json:"displayName"`
	UserPrincipalName string `json:"userPrincipalName"`
}

// ListAppOwners returns the owners of the app registration appID: `az ad app owner list --id
// appID`.
func (c *CLI) ListAppOwners(ctx context.Context, appID string) ([]DirectoryObject, Result, error) {
	res, err := c.Run(ctx, "ad", "app", "owner", "list", "--id", appID, "--output", "json")
	if err != nil {
		return nil, res, err
	}
	var owners []DirectoryObject
	if err := json.Unmarshal(res.Stdout, &owners); err != nil {
		return nil, res, fmt.Errorf("decoding the output of %s: %w", res.Command(), err)
	}
	return owners, res, nil
}

// Exchange is one HTTP request az made, as its --debug output tells it.
type Exchange struct {
	Method string
	// URL is the full URL for requests az's own HTTP layer logged, and scheme://host/path for
	// those only urllib3 logged (MSAL's calls to the token endpoint).
	URL string
	// RequestBody is the body az logged ("" for none). Only requests through az's own HTTP
	// layer (Graph, ARM) have one.
	RequestBody string
	// Status is the answer's status, 0 when none was logged.
	Status int
	// ResponseBody is the answer's body as logged.
	ResponseBody string
}

func (x Exchange) String() string {
	s := fmt.Sprintf("%s %s -> %d", x.Method, x.URL, x.Status)
	if x.RequestBody != "" {
		s += "\n    request:  " + x.RequestBody
	}
	if x.ResponseBody != "" {
		s += "\n    response: " + x.ResponseBody
	}
	return s
}

var (
	// logLine is one line of az's log: "LEVEL: logger.name: message".
	logLine = regexp.MustCompile(`^(DEBUG|INFO|WARNING|ERROR|CRITICAL): ([\w.]+): ?(.*)$`)
	// wireLine is urllib3's line for each request: `https://host:port "GET /path HTTP/1.1" 200 123`.
	wireLine = regexp.MustCompile(`^(https?://\S+) "([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})`)
)

// Exchanges reads the HTTP exchanges out of the stderr of an az command run with --debug:
// every request az's own HTTP layer logged (method, URL, bodies, status) and every other
// request urllib3 logged (method, URL, status), in order.
func Exchanges(stderr []byte) []Exchange {
	var (
		out     []Exchange
		cur     = -1 // index in out of the exchange az's HTTP layer is logging
		wired   bool // whether urllib3 logged cur's request already
		capture string
	)
	for line := range strings.Lines(string(stderr)) {
		line = strings.TrimRight(line, "\r\n")
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		msg := m[3]
		if capture != "" && cur >= 0 {
			switch capture {
			case "request":
				if msg != "None" {
					out[cur].RequestBody = msg
				}
			case "response":
				out[cur].ResponseBody = msg
				cur = -1
			}
			capture = ""
			continue
		}
		switch {
		case strings.HasPrefix(msg, "Request URL: "):
			out = append(out, Exchange{URL: unquote(strings.TrimPrefix(msg, "Request URL: "))})
			cur, wired = len(out)-1, false
		case strings.HasPrefix(msg, "Request method: ") && cur >= 0:
			out[cur].Method = unquote(strings.TrimPrefix(msg, "Request method: "))
		case msg == "Request body:" && cur >= 0:
			capture = "request"
		case strings.HasPrefix(msg, "Response status: ") && cur >= 0:
			out[cur].Status, _ = strconv.Atoi(strings.TrimPrefix(msg, "Response status: "))
		case msg == "Response content:" && cur >= 0:
			capture = "response"
		default:
			w := wireLine.FindStringSubmatch(msg)
			if w == nil {
				continue
			}
			if cur >= 0 && !wired && out[cur].Method == w[2] {
				wired = true
				continue
			}
			status, _ := strconv.Atoi(w[4])
			out = append(out, Exchange{Method: w[2], URL: w[1] + w[3], Status: status})
		}
	}
	return out
}

// unquote removes the quotes of a Python repr of a string.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// ErrorLines returns the messages of az's ERROR lines in stderr. With --debug az prints
// each error twice, as "ERROR: cli.<module>: message" and "ERROR: az_command_data_logger:
// message"; ErrorLines keeps the first, without the logger name.
func ErrorLines(stderr []byte) []string {
	var out []string
	for line := range strings.Lines(string(stderr)) {
		line = strings.TrimRight(line, "\r\n")
		msg, ok := strings.CutPrefix(line, "ERROR: ")
		if !ok {
			continue
		}
		if strings.HasPrefix(msg, "az_command_data_logger: ") {
			continue
		}
		if strings.HasPrefix(msg, "cli.") {
			if _, rest, ok := strings.Cut(msg, ": "); ok {
				msg = rest
			}
		}
		out = append(out, msg)
	}
	return out
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Sentinel is an HTTP proxy on loopback that forwards nothing: it answers every request,
// CONNECT included, with 403 and remembers it. Pointing a client's proxy variables at it
// makes any call that is not for loopback fail at once and leaves a trace to report.
type Sentinel struct {
	srv  *http.Server
	url  string
	done chan struct{} // closed when Serve has returned

	// mu protects stray.
	mu    sync.Mutex
	stray []string
}

// NewSentinel starts a Sentinel on a free loopback port.
func NewSentinel() (*Sentinel, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("azcli: starting the proxy sentinel: %w", err)
	}
	s := &Sentinel{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *Sentinel) serve(w http.ResponseWriter, r *http.Request) {
	target := r.RequestURI
	if r.Method == http.MethodConnect {
		target = r.Host
	}
	s.mu.Lock()
	s.stray = append(s.stray, r.Method+" "+target)
	s.mu.Unlock()
	w.Header().Set("Connection", "close")
	http.Error(w, "certagent test sentinel: no request may leave this machine ("+r.Method+" "+target+")", http.StatusForbidden)
}

// URL returns the proxy's address, http://127.0.0.1:PORT.
func (s *Sentinel) URL() string { return s.url }

// Stray returns the requests that reached the sentinel ("CONNECT host:443", "GET
// http://host/path"), oldest first.
func (s *Sentinel) Stray() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.stray...)
}

// Close stops the sentinel and waits for it to end. It is safe to call twice.
func (s *Sentinel) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
