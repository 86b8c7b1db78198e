package standby

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/apitoken"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/logevent"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
)

// records captures log records: level, message, kind and attributes as text.
type records struct {
	mu  sync.Mutex
	all []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s [%s]", rec.Level, rec.Message, logevent.Of(rec))
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.all = append(r.all, b.String())
	r.mu.Unlock()
	return nil
}

// with returns the records holding every one of subs.
func (r *records) with(subs ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
next:
	for _, s := range r.all {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// fakeAgent serves "agent" on every path of its listener until its context ends.
type fakeAgent struct {
	ln     net.Listener
	status apitype.Status
	fail   error // Run returns it at once
	closed bool
}

func (a *fakeAgent) Run(ctx context.Context) error {
	if a.fail != nil {
		a.ln.Close()
		return a.fail
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "agent") })}
	go srv.Serve(a.ln)
	<-ctx.Done()
	srv.Close()
	return nil
}
func (a *fakeAgent) Status(context.Context) apitype.Status { return a.status }
func (a *fakeAgent) Close() error                          { a.closed = true; return nil }

// env is a config folder, a free API port and a Run in the background.
type env struct {
	t       *testing.T
	dir     string
	file    string
	listen  string
	log     *records
	mu      sync.Mutex
	starts  int
	startFn func(cfg *config.Config, ln net.Listener) (Agent, error)
	done    chan error
	cancel  context.CancelFunc
	ready   chan struct{}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	e := &env{t: t, dir: dir, file: filepath.Join(dir, "certagent.yaml"), listen: listen, log: &records{}, ready: make(chan struct{})}
	e.startFn = func(cfg *config.Config, ln net.Listener) (Agent, error) { return &fakeAgent{ln: ln}, nil }
	return e
}

// config returns a config with the given top-level body plus the test's folders and port.
func (e *env) config(body string) string {
	return fmt.Sprintf("%s\nstate_dir: %q\ndrop_folder: %q\napi:\n  listen: %s\n", body,
		filepath.Join(e.dir, "state"), filepath.Join(e.dir, "drop"), e.listen)
}

const complete = "tenant_id: contoso.onmicrosoft.com\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333"

func (e *env) write(data string) {
	e.t.Helper()
	if err := os.WriteFile(e.file, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start(mod func(*Config)) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	c := Config{
		ConfigFile: e.file,
		Start: func(cfg *config.Config, ln net.Listener) (Agent, error) {
			e.mu.Lock()
			e.starts++
			e.mu.Unlock()
			return e.startFn(cfg, ln)
		},
		Ready:   func() { close(e.ready) },
		Version: "1.2.3-test",
		Logger:  slog.New(e.log),
		Defaults: func() *config.Config {
			c := config.Default()
			c.StateDir, c.API.Listen = filepath.Join(e.dir, "state"), e.listen
			c.API.TokenFile = filepath.Join(c.StateDir, "api.token")
			return c
		},
		Poll: 20 * time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		ExpiryFirst: 50 * time.Millisecond, ExpiryCheck: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&c)
	}
	go func() { e.done <- Run(ctx, c) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			e.t.Error("Run did not return after its context ended")
		}
	})
}

// stop ends Run and returns its error.
func (e *env) stop() error {
	e.t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		e.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		e.t.Fatal("Run did not return after its context ended")
		return nil
	}
}

func (e *env) startCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; log:\n%s", what, strings.Join(e.log.with(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) get(path string) (int, string) {
	resp, err := http.Get("http://" + e.listen + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// status reads the standby status with the token from the state folder.
func (e *env) status() apitype.Status {
	e.t.Helper()
	st, err := e.tryStatus()
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// tryStatus is status for a poll: the standby restarts its server on each change.
func (e *env) tryStatus() (apitype.Status, error) {
	tok, err := client.ReadTokenFile(filepath.Join(e.dir, "state", "api.token"))
	if err != nil {
		return apitype.Status{}, err
	}
	c, err := client.New("http://"+e.listen, tok)
	if err != nil {
		return apitype.Status{}, err
	}
	return c.Status(context.Background())
}

func problemCodes(st apitype.Status) string {
	var cs []string
	for _, p := range st.Problems {
		cs = append(cs, p.Code)
	}
	return strings.Join(cs, ",")
}

// TestNoConfigFileThenComplete: installed before it is configured, the service serves the
// API, says what is missing, and starts the agent when the file appears.
func TestNoConfigFileThenComplete(t *testing.T) {
	e := newEnv(t)
	e.start(nil)
	<-e.ready
	e.waitFor("standby", func() bool { code, _ := e.get("/livez"); return code == 200 })
	if code, body := e.get("/readyz"); code != 503 || !strings.Contains(body, "there is no config file") {
		t.Errorf("/readyz = %d %s, want 503 naming the missing file", code, body)
	}
	st := e.status()
	if problemCodes(st) != health.NotConfigured || st.Version != "1.2.3-test" {
		t.Fatalf("status problems %q version %q, want not_configured and the version", problemCodes(st), st.Version)
	}
	for _, want := range []string{e.file, "tenant_id, auth.client_id, target.app_id", "certagent setup"} {
		if !strings.Contains(st.Problems[0].Message, want) {
			t.Errorf("not_configured message %q does not name %q", st.Problems[0].Message, want)
		}
	}
	if len(e.log.with("WARN", "[not_configured]")) != 1 || len(e.log.with("[started]", "standby")) != 1 {
		t.Errorf("want one not_configured and one started record; log:\n%s", strings.Join(e.log.with(), "\n"))
	}

	// An incomplete file: the problem names what is still missing.
	e.write(e.config("tenant_id: contoso.onmicrosoft.com"))
	e.waitFor("the new problem", func() bool {
		_, body := e.get("/readyz")
		return strings.Contains(body, "does not set auth.client_id, target.app_id")
	})
	if e.startCount() != 0 {
		t.Fatal("the agent was started with an incomplete config")
	}

	// Complete: the agent replaces the standby on the same address, without a restart.
	e.write(e.config(complete))
	e.waitFor("the agent", func() bool { _, body := e.get("/readyz"); return body == "agent" })
	if len(e.log.with("[started]", "agent started")) != 1 {
		t.Errorf("no started event for the agent; log:\n%s", strings.Join(e.log.with(), "\n"))
	}
	if err := e.stop(); err != nil {
		t.Errorf("Run = %v, want nil after its context ended", err)
	}
	if len(e.log.with("[stopped]")) != 1 {
		t.Errorf("no stopped event; log:\n%s", strings.Join(e.log.with(), "\n"))
	}
}

// TestInvalidConfigAtStartStops: only a config that cannot be used when the service starts
// ends it, with file and line.
func TestInvalidConfigAtStartStops(t *testing.T) {
	e := newEnv(t)
	e.write(e.config(complete + "\npolicy:\n  aproval: manual"))
	e.start(nil)
	var ce *ConfigError
	var err error
	select {
	case err = <-e.done:
		e.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on an invalid config")
	}
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), e.file+":") || !strings.Contains(err.Error(), "policy.aproval") {
		t.Fatalf("Run = %v, want a *ConfigError naming file:line and the key", err)
	}
	if len(e.log.with("ERROR", "[config_invalid]", "policy.aproval")) != 1 {
		t.Errorf("no config_invalid event; log:\n%s", strings.Join(e.log.with(), "\n"))
	}
	select {
	case <-e.ready:
		t.Error("Ready was called for a service that stops at once")
	default:
	}
}

// TestLaterInvalidConfigKeepsRunning: an agent keeps running when its file breaks, restarts
// when it changes to another usable config, and a standby reports the broken file.
func TestLaterInvalidConfigKeepsRunning(t *testing.T) {
	e := newEnv(t)
	e.write(e.config(complete))
	e.start(nil)
	e.waitFor("the agent", func() bool { _, body := e.get("/livez"); return body == "agent" })

	e.write(e.config(complete + "\nunknown_key: 1"))
	e.waitFor("config_invalid", func() bool { return len(e.log.with("[config_invalid]", "unknown_key")) == 1 })
	time.Sleep(100 * time.Millisecond)
	if _, body := e.get("/livez"); body != "agent" || e.startCount() != 1 {
		t.Fatalf("the agent did not keep running (starts %d, /livez %q)", e.startCount(), body)
	}

	e.write(e.config(complete + "\npolicy:\n  approval: manual"))
	e.waitFor("a restart", func() bool { return e.startCount() == 2 })

	// Required keys removed: back to standby; then broken: the standby says so.
	e.write(e.config("tenant_id: contoso.onmicrosoft.com"))
	e.waitFor("standby", func() bool { code, _ := e.get("/readyz"); return code == 503 })
	e.write(e.config("tenant_id: [unclosed"))
	e.waitFor("config_invalid on standby", func() bool {
		st, err := e.tryStatus()
		return err == nil && problemCodes(st) == health.ConfigInvalid && strings.Contains(st.Problems[0].Message, e.file+":")
	})
}

// TestStartFailures: a missing credential and other failed starts are problems on standby,
// tried again after a pause and at once when the credential files appear.
func TestStartFailures(t *testing.T) {
	e := newEnv(t)
	e.write(e.config(complete))
	certFile := filepath.Join(e.dir, "state", "agent.pem")
	var fail error = fmt.Errorf("loading the agent's own credential: %w; run `certagent credential init`", credential.ErrNotFound)
	e.startFn = func(cfg *config.Config, ln net.Listener) (Agent, error) {
		if _, err := os.Stat(certFile); err != nil {
			return nil, fail
		}
		return &fakeAgent{ln: ln}, nil
	}
	e.start(func(c *Config) { c.RetryMin, c.RetryMax = time.Hour, time.Hour })
	e.waitFor("standby", func() bool { code, _ := e.get("/readyz"); return code == 503 })
	st := e.status()
	if problemCodes(st) != health.AgentCredentialMissing || !strings.Contains(st.Problems[0].Message, "certagent credential init") {
		t.Fatalf("problems %+v, want agent_credential_missing saying what to run", st.Problems)
	}
	if len(e.log.with("ERROR", "[start_failed]", "agent_credential_missing")) != 1 {
		t.Errorf("no start_failed event; log:\n%s", strings.Join(e.log.with(), "\n"))
	}
	// The retry pause is an hour: only the new file can start it now.
	if err := os.WriteFile(certFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the agent", func() bool { _, body := e.get("/livez"); return body == "agent" })

	// A part that fails while running: start_failed, tried again after the pause.
	e2 := newEnv(t)
	e2.write(e2.config(complete))
	e2.startFn = func(cfg *config.Config, ln net.Listener) (Agent, error) {
		return &fakeAgent{ln: ln, fail: errors.New("store exploded")}, nil
	}
	e2.start(nil)
	e2.waitFor("retries", func() bool { return e2.startCount() >= 3 })
	e2.waitFor("standby problem", func() bool {
		_, body := e2.get("/readyz")
		return strings.Contains(body, "store exploded")
	})
	if st := e2.status(); problemCodes(st) != health.StartFailed {
		t.Errorf("problems %+v, want start_failed", st.Problems)
	}
}

// TestInitialValues: the installer's values become the config file when there is none; values
// that make no usable config write nothing and say why; an existing file is never touched.
func TestInitialValues(t *testing.T) {
	e := newEnv(t)
	v := config.Initial{TenantID: "contoso.onmicrosoft.com", ClientID: "22222222-2222-2222-2222-222222222222",
		TargetAppID: "33333333-3333-3333-3333-333333333333", APIListen: e.listen, DropFolder: filepath.Join(e.dir, "drop")}
	e.start(func(c *Config) {
		c.Initial = func() (config.Initial, string, error) { return v, "the test's values", nil }
	})
	e.waitFor("the agent", func() bool { _, body := e.get("/livez"); return body == "agent" })
	b, err := os.ReadFile(e.file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"written by the CertAgent service", "the test's values", v.TenantID, v.ClientID, v.TargetAppID} {
		if !strings.Contains(string(b), want) {
			t.Errorf("written config lacks %q:\n%s", want, b)
		}
	}

	// Invalid values: nothing written, the standby says which value is wrong.
	e2 := newEnv(t)
	bad := config.Initial{TenantID: "not a tenant", APIListen: e2.listen}
	e2.start(func(c *Config) {
		c.Initial = func() (config.Initial, string, error) { return bad, "HKLM\\SOFTWARE\\CertAgent", nil }
	})
	e2.waitFor("standby", func() bool { code, _ := e2.get("/readyz"); return code == 503 })
	if _, err := os.Stat(e2.file); err == nil {
		t.Error("a config was written from invalid values")
	}
	// The standby listens on the defaults (Defaults), not on the invalid values' address.
	st := e2.status()
	if problemCodes(st) != health.ConfigInvalid || !strings.Contains(st.Problems[0].Message, "tenant_id") ||
		!strings.Contains(st.Problems[0].Message, `HKLM\SOFTWARE\CertAgent`) {
		t.Errorf("problems %+v, want config_invalid naming tenant_id and the source", st.Problems)
	}

	// An existing file is never overwritten, even an incomplete one.
	e3 := newEnv(t)
	e3.write(e3.config("# mine"))
	e3.start(func(c *Config) {
		c.Initial = func() (config.Initial, string, error) { return v, "x", nil }
	})
	e3.waitFor("standby", func() bool { code, _ := e3.get("/readyz"); return code == 503 })
	if b, _ := os.ReadFile(e3.file); !strings.HasPrefix(string(b), "# mine") {
		t.Errorf("an existing config was overwritten:\n%s", b)
	}
}

// TestExpiryEvents: the running agent's certificate problems become certificate_expiring
// events, each at most once a day.
func TestExpiryEvents(t *testing.T) {
	e := newEnv(t)
	e.write(e.config(complete))
	st := apitype.Status{Problems: []apitype.StatusProblem{
		{Code: health.CertificateExpiring, Severity: health.Warning, Message: "the newest certificate expires in 20 days"},
		{Code: health.AwaitingConfirmation, Severity: health.Info, Message: "tell the provider"},
	}}
	e.startFn = func(cfg *config.Config, ln net.Listener) (Agent, error) { return &fakeAgent{ln: ln, status: st}, nil }
	e.start(nil)
	e.waitFor("the event", func() bool { return len(e.log.with("[certificate_expiring]")) > 0 })
	time.Sleep(200 * time.Millisecond) // several more checks
	if got := e.log.with("[certificate_expiring]"); len(got) != 1 || !strings.Contains(got[0], "WARN the newest certificate expires in 20 days") {
		t.Errorf("certificate_expiring records %q, want exactly one warning", got)
	}
	if len(e.log.with("tell the provider")) != 0 {
		t.Error("a problem that is not about expiry was logged as an event")
	}
}

// TestStandbyTokenIsTheAgents: the standby makes the token file as the agent does, private,
// and the routes that need the agent answer 503 with the problem's code.
func TestStandbyTokenIsTheAgents(t *testing.T) {
	e := newEnv(t)
	e.start(nil)
	e.waitFor("standby", func() bool { code, _ := e.get("/livez"); return code == 200 })
	tok, err := apitoken.LoadOrCreate(filepath.Join(e.dir, "state", "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New("http://"+e.listen, tok)
	_, err = c.Rotations(context.Background(), "")
	if !client.IsCode(err, health.NotConfigured) {
		t.Errorf("rotations on standby: %v, want a not_configured problem", err)
	}
	if code, _ := e.get("/api/v1/status"); code != 401 {
		t.Errorf("status without a token: %d, want 401", code)
	}
}
