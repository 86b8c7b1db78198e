// Package agent wires certagent together: the config, the store, the agent's own credential
// and its renewal, the Graph client, the target app's work (drop folder, policy, rotation
// engine), the provider notifier, the metrics and the local API. It does nothing itself:
// New builds the parts (cleaning up after a partial failure), Run runs them until its
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

	"github.com/aucloud/certagent/agent/apitoken"
	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/expiry"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/intake"
	"github.com/aucloud/certagent/agent/metrics"
	"github.com/aucloud/certagent/agent/notify"
	"github.com/aucloud/certagent/agent/provenance"
	"github.com/aucloud/certagent/agent/renewal"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/agent/target"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/apitype"
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

	store    *store.Cached
	cred     *credential.Source
	graph    *graph.Client // the agent's home tenant: its own app, and targets there
	targets  []*target.Target
	router   *target.Router
	top      *intake.Intake // the top of the drop folder, with several targets; nil with one
	renewer  *renewal.Renewer
	notifier *notify.Notifier
	expiry   *expiry.Checker
	metrics  *metrics.Metrics
	handler  http.Handler
	listener net.Listener

	// running is closed when Run has started every part; Ready reports it.
	running   chan struct{}
	closeOnce sync.Once
}

// New opens everything the agent needs: the state directory, the store, the agent's own
// credential, the API token, the Graph client, and builds the parts. It starts nothing; Run
// does.
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
	}
	defer func() {
		if err != nil {
			ag.Close()
		}
	}()
	if err := ag.build(); err != nil {
		return nil, err
	}
	return ag, nil
}

// build opens and builds the parts, in dependency order.
func (a *Agent) build() error {
	cfg := a.cfg
	basePolicy, names, err := PolicyFrom(cfg)
	if err != nil {
		return err
	}
	if err := securefile.MkdirAll(cfg.StateDir); err != nil {
		return fmt.Errorf("creating the state folder %s (state_dir): %w; fix state_dir in %s or move what is in its way", cfg.StateDir, err, cfg.File)
	}
	if runtime.GOOS != "windows" && within(cfg.DropFolder, cfg.StateDir) {
		// The Linux default drop folder (/var/lib/certagent/drop) sits inside the state
		// directory. Others may pass through (x) to reach it, but not list the state (the
		// secrets in it are 0600 themselves). On Windows the drop folder is a sibling.
		if err := os.Chmod(cfg.StateDir, 0o711); err != nil {
			return fmt.Errorf("opening the state directory's way to the drop folder: %w", err)
		}
	}
	if err := a.openStore(); err != nil {
		return err
	}
	if err := credential.Recover(CredentialFiles(cfg), renewal.NextFiles(CredentialFiles(cfg))); err != nil {
		return fmt.Errorf("repairing the agent's own credential: %w", err)
	}
	c, err := credential.Load(CredentialFiles(cfg))
	if errors.Is(err, credential.ErrNotFound) {
		return fmt.Errorf("loading the agent's own credential: %w; run `certagent credential init` and upload the certificate it prints to the agent's app registration", err)
	}
	if err != nil {
		return fmt.Errorf("loading the agent's own credential: %w; restore the files from a backup, or move them aside, run `certagent credential init` and upload the new certificate to the agent's app registration", err)
	}
	a.cred = credential.NewSource(c)
	token, err := apitoken.LoadOrCreate(cfg.API.TokenFile)
	if err != nil {
		return err
	}

	a.metrics = metrics.New(metrics.Config{
		Version:            a.version,
		Rotations:          a.rotationCounts,
		Certificates:       a.certificateExpiries,
		CredentialNotAfter: func() time.Time { return a.cred.Credential().Cert.NotAfter },
		LastSync:           a.lastSyncs,
	})
	caPEM, roots, err := rootCAs(cfg)
	if err != nil {
		return err
	}
	// One Graph client per tenant: the agent signs in to each tenant a target is in (its app
	// registration is consented there) with the same credential.
	clients := map[string]*graph.Client{}
	client := func(tenant string) (*graph.Client, error) {
		key := strings.ToLower(tenant)
		if c, ok := clients[key]; ok {
			return c, nil
		}
		c, err := graph.New(graph.Config{
			TenantID:      tenant,
			ClientID:      cfg.Auth.ClientID,
			AuthorityHost: cfg.AuthorityHost(),
			GraphURL:      cfg.GraphURL(),
			Credential:    a.cred,
			RootCAs:       roots,
			Timeout:       cfg.Graph.Timeout.Duration(),
			Logger:        a.log,
			Observe:       a.metrics.GraphRequest,
		})
		if err == nil {
			clients[key] = c
		}
		return c, err
	}
	if a.graph, err = client(cfg.TenantID); err != nil {
		return err
	}
	if a.notifier, err = notify.New(notify.Config{
		URL:        cfg.Notify.WebhookURL,
		Headers:    cfg.Notify.Headers,
		Timeout:    cfg.Notify.Timeout.Duration(),
		SecretFile: cfg.Notify.SecretFile,
		ExtraCAs:   caPEM,
		TenantID:   cfg.TenantID,
		TargetOf: func(r rotation.Rotation) notify.Target {
			if t := a.targetOfApp(r.Target.AppID); t != nil {
				return notify.Target{Name: t.Name(), TenantID: t.TenantID(), AppID: t.AppID()}
			}
			return notify.Target{TenantID: cfg.TenantID, AppID: r.Target.AppID}
		},
		UserAgent: "certagent/" + a.version,
		Rotations: rotationsOf{a},
		Store:     a.store,
		Audit:     a.audit,
		Logger:    a.log,
		Now:       a.now,
	}); err != nil {
		return err
	}
	tcs := cfg.EffectiveTargets()
	for _, tc := range tcs {
		gc, err := client(tc.TenantID)
		if err != nil {
			return fmt.Errorf("target %s: %w", tc.Name, err)
		}
		ic := intake.Config{
			Dir:             tc.DropFolder,
			Settle:          cfg.Intake.Settle.Duration(),
			RescanInterval:  cfg.Intake.RescanInterval.Duration(),
			Poll:            cfg.Intake.Poll,
			PollInterval:    cfg.Intake.PollInterval.Duration(),
			SignatureWait:   signatureWait(tc),
			CertificateWait: tc.Provenance.Wait.Duration(),
		}
		policy := tc.Policy
		policy.MinRSABits, policy.MinValidity = basePolicy.MinRSABits, basePolicy.MinValidity
		verifier, err := VerifierFrom(tc.Provenance)
		if err != nil {
			return fmt.Errorf("target %s: %w; fix provenance.keys in %s", tc.Name, err, cfg.File)
		}
		t, err := target.New(target.Config{
			Name:           tc.Name,
			TenantID:       tc.TenantID,
			AppID:          tc.AppID,
			Policy:         policy,
			Names:          names,
			Provenance:     verifier,
			ManualApproval: tc.Approval == config.ApprovalManual,
			Retire: rotation.RetirePolicy{Enabled: tc.Retire.Enabled, After: tc.Retire.After.Duration(), DryRun: tc.Retire.DryRun,
				Names: policy.Names},
			MaxAttempts: cfg.Graph.MaxAttempts,
			Graph:       gc,
			Store:       a.store,
			Intake:      ic,
			Source: target.Source{URL: tc.Source.URL, Interval: tc.Source.Interval.Duration(), CAFile: tc.Source.CAFile,
				UserAgent: "certagent/" + a.version},
			SyncInterval:  cfg.Monitor.SyncInterval.Duration(),
			ExpiryWarning: cfg.Monitor.ExpiryWarning.Duration(),
			OnOutcome:     a.notifier.RotationChanged,
			OnWrite:       a.metrics.ReadToWrite,
			OnIntake:      a.metrics.IntakeFile,
			Logger:        a.log.With("target", tc.Name),
			Now:           a.now,
		})
		if err != nil {
			return fmt.Errorf("target %s: %w", tc.Name, err)
		}
		a.targets = append(a.targets, t)
	}
	a.router = target.NewRouter(a.targets, cfg.Intake.RouteToAll, a.log, a.now)
	if len(a.targets) > 1 {
		// Several targets: each has its own folder inside the drop folder, and files at the
		// top go to the target whose policy names them. A file there waits for its signature
		// as long as the longest wait of a target that requires one: which target it is for
		// is known only once it is read.
		var sigWait, certWait time.Duration
		for _, tc := range tcs {
			sigWait, certWait = max(sigWait, signatureWait(tc)), max(certWait, tc.Provenance.Wait.Duration())
		}
		if a.top, err = intake.New(intake.Config{
			Dir:             cfg.DropFolder,
			Settle:          cfg.Intake.Settle.Duration(),
			RescanInterval:  cfg.Intake.RescanInterval.Duration(),
			Poll:            cfg.Intake.Poll,
			PollInterval:    cfg.Intake.PollInterval.Duration(),
			SignatureWait:   sigWait,
			CertificateWait: certWait,
			Handler:         a.router,
			Logger:          a.log.With("target", "*"),
			Now:             a.now,
		}); err != nil {
			return err
		}
	}
	if err := a.buildExpiry(); err != nil {
		return err
	}
	if a.renewer, err = renewal.New(renewal.Config{
		Graph:       a.graph,
		ClientID:    cfg.Auth.ClientID,
		Source:      a.cred,
		Files:       CredentialFiles(cfg),
		KeyBits:     cfg.Auth.KeyBits,
		Validity:    cfg.Auth.Validity.Duration(),
		RenewBefore: cfg.Auth.RenewBefore.Duration(),
		Audit:       a.audit,
		Logger:      a.log,
		Now:         a.now,
	}); err != nil {
		return err
	}
	a.handler, err = api.New(api.Config{
		Status:        statusOf{a},
		Certificates:  certificatesOf{a},
		Rotations:     rotationsOf{a},
		DropFolder:    dropFolderOf{a},
		Credential:    credentialOf{a},
		Audit:         a.store,
		Token:         token,
		Metrics:       a.metrics.Handler(),
		Logger:        a.log,
		Version:       a.version,
		ListenAddr:    cfg.API.Listen,
		StatusMaxAge:  statusMaxAge,
		StatusVersion: a.statusVersion,
	})
	return err
}

// statusMaxAge is how long the API may answer GET /api/v1/status with the status it made
// for an earlier request, when nothing the agent counts has changed (statusVersion) and no
// write came through the API. What it does not count (a drop folder gone, a webhook
// failing, the clock) shows at most this late; docs/contract.md says so.
const statusMaxAge = 250 * time.Millisecond

// statusVersion changes whenever a rotation is written or an app is read: the sum of
// counters that only grow.
func (a *Agent) statusVersion() uint64 {
	v := a.store.Changes()
	for _, t := range a.targets {
		v += t.Changes()
	}
	return v
}

// openStore opens the state store. A store missing beside the API token is lost, not new:
// the token is made right after the store at the first start.
func (a *Agent) openStore() error {
	opts := []store.Option{store.Logger(a.log)}
	if fi, err := os.Stat(a.cfg.API.TokenFile); err == nil && fi.Mode().IsRegular() {
		opts = append(opts, store.ExpectExisting(fmt.Sprintf("the API token file %s exists, so an agent has run with this state folder before", a.cfg.API.TokenFile)))
	}
	st, err := store.Open(StorePath(a.cfg), opts...)
	if err != nil {
		return err
	}
	a.store = store.NewCached(st)
	return nil
}

// Handler returns the API's handler (for tests that serve it themselves).
func (a *Agent) Handler() http.Handler { return a.handler }

// Status returns the agent's status as GET /api/v1/status serves it (the service watches its
// problems for the Event Log and the journal).
func (a *Agent) Status(ctx context.Context) apitype.Status { return statusOf{a}.Status(ctx) }

// Run runs the agent until ctx ends: the API server, the target's work (drop folder, rotation
// engine, periodic read of the app), the renewal of its own credential and the notifier. A
// cancelled ctx is a normal stop: Run finishes the step under way (a file move, a write to
// Graph), stops the API server within a deadline, waits for every goroutine, and returns nil.
// A part that fails stops the others; Run returns its error.
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

	var apps []string
	for _, t := range a.targets {
		apps = append(apps, fmt.Sprintf("%s (app %s)", t.Name(), t.AppID()))
	}
	a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionAgentStart, Actor: rotation.ActorAgent, Outcome: rotation.OutcomeOK,
		Message: fmt.Sprintf("certagent %s started; targets %s, drop folder %s", a.version, strings.Join(apps, ", "), a.cfg.DropFolder)})
	a.log.Info("agent started", "version", a.version, "tenant_id", a.cfg.TenantID, "targets", strings.Join(apps, ", "),
		"drop_folder", a.cfg.DropFolder, "api", ln.Addr().String(), "credential", a.cred.Credential())

	g := newGroup(ctx)
	for _, t := range a.targets {
		g.Go("target "+t.Name(), t.Run)
	}
	if a.top != nil {
		g.Go("drop folder", a.top.Run)
	}
	g.Go("renewal", a.renewer.Run)
	g.Go("notify", a.notifier.Run)
	g.Go("expiry", a.expiry.Run)
	g.Go("api server", func(context.Context) error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	close(a.running)

	<-g.ctx.Done()
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	err := g.Wait()
	a.audit(context.WithoutCancel(ctx), rotation.AuditEntry{Action: rotation.ActionAgentStop, Actor: rotation.ActorAgent, Outcome: rotation.OutcomeOK, Message: "certagent stopped"})
	a.log.Info("agent stopped")
	return err
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

// audit appends an entry to the audit log, logging a failure to write it.
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

// CredentialFiles returns where the agent's own credential lives for cfg.
func CredentialFiles(cfg *config.Config) credential.Files {
	return credential.Files{Cert: cfg.Auth.CertificateFile, Key: cfg.Auth.KeyFile}
}

// PolicyFrom builds the certificate policy and the credential display-name template from
// the config's policy section.
func PolicyFrom(cfg *config.Config) (certpolicy.Policy, *certpolicy.NameTemplate, error) {
	p := cfg.Policy.CertPolicy()
	if err := p.Validate(); err != nil {
		return p, nil, fmt.Errorf("policy: %w", err)
	}
	names, err := certpolicy.ParseNameTemplate(cfg.Policy.DisplayNameTemplate)
	if err != nil {
		return p, nil, fmt.Errorf("policy.display_name_template: %w", err)
	}
	return p, names, nil
}

// signatureWait is how long a certificate dropped for tc waits for its signature file:
// provenance.wait when signatures are required, otherwise not at all.
func signatureWait(tc config.TargetConfig) time.Duration {
	if tc.Provenance.Required {
		return tc.Provenance.Wait.Duration()
	}
	return 0
}

// VerifierFrom loads a target's provenance keys (reading the key files) and returns its
// verifier. Keys written into the config are labelled "provenance.keys[N]", key files by
// their name.
func VerifierFrom(p config.Provenance) (*provenance.Verifier, error) {
	var keys []provenance.Key
	for i, e := range p.Keys {
		var ks []provenance.Key
		var err error
		if provenance.IsInline(e) {
			label := fmt.Sprintf("provenance.keys[%d]", i)
			if ks, err = provenance.ParseKeys(label, []byte(e)); err != nil {
				err = fmt.Errorf("%s: %w", label, err)
			}
		} else {
			ks, err = provenance.ReadKeyFile(e)
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if p.Required && len(keys) == 0 {
		return nil, errors.New("provenance.required is on but no key is pinned")
	}
	return provenance.NewVerifier(keys, p.Required), nil
}

// rootCAs returns cloud.ca_file's PEM and its pool, trusted for Graph, the token endpoint
// and the webhook besides the system's; nil for both without one.
func rootCAs(cfg *config.Config) ([]byte, *x509.CertPool, error) {
	if cfg.Cloud.CAFile == "" {
		return nil, nil, nil
	}
	pem, err := os.ReadFile(cfg.Cloud.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cloud.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("cloud.ca_file %s holds no PEM certificate", cfg.Cloud.CAFile)
	}
	return pem, pool, nil
}
