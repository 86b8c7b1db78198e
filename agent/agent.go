// Package agent wires certagent together: config, policy, the drop folder, the rotation
// engine, the store, the Graph client, the local API and the metrics. New opens what the
// agent needs (cleaning up after a partial failure); Run owns every goroutine until its
// context ends.
package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/intake"
	"github.com/aucloud/certagent/agent/metrics"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/api"
)

// Options are what New needs besides the config.
type Options struct {
	// Config is the loaded, validated configuration. Required.
	Config *config.Config
	// Logger receives the agent's log. Required.
	Logger *slog.Logger
	// Version is the agent's version, shown in status.
	Version string
	// Listener, if set, serves the API instead of listening on Config.API.Listen (tests use
	// 127.0.0.1:0).
	Listener net.Listener
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Agent is a running certagent.
type Agent struct {
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	version string
	started time.Time

	policy   certpolicy.Policy
	names    *certpolicy.NameTemplate
	store    *cachedStore
	cred     *credential.Source
	graph    *graph.Client
	engine   *rotation.Engine
	intake   *intake.Intake
	metrics  *metrics.Metrics
	apiToken []byte
	handler  http.Handler
	listener net.Listener

	// running is closed when Run has started every part; Ready reports it.
	running   chan struct{}
	closeOnce sync.Once

	// refreshMu guards lastRefresh (rate limit of ?refresh=true).
	refreshMu   sync.Mutex
	lastRefresh time.Time

	// renewMu is held while the agent's own credential is being renewed.
	renewMu sync.Mutex

	// notifyWake tells notifyLoop that a rotation was applied.
	notifyWake chan struct{}

	// runCtx and wg belong to Run: goRun starts work that Run waits for.
	runCtx context.Context
	wg     sync.WaitGroup
}

// goRun runs f in a goroutine that Run waits for before it returns.
func (a *Agent) goRun(f func(ctx context.Context)) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f(a.runCtx)
	}()
}

// New opens everything the agent needs: the state directory, the store, the agent's own
// credential, the API token, the Graph client. It starts nothing; Run does.
func New(opts Options) (a *Agent, err error) {
	if opts.Config == nil || opts.Logger == nil {
		return nil, errors.New("agent: Options.Config and Options.Logger are required")
	}
	cfg := opts.Config
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// a is the named result, which every `return nil, err` sets to nil before the deferred
	// cleanup runs: clean up through a variable of our own.
	ag := &Agent{
		cfg:      cfg,
		log:      opts.Logger,
		now:      opts.Now,
		version:  opts.Version,
		listener: opts.Listener,
		running:  make(chan struct{}),

		notifyWake: make(chan struct{}, 1),
	}
	a = ag
	defer func() {
		if err != nil {
			ag.Close()
		}
	}()

	if a.policy, a.names, err = PolicyFrom(cfg); err != nil {
		return nil, err
	}
	if err := securefile.MkdirAll(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("creating the state folder %s (state_dir): %w; fix state_dir in %s or move what is in its way", cfg.StateDir, err, cfg.File)
	}
	if runtime.GOOS != "windows" && within(cfg.DropFolder, cfg.StateDir) {
		// The Linux default drop folder (/var/lib/certagent/drop) sits inside the state
		// directory. Others may pass through (x) to reach it, but not list the state (the
		// secrets in it are 0600 themselves). On Windows the drop folder is a sibling.
		if err := os.Chmod(cfg.StateDir, 0o711); err != nil {
			return nil, fmt.Errorf("opening the state directory's way to the drop folder: %w", err)
		}
	}
	storeOpts := []store.Option{store.Logger(ag.log)}
	if fi, err := os.Stat(cfg.API.TokenFile); err == nil && fi.Mode().IsRegular() {
		// The token is made right after the store at the first start: a store missing beside
		// it was lost, not never made.
		storeOpts = append(storeOpts, store.ExpectExisting(fmt.Sprintf("the API token file %s exists, so an agent has run with this state folder before", cfg.API.TokenFile)))
	}
	st, err := store.Open(StorePath(cfg), storeOpts...)
	if err != nil {
		return nil, err
	}
	a.store = &cachedStore{Store: st}
	if err := credential.Recover(credentialFiles(cfg), nextFiles(credentialFiles(cfg))); err != nil {
		return nil, fmt.Errorf("repairing the agent's own credential: %w", err)
	}
	c, err := credential.Load(credentialFiles(cfg))
	if errors.Is(err, credential.ErrNotFound) {
		return nil, fmt.Errorf("loading the agent's own credential: %w; run `certagent credential init` and upload the certificate it prints to the agent's app registration", err)
	}
	if err != nil {
		return nil, fmt.Errorf("loading the agent's own credential: %w; restore the files from a backup, or move them aside, run `certagent credential init` and upload the new certificate to the agent's app registration", err)
	}
	a.cred = credential.NewSource(c)
	if a.apiToken, err = loadOrCreateToken(cfg.API.TokenFile); err != nil {
		return nil, err
	}

	a.metrics = metrics.New(metrics.Config{
		Version:            a.version,
		Rotations:          a.rotationCounts,
		Certificates:       a.certificateExpiries,
		CredentialNotAfter: func() time.Time { return a.cred.Credential().Cert.NotAfter },
		LastSync:           func() time.Time { return a.engine.Snapshot().SyncedAt },
	})
	roots, err := rootCAs(cfg)
	if err != nil {
		return nil, err
	}
	if a.graph, err = graph.New(graph.Config{
		TenantID:      cfg.TenantID,
		ClientID:      cfg.Auth.ClientID,
		AuthorityHost: cfg.AuthorityHost(),
		GraphURL:      cfg.GraphURL(),
		Credential:    a.cred,
		RootCAs:       roots,
		Timeout:       cfg.Graph.Timeout.Duration(),
		Logger:        a.log,
		Observe:       a.metrics.GraphRequest,
	}); err != nil {
		return nil, err
	}
	if a.engine, err = rotation.New(rotation.Config{
		Store:          a.store,
		Graph:          a.graph,
		AppID:          cfg.Target.AppID,
		Policy:         a.policy,
		DisplayName:    a.names.Render,
		ManualApproval: cfg.Policy.Approval == config.ApprovalManual,
		MaxAttempts:    cfg.Graph.MaxAttempts,
		OnSnapshot:     a.saveSnapshot,
		OnWrite:        a.metrics.ReadToWrite,
		OnApplied:      a.applied,
		Logger:         a.log,
		Now:            a.now,
	}); err != nil {
		return nil, err
	}
	a.restoreSnapshot()

	if a.intake, err = intake.New(intake.Config{
		Dir:            cfg.DropFolder,
		Settle:         cfg.Intake.Settle.Duration(),
		RescanInterval: cfg.Intake.RescanInterval.Duration(),
		Poll:           cfg.Intake.Poll,
		PollInterval:   cfg.Intake.PollInterval.Duration(),
		Handler:        a,
		Logger:         a.log,
		Now:            a.now,
	}); err != nil {
		return nil, err
	}
	if a.handler, err = api.New(api.Config{
		Backend:    a,
		Token:      a.apiToken,
		Metrics:    a.metrics.Handler(),
		Logger:     a.log,
		Version:    a.version,
		ListenAddr: cfg.API.Listen,
	}); err != nil {
		return nil, err
	}
	return a, nil
}

// Handler returns the API's handler (for tests that serve it themselves).
func (a *Agent) Handler() http.Handler { return a.handler }

// Run runs the agent until ctx ends: the API server, the drop folder, the rotation engine
// and the periodic sync with Graph. A cancelled ctx is a normal stop: Run finishes the step
// under way (a file move, a write to Graph), stops the API server within a deadline, waits
// for every goroutine, and returns nil.
func (a *Agent) Run(ctx context.Context) error {
	a.started = a.now()
	ln := a.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.API.Listen); err != nil {
			return fmt.Errorf("listening for the API on %s (api.listen): %w; another program (or another certagent) may hold the port: stop it, or set api.listen in %s to a free loopback port", a.cfg.API.Listen, err, a.cfg.File)
		}
	}
	srv := &http.Server{Handler: a.handler, BaseContext: func(net.Listener) context.Context { return ctx }}
	api.ServerLimits(srv)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.runCtx = ctx
	wg := &a.wg
	errc := make(chan error, 8)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel(err)
			}
		}()
	}
	a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionAgentStart, Actor: rotation.ActorAgent, Outcome: rotation.OutcomeOK,
		Message: fmt.Sprintf("certagent %s started; target app %s, drop folder %s", a.version, a.cfg.Target.AppID, a.cfg.DropFolder)})
	a.log.Info("agent started", "version", a.version, "tenant_id", a.cfg.TenantID, "app_id", a.cfg.Target.AppID,
		"drop_folder", a.cfg.DropFolder, "api", ln.Addr().String(), "credential", a.cred.Credential())

	run("engine", a.engine.Run)
	run("intake", a.intake.Run)
	run("sync", a.syncLoop)
	run("renew", a.renewLoop)
	run("notify", a.notifyLoop)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api server: %w", err)
			cancel(err)
		}
	}()
	close(a.running)

	<-ctx.Done()
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	wg.Wait()
	a.audit(context.WithoutCancel(ctx), rotation.AuditEntry{Action: rotation.ActionAgentStop, Actor: rotation.ActorAgent, Outcome: rotation.OutcomeOK, Message: "certagent stopped"})
	a.log.Info("agent stopped")
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// applied is the engine's hook: a rotation reached applied.
func (a *Agent) applied(rotation.Rotation) {
	select {
	case a.notifyWake <- struct{}{}:
	default:
	}
}

// Close releases what New opened. Safe to call more than once, and after a failed New.
func (a *Agent) Close() error {
	if a == nil {
		return nil
	}
	var err error
	a.closeOnce.Do(func() {
		if a.store != nil {
			err = a.store.Close()
		}
	})
	return err
}

// syncLoop reads the target app at start and every monitor.sync_interval.
func (a *Agent) syncLoop(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Monitor.SyncInterval.Duration())
	defer t.Stop()
	for {
		if _, err := a.engine.Sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("reading the target app from Graph failed", "app_id", a.cfg.Target.AppID, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) audit(ctx context.Context, e rotation.AuditEntry) {
	if e.At.IsZero() {
		e.At = a.now().UTC()
	}
	if err := a.store.Append(ctx, e); err != nil {
		a.log.Error("writing audit entry", "action", e.Action, "err", err)
	}
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// StorePath returns the state store's file for cfg.
func StorePath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "certagent.db") }

func credentialFiles(cfg *config.Config) credential.Files {
	return credential.Files{Cert: cfg.Auth.CertificateFile, Key: cfg.Auth.KeyFile}
}

// CredentialFiles returns where the agent's own credential lives for cfg.
func CredentialFiles(cfg *config.Config) credential.Files { return credentialFiles(cfg) }

// rootCAs returns the CA pool for Graph and the token endpoint: the system's, or the
// cloud.ca_file's for a custom cloud.
func rootCAs(cfg *config.Config) (*x509.CertPool, error) {
	if cfg.Cloud.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.Cloud.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading cloud.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cloud.ca_file %s holds no PEM certificate", cfg.Cloud.CAFile)
	}
	return pool, nil
}
