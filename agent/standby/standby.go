// Package standby keeps certagent's service up when the agent cannot run yet, and runs the
// agent as soon as it can (docs/contract.md, "Service").
//
// An MSI installs and starts the service before anyone has configured it; the agent's own
// app may not be registered yet; its key may be missing. Exiting would make the service
// manager restart it in a loop, and would hide the reason. Instead Run serves the local API
// with the agent's token on its address: /livez answers, /readyz is 503, and the status lists
// what is missing (not_configured naming each empty key, agent_credential_missing,
// start_failed with the error). It watches the config file (its content) and the agent's
// credential files (their size and time), and starts the real agent as soon as they allow
// it, without a restart of the service. A start that fails for another reason is tried again
// with a growing pause.
//
// Only a config that cannot be used when the service starts ends Run, with a *ConfigError:
// the service manager then shows the service stopped and the log names file and line. A
// config that becomes unusable later is logged and reported, and the service keeps what it
// runs (an editor saving half a file must not stop the agent).
//
// While the agent runs, Run restarts it when the config file changes to another usable
// config, and logs the certificate problems of its status as certificate_expiring events (at
// most once a day each). Every record meant for the Event Log and the journal carries its
// logevent.Kind.
package standby

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/apitoken"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/logevent"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
)

// Agent is the real agent, as Config.Start builds it.
type Agent interface {
	// Run runs the agent, serving the API on the listener given to Start, until ctx ends
	// (it then returns nil) or a part fails.
	Run(ctx context.Context) error
	// Status returns the agent's status, as GET /api/v1/status serves it.
	Status(ctx context.Context) apitype.Status
	// Close releases what the agent opened.
	Close() error
}

// Config holds what Run needs.
type Config struct {
	// ConfigFile is the config the service runs with (`run -c FILE`), absolute. Required.
	ConfigFile string
	// Start builds the agent from a complete config; the agent serves the API on ln (and
	// closes it). Required.
	Start func(cfg *config.Config, ln net.Listener) (Agent, error)
	// Initial, if set, returns the values to write ConfigFile from when it does not exist
	// (on Windows, the MSI's properties), and where they come from, for messages. Empty
	// values write nothing.
	Initial func() (v config.Initial, source string, err error)
	// Ready, if set, is called once, when the API first listens (or fails to): the service
	// manager may then call the service running.
	Ready func()
	// Defaults, if set, returns the config the standby uses while the file cannot be read
	// (its API address, state folder and token file); default config.Default().
	Defaults func() *config.Config
	// Version is the agent's version, shown in the standby status.
	Version string
	// Logger receives the events (logevent kinds) and the rest. Required.
	Logger *slog.Logger

	// Poll is how often the watched files are checked (default 2s).
	Poll time.Duration
	// RetryMin and RetryMax bound the pause before a failed start is tried again (default 5s
	// and 5m); the pause doubles after each failure.
	RetryMin, RetryMax time.Duration
	// ExpiryCheck is how often the running agent's status is checked for certificate
	// problems (default 5m).
	ExpiryCheck time.Duration
	// ExpiryFirst is when the first check is, after the agent starts (default 1m: the agent
	// reads the app from Graph first).
	ExpiryFirst time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ConfigError is Run's error when the config the service starts with cannot be used: not a
// missing file or empty required keys (those mean standby), but a syntax error, an unknown
// key or a wrong value. Err is config's error (Errors, naming file and line).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns config's error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Run keeps the service up until ctx ends (it then returns nil), running the agent whenever
// the config and the files allow it and the standby API otherwise. It returns a *ConfigError
// when the config it starts with cannot be used.
func Run(ctx context.Context, c Config) error {
	if c.ConfigFile == "" || c.Start == nil || c.Logger == nil {
		return errors.New("standby: Config.ConfigFile, Start and Logger are required")
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.ExpiryCheck <= 0 {
		c.ExpiryCheck = 5 * time.Minute
	}
	if c.ExpiryFirst <= 0 {
		c.ExpiryFirst = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	s := &supervisor{c: c, log: c.Logger, started: c.Now(), expiryLogged: map[string]time.Time{}}
	err := s.run(ctx)
	var ce *ConfigError
	if errors.As(err, &ce) {
		return err
	}
	if ctx.Err() != nil {
		s.log.Info("service stopped", logevent.Attr(logevent.Stopped))
		return nil
	}
	return err
}

type supervisor struct {
	c       Config
	log     *slog.Logger
	started time.Time
	// ready is set once Config.Ready was called.
	ready bool
	// lastUsable is the last config that loaded (for the standby's address and token when
	// the file later breaks).
	lastUsable *config.Config
	// logged is the last problem set logged on standby, to log each change once.
	logged string
	// expiryLogged remembers when each certificate problem was last logged.
	expiryLogged map[string]time.Time
	// seen is the config file's contentHash from before the last load.
	seen string
}

// errReload ends the agent's run when the config changed to another usable one.
var errReload = errors.New("config changed")

func (s *supervisor) markReady() {
	if !s.ready {
		s.ready = true
		if s.c.Ready != nil {
			s.c.Ready()
		}
	}
}

// plan is what one look at the config decided.
type plan struct {
	cfg      *config.Config   // never nil: the config, or the defaults with File set
	complete bool             // the agent may start
	problems []health.Problem // why not
	invalid  error            // the config cannot be used (config_invalid)
	// seen is the watched files' fingerprint from before they were read (see look).
	seen string
}

func (s *supervisor) run(ctx context.Context) error {
	first := true
	retry := time.Duration(0)
	for {
		p := s.look()
		if p.invalid != nil {
			s.log.Error("config invalid", "file", s.c.ConfigFile, "err", p.invalid, logevent.Attr(logevent.ConfigInvalid))
			if first {
				return &ConfigError{Err: p.invalid}
			}
			s.logged = "" // the standby below logs what it serves
		}
		first = false
		var wait time.Duration
		if p.complete {
			t0 := s.c.Now()
			err := s.runAgent(ctx, p.cfg, p.seen)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, errReload):
				retry = 0
				continue
			}
			if s.c.Now().Sub(t0) > time.Minute {
				retry = 0 // it ran a while: this is a new failure, not the same one again
			}
			retry = min(max(2*retry, s.c.RetryMin), s.c.RetryMax)
			wait = retry
			p.problems = []health.Problem{startProblem(err, retry)}
		}
		if err := s.standby(ctx, p, wait); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// startProblem turns a failed start into the problem the standby status shows.
func startProblem(err error, retry time.Duration) health.Problem {
	if errors.Is(err, credential.ErrNotFound) {
		return health.Problem{Code: health.AgentCredentialMissing, Severity: health.Critical,
			Message: err.Error() + " (or run `certagent setup`); the service starts the agent by itself once the files exist"}
	}
	return health.Problem{Code: health.StartFailed, Severity: health.Critical,
		Message: fmt.Sprintf("the agent could not start: %v; trying again in %s, and at once when the config or the agent's credential changes", err, retry)}
}

// look loads the config, writing it first from Config.Initial when it does not exist.
func (s *supervisor) look() plan {
	p := s.load()
	// What the watchers compare with: the config as it was before it was read, and the
	// credential files as they are before the agent tries to load them.
	p.seen = s.seen + (&watcher{stat: credentialFiles(p.cfg)}).statPart()
	return p
}

func (s *supervisor) load() plan {
	path := s.c.ConfigFile
	s.seen = contentHash(path)
	cfg, missing, err := config.LoadIncomplete(path)
	if errors.Is(err, fs.ErrNotExist) {
		if p, written := s.writeInitial(); !written {
			return p
		}
		s.seen = contentHash(path)
		cfg, missing, err = config.LoadIncomplete(path)
	}
	if err != nil {
		p := s.fallback()
		if errors.Is(err, fs.ErrNotExist) {
			// Gone between the write and the read: look again at the next change.
			p.problems = []health.Problem{s.notConfigured(nil)}
			return p
		}
		p.invalid = err
		p.problems = []health.Problem{{Code: health.ConfigInvalid, Severity: health.Critical,
			Message: fmt.Sprintf("%v; fix the file: the service picks up the change by itself", err)}}
		return p
	}
	s.lastUsable = cfg
	if len(missing) > 0 {
		return plan{cfg: cfg, problems: []health.Problem{s.notConfigured(missing)}}
	}
	return plan{cfg: cfg, complete: true}
}

// fallback is the plan for a config that cannot be loaded: the last one that could, or the
// defaults.
func (s *supervisor) fallback() plan {
	if s.lastUsable != nil {
		return plan{cfg: s.lastUsable}
	}
	cfg := config.Default()
	if s.c.Defaults != nil {
		cfg = s.c.Defaults()
	}
	cfg.File = s.c.ConfigFile
	return plan{cfg: cfg}
}

// notConfigured names what to set; missing nil means there is no config file.
func (s *supervisor) notConfigured(missing []string) health.Problem {
	const fix = "`certagent setup` does it for you; the service picks up the change by itself"
	msg := fmt.Sprintf("%s does not set %s: set them (%s)", s.c.ConfigFile, strings.Join(missing, ", "), fix)
	if len(missing) == 1 {
		msg = fmt.Sprintf("%s does not set %s: set it (%s)", s.c.ConfigFile, missing[0], fix)
	}
	if missing == nil {
		msg = fmt.Sprintf("there is no config file %s: write one with %s (certagent.example.yaml documents every key; %s)",
			s.c.ConfigFile, strings.Join(config.Required, ", "), fix)
	}
	return health.Problem{Code: health.NotConfigured, Severity: health.Critical, Message: msg}
}

// writeInitial writes the config file from Config.Initial when it holds values that make a
// usable config. It reports whether it wrote; if not, the plan says why.
func (s *supervisor) writeInitial() (plan, bool) {
	p := s.fallback()
	p.problems = []health.Problem{s.notConfigured(nil)}
	if s.c.Initial == nil {
		return p, false
	}
	v, source, err := s.c.Initial()
	if err != nil {
		s.log.Warn("reading the installer's values for the config", "err", err)
		return p, false
	}
	if v.Empty() {
		return p, false
	}
	header := fmt.Sprintf(`certagent configuration, written by the CertAgent service at its first start from
%s. The service never overwrites this file: edit it here, and the
service picks up the change by itself. Every key, with its default and allowed values, is
documented in certagent.example.yaml (installed beside certagent).`, source)
	data, err := v.Render(header)
	if err == nil {
		_, _, err = config.ParseIncomplete(s.c.ConfigFile, data)
	}
	if err != nil {
		msg := fmt.Sprintf("the values from %s do not make a usable config, so %s was not written: %s; give corrected values, or write the file yourself",
			source, s.c.ConfigFile, withoutFile(err))
		s.log.Error("installer values invalid", "file", s.c.ConfigFile, "source", source, "err", withoutFile(err), logevent.Attr(logevent.ConfigInvalid))
		p.problems = []health.Problem{{Code: health.ConfigInvalid, Severity: health.Critical, Message: msg}}
		return p, false
	}
	if _, err := os.Lstat(s.c.ConfigFile); !errors.Is(err, fs.ErrNotExist) {
		return p, true // it appeared meanwhile: never overwrite, read it instead
	}
	// Private like the agent's other files: notify.webhook_url may carry a key.
	if err := securefile.WriteFile(s.c.ConfigFile, data); err != nil {
		s.log.Error("writing the config from the installer's values", "file", s.c.ConfigFile, "err", err, logevent.Attr(logevent.StartFailed))
		p.problems = []health.Problem{{Code: health.StartFailed, Severity: health.Critical,
			Message: fmt.Sprintf("could not write %s from %s: %v", s.c.ConfigFile, source, err)}}
		return p, false
	}
	s.log.Info("config written from the installer's values", "file", s.c.ConfigFile, "source", source)
	return p, true
}

// withoutFile formats config problems without the file name and line, which would point
// into a file that was never written.
func withoutFile(err error) string {
	var es config.Errors
	if !errors.As(err, &es) {
		return err.Error()
	}
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = (&config.Error{Key: e.Key, Msg: e.Msg}).Error()
	}
	return strings.Join(msgs, "; ")
}

// runAgent starts the agent and runs it until ctx ends, the config changes to another usable
// one (errReload) or it fails.
func (s *supervisor) runAgent(ctx context.Context, cfg *config.Config, seen string) error {
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("listening for the API on %s (api.listen): %w; another program (or another certagent) may hold the port: stop it, or set api.listen in %s to a free loopback port", cfg.API.Listen, err, cfg.File)
	}
	a, err := s.c.Start(cfg, ln)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	s.markReady()
	s.logged = ""
	s.log.Info("agent started", "version", s.c.Version, "config", cfg.File, "api", cfg.API.Listen, logevent.Attr(logevent.Started))

	w := newWatcher(s.c.ConfigFile, seen, cfg, false)
	poll := time.NewTicker(s.c.Poll)
	defer poll.Stop()
	expiry := time.NewTimer(s.c.ExpiryFirst)
	defer expiry.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("the agent stopped by itself")
			}
			s.log.Error("agent failed", "err", err, logevent.Attr(logevent.StartFailed))
			return err
		case <-poll.C:
			if !w.changed() {
				continue
			}
			_, missing, err := config.LoadIncomplete(cfg.File)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Error("config invalid; the agent keeps running with the config it started with",
					"file", cfg.File, "err", err, logevent.Attr(logevent.ConfigInvalid))
				continue
			}
			if err == nil && len(missing) == 0 {
				s.log.Info("config changed; restarting the agent with it", "file", cfg.File)
			} else {
				s.log.Warn("config no longer complete; stopping the agent", "file", cfg.File, "missing", missing)
			}
			cancel()
			if err := <-done; err != nil {
				s.log.Warn("agent stopped with an error", "err", err)
			}
			return errReload
		case <-expiry.C:
			s.logExpiry(ctx, a)
			expiry.Reset(s.c.ExpiryCheck)
		}
	}
}

// expiryCodes are the status problems logged as certificate_expiring events.
var expiryCodes = []string{health.CertificateExpiring, health.CertificateExpired, health.AgentCredentialExpiring, health.NoCertificates}

// logExpiry logs the running agent's certificate problems, each at most once a day.
func (s *supervisor) logExpiry(ctx context.Context, a Agent) {
	now := s.c.Now()
	for _, p := range a.Status(ctx).Problems {
		if !slices.Contains(expiryCodes, p.Code) || now.Sub(s.expiryLogged[p.Code]) < 24*time.Hour {
			continue
		}
		s.expiryLogged[p.Code] = now
		level := slog.LevelWarn
		if p.Severity == health.Critical {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, p.Message, "code", p.Code, logevent.Attr(logevent.CertificateExpiring))
	}
}

// standby serves the standby API until ctx ends, a watched file changes, or retry (when
// positive) has passed.
func (s *supervisor) standby(ctx context.Context, p plan, retry time.Duration) error {
	s.logProblems(p)
	b := &backend{cfg: p.cfg, problems: p.problems, version: s.c.Version, started: s.started, now: s.c.Now}
	var srv *http.Server
	if ln, err := net.Listen("tcp", p.cfg.API.Listen); err != nil {
		s.log.Error("standby cannot listen for the API", "api", p.cfg.API.Listen, "err", err)
	} else {
		h, err := api.New(api.Config{
			Status: b, Certificates: b, Rotations: b, DropFolder: b, Credential: b, Audit: b,
			Token: s.token(p.cfg), Logger: s.log, Version: s.c.Version, ListenAddr: p.cfg.API.Listen,
		})
		if err != nil {
			ln.Close()
			return err
		}
		srv = &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context { return ctx }}
		api.ServerLimits(srv)
		go srv.Serve(ln)
	}
	s.markReady()
	defer func() {
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		}
	}()

	w := newWatcher(s.c.ConfigFile, p.seen, p.cfg, true)
	poll := time.NewTicker(s.c.Poll)
	defer poll.Stop()
	var retryC <-chan time.Time
	if retry > 0 {
		t := time.NewTimer(retry)
		defer t.Stop()
		retryC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retryC:
			return nil
		case <-poll.C:
			if w.changed() {
				return nil
			}
		}
	}
}

// token returns the API token from the state folder (made private, as the agent makes it),
// so that the agent's clients can read the standby status. If that fails, the status cannot
// be read by anyone, but /livez and /readyz still answer: the token is a random one, kept in
// memory only.
func (s *supervisor) token(cfg *config.Config) []byte {
	err := securefile.MkdirAll(cfg.StateDir)
	if err == nil {
		err = s.prepareStore(cfg)
	}
	if err == nil {
		var tok []byte
		if tok, err = apitoken.LoadOrCreate(cfg.API.TokenFile); err == nil {
			return tok
		}
	}
	s.log.Error("standby cannot use the API token file; its status can be read by nobody", "token_file", cfg.API.TokenFile, "err", err)
	var raw [32]byte
	rand.Read(raw[:])
	return []byte(hex.EncodeToString(raw[:]))
}

// StorePath is the agent's store in cfg's state folder: agent.StorePath, which a test of
// cmd/certagent holds equal.
func StorePath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "certagent.db") }

// prepareStore makes the agent's store before the standby makes the API token, when neither
// exists: the agent takes a token without a store for a lost store (and refuses to start),
// so the two are made in the agent's order. A token without a store is left as it is: that
// is for the agent to report.
func (s *supervisor) prepareStore(cfg *config.Config) error {
	if _, err := os.Lstat(cfg.API.TokenFile); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Lstat(StorePath(cfg)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	st, err := store.Open(StorePath(cfg), store.Logger(s.log))
	if err != nil {
		return err
	}
	return st.Close()
}

// logProblems logs the standby's problems when they differ from what was logged last.
func (s *supervisor) logProblems(p plan) {
	var msgs []string
	for _, pr := range p.problems {
		msgs = append(msgs, pr.Code+": "+pr.Message)
	}
	key := strings.Join(msgs, "\n")
	if key == s.logged {
		return
	}
	s.logged = key
	for _, pr := range p.problems {
		switch pr.Code {
		case health.NotConfigured:
			s.log.Warn("not configured: running on standby", "problem", pr.Message, logevent.Attr(logevent.NotConfigured))
		case health.ConfigInvalid:
			// Logged where it was found, with its own kind.
		default:
			s.log.Error("agent not started: running on standby", "code", pr.Code, "problem", pr.Message, logevent.Attr(logevent.StartFailed))
		}
	}
	if !s.ready {
		s.log.Info("service started on standby", "version", s.c.Version, "config", s.c.ConfigFile, "api", p.cfg.API.Listen, logevent.Attr(logevent.Started))
	}
}
