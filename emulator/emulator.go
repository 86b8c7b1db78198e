package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aucloud/certagent/emulator/provider"
)

// Defaults.
const (
	// DefaultTokenLifetime is the lifetime of access tokens (expires_in 3599).
	DefaultTokenLifetime = 3599 * time.Second
	// clockSkew is the leeway Entra and Graph allow on token times.
	clockSkew = 5 * time.Minute
	// maxRequestLog bounds the request log; older records are dropped.
	maxRequestLog = 10000
)

// ErrNotFound is returned by the test helpers when a tenant, application or credential does
// not exist.
var ErrNotFound = errors.New("not found")

// Option changes an optional setting of New.
type Option func(*config)

type config struct {
	seeds                 []Seed
	logger                *slog.Logger
	now                   func() time.Time
	settings              Settings
	rejectGzip            bool
	cki                   CustomKeyIdentifierFormat
	tokenLifetime         time.Duration
	ownedByReadsOwnedOnly bool
	applyCredentialUpdate bool
	anyCredentialDates    bool
	autoApprove           bool
	autoApproveUser       string
	deviceCodeLifetime    time.Duration
	provider              *provider.Provider
}

// WithSeed creates the tenant s when the directory holds no state yet. Give it several times
// for several tenants; the first is TenantID.
func WithSeed(s Seed) Option { return func(c *config) { c.seeds = append(c.seeds, s) } }

// WithProvider serves the backup provider's side too (package emulator/provider): its
// published certificates and signatures under /provider/, the webhook receiver at
// /provider/webhook, and its control routes under /_emulator/provider/. Its requests go
// through faults and the request log like Graph's.
func WithProvider(p *provider.Provider) Option { return func(c *config) { c.provider = p } }

// WithLogger sets the logger (default: discard). Each request is logged at debug level.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock used for every validity decision: tokens, client assertions,
// proofs, credential windows, dates in answers (default time.Now). The TLS certificates use
// the wall clock, which is what TLS clients check them against.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithStaleReads makes the next n reads of an application after each write to it return the
// version before that write, as Graph's replication lag can (default 0: reads are fresh).
// WithReplicationLag models the lag itself.
func WithStaleReads(n int) Option { return func(c *config) { c.settings.StaleReads = n } }

// WithObjectSizeLimit sets how large an application's credentials may grow, in bytes of their
// JSON with keys (default DefaultObjectSizeLimit); a write beyond it answers 400
// Directory_ResourceSizeExceeded.
func WithObjectSizeLimit(bytes int) Option {
	return func(c *config) { c.settings.ObjectSizeLimit = bytes }
}

// WithSignInPropagation makes the token endpoint refuse a key credential (or secret) until
// addDelay after it was added to its application, as Entra refuses a key it does not know,
// and accept a removed one for removeDelay after its removal (default 0: at once).
func WithSignInPropagation(addDelay, removeDelay time.Duration) Option {
	return func(c *config) { c.settings.SignInAddDelay, c.settings.SignInRemoveDelay = addDelay, removeDelay }
}

// WithReplicationLag makes reads of an application shortly after a write to it return older
// versions, at random, as Graph's read replicas do: each write reaches each of
// DefaultReplicas replicas after its own lag in [0, maxLag], and each request reads from a
// replica picked at random, the choices drawn from a generator seeded with seed. Writes
// always apply to the latest version.
func WithReplicationLag(maxLag time.Duration, seed int64) Option {
	return func(c *config) {
		c.settings.MaxReplicationLag, c.settings.Seed = maxLag, seed
		if c.settings.Replicas == 0 {
			c.settings.Replicas = DefaultReplicas
		}
	}
}

// WithRealistic turns on RealisticSettings(seed): sign-in propagation delays and replication
// lag of the order users report for Entra and Graph, drawn from a generator seeded with seed.
// It keeps the size limit, the validity and unconsented error codes and the stale reads set
// by earlier options.
func WithRealistic(seed int64) Option {
	return func(c *config) {
		r := RealisticSettings(seed)
		r.ObjectSizeLimit, r.SizeLimitStatus, r.ValidityErrorCode = c.settings.ObjectSizeLimit, c.settings.SizeLimitStatus, c.settings.ValidityErrorCode
		r.StaleReads, r.UnconsentedErrorCode = c.settings.StaleReads, c.settings.UnconsentedErrorCode
		c.settings = r
	}
}

// WithValidityErrorCode sets the AADSTS code the token endpoint answers for a registered
// certificate outside its validity window: ValidityError700027 (default),
// ValidityError1000502 or ValidityError7000274.
func WithValidityErrorCode(code int) Option {
	return func(c *config) { c.settings.ValidityErrorCode = code }
}

// WithUnconsentedErrorCode sets the AADSTS code the token endpoint answers when a
// multitenant application signs in to a tenant that holds no service principal of it (no
// admin consent there): UnconsentedError7000229 (default) or UnconsentedError700016.
func WithUnconsentedErrorCode(code int) Option {
	return func(c *config) { c.settings.UnconsentedErrorCode = code }
}

// WithSettings replaces every setting, including those earlier options set.
func WithSettings(s Settings) Option { return func(c *config) { c.settings = s } }

// WithRejectGzip answers 415 to gzip-compressed request bodies, so that a client's fallback
// to an uncompressed body can be tested. By default gzip bodies are accepted, as Graph does.
func WithRejectGzip() Option { return func(c *config) { c.rejectGzip = true } }

// WithCustomKeyIdentifierFormat sets what customKeyIdentifier holds when a client leaves it
// out (default CKIThumbprintHex).
func WithCustomKeyIdentifierFormat(f CustomKeyIdentifierFormat) Option {
	return func(c *config) { c.cki = f }
}

// WithTokenLifetime sets the lifetime of access tokens (default DefaultTokenLifetime).
func WithTokenLifetime(d time.Duration) Option { return func(c *config) { c.tokenLifetime = d } }

// WithOwnedByReadsOwnedOnly restricts what Application.ReadWrite.OwnedBy may read to owned
// applications: other applications are left out of lists and a single read answers 403. By
// default OwnedBy reads every application, as Graph has been reported to allow
// (microsoftgraph/microsoft-graph-docs#17416); writes are always limited to owned ones.
func WithOwnedByReadsOwnedOnly() Option { return func(c *config) { c.ownedByReadsOwnedOnly = true } }

// WithExistingCredentialUpdates makes a PATCH that changes properties of an existing keyId
// apply the change instead of answering 400 "Update to existing credential with KeyId ...
// is not allowed." (the refusal is *inferred* for Graph: docs/graph.md).
func WithExistingCredentialUpdates() Option {
	return func(c *config) { c.applyCredentialUpdate = true }
}

// WithAnyCredentialDates accepts key credential dates outside the certificate's validity
// (only end after start is required) instead of answering 400 "Key credential start/end date
// is invalid." (the rule is *inferred*).
func WithAnyCredentialDates() Option { return func(c *config) { c.anyCredentialDates = true } }

// Emulator is an emulated Entra ID tenant (token endpoint) and Microsoft Graph
// (/v1.0/applications) served over HTTPS with its own CA. It is safe for concurrent use.
type Emulator struct {
	dir     string
	cfg     config
	log     *slog.Logger
	pki     *pki
	pool    *x509.CertPool
	handler http.Handler

	// ctx is cancelled by Close; delay faults wait on it.
	ctx    context.Context
	cancel context.CancelFunc

	// mu protects the fields below it.
	mu sync.Mutex
	// st is the persisted tenant state; replaced wholesale by mutate.
	st *tenantState
	// settings are the current Settings; rng draws their random choices.
	settings Settings
	rng      *rand.Rand
	// stale holds, per application object id (lower case), the version before the last write
	// and how many reads should still see it.
	stale map[string]*staleEntry
	// replicas holds, per application object id (lower case), the versions some replica may
	// still serve (replication lag).
	replicas map[string]*replicaHistory
	// signIn holds what the token endpoint has not caught up with yet (sign-in propagation).
	signIn   signInPropagation
	faults   []*faultEntry
	faultSeq int
	requests []RequestRecord
	// inFlight holds the requests being served now, by request id.
	inFlight map[string]InFlightRequest
	// signIns counts token issuance per tenant and client (signInKey).
	signIns map[string]*signInStats
	demo    *DemoInfo
	// deviceCodes holds the device code flows by device code; refreshTokens what each
	// refresh token stands for; consents the Graph scopes consented per tenant and client
	// (consentKey). All in memory.
	deviceCodes   map[string]*deviceAuth
	refreshTokens map[string]*refreshGrant
	consents      map[string][]string
	srv           *http.Server
	ln            net.Listener
	url           string
	closed        bool
}

type staleEntry struct {
	prev *app
	left int
}

// New opens (or creates) the emulated tenant kept in dir: the CA (ca.pem, the certificate
// clients trust; ca.key), the TLS server certificate for 127.0.0.1, ::1 and localhost, the
// token-signing key, and state.json (tenants, applications, credentials). Files holding keys
// are written with mode 0600. If state.json exists it wins; otherwise the WithSeed tenants
// are created, otherwise the Demo tenant. New does not listen: call Start, or serve Handler.
func New(dir string, opts ...Option) (*Emulator, error) {
	if dir == "" {
		return nil, errors.New("creating emulator: dir is required")
	}
	cfg := config{
		now:                time.Now,
		settings:           defaultSettings(),
		tokenLifetime:      DefaultTokenLifetime,
		deviceCodeLifetime: DefaultDeviceCodeLifetime,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.settings.Validate(); err != nil {
		return nil, fmt.Errorf("creating emulator: %w", err)
	}
	if cfg.tokenLifetime <= 0 {
		return nil, fmt.Errorf("creating emulator: token lifetime %s must be positive", cfg.tokenLifetime)
	}
	if cfg.deviceCodeLifetime <= 0 {
		return nil, fmt.Errorf("creating emulator: device code lifetime %s must be positive", cfg.deviceCodeLifetime)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating emulator directory: %w", err)
	}
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		return nil, fmt.Errorf("creating emulator: %w", err)
	}
	e := &Emulator{
		dir:      dir,
		cfg:      cfg,
		log:      cfg.logger.With("component", "emulator"),
		pki:      p,
		pool:     x509.NewCertPool(),
		stale:    map[string]*staleEntry{},
		replicas: map[string]*replicaHistory{},
		signIn:   newSignInPropagation(),
		signIns:  map[string]*signInStats{},
		settings: cfg.settings,
		// device code flows, refresh tokens and consents
		deviceCodes:   map[string]*deviceAuth{},
		refreshTokens: map[string]*refreshGrant{},
		consents:      map[string][]string{},
		rng:           newRand(cfg.settings.Seed),
	}
	e.pool.AddCert(p.caCert)
	e.ctx, e.cancel = context.WithCancel(context.Background())

	statePath := filepath.Join(dir, fileState)
	st, err := loadState(statePath)
	if err != nil {
		return nil, err
	}
	if st != nil {
		if len(cfg.seeds) > 0 {
			e.log.Info("state exists; seed ignored", "file", statePath)
		}
	} else {
		st, err = e.initialState()
		if err != nil {
			return nil, err
		}
		if err := saveState(statePath, st); err != nil {
			return nil, fmt.Errorf("creating emulator: %w", err)
		}
	}
	e.st = st
	if info, ok, err := loadDemoInfo(dir); err != nil {
		return nil, err
	} else if ok && st.tenantByName(info.TenantID) != nil {
		e.demo = &info
	}
	e.handler = http.HandlerFunc(e.serveHTTP)
	return e, nil
}

// initialState builds the state from the seeds, or the demo tenant.
func (e *Emulator) initialState() (*tenantState, error) {
	now := e.cfg.now()
	seeds := e.cfg.seeds
	if len(seeds) == 0 {
		seed, info, err := Demo(e.dir, now)
		if err != nil {
			return nil, fmt.Errorf("creating demo tenant: %w", err)
		}
		if err := saveDemoInfo(e.dir, info); err != nil {
			return nil, fmt.Errorf("creating demo tenant: %w", err)
		}
		seeds = []Seed{seed}
	}
	st := &tenantState{Version: stateVersion}
	for i, s := range seeds {
		t, err := s.build(now, e.cfg.cki)
		if err != nil {
			return nil, fmt.Errorf("creating emulator: seed %d: %w", i, err)
		}
		st.Tenants = append(st.Tenants, t)
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("creating emulator: %w", err)
	}
	return st, nil
}

// Start listens on addr (for example "127.0.0.1:0") and serves HTTPS (TLS 1.2 or later,
// HTTP/2 and HTTP/1.1) in the background until Close.
func (e *Emulator) Start(addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("starting emulator: closed")
	}
	if e.srv != nil {
		return errors.New("starting emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("starting emulator: %w", err)
	}
	e.srv = &http.Server{
		Handler:           e.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return e.ctx },
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{e.pki.serverCert},
		},
	}
	e.ln = ln
	e.url = baseURL(ln.Addr())
	srv := e.srv
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("emulator stopped serving", "err", err)
		}
	}()
	e.log.Info("emulator listening", "url", e.url)
	return nil
}

// baseURL returns https://HOST:PORT for a listener, naming a loopback address for a
// wildcard one.
func baseURL(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "https://" + a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// URL returns the base URL, https://127.0.0.1:PORT, once started ("" before).
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// Dir returns the emulator's directory.
func (e *Emulator) Dir() string { return e.dir }

// CAFile returns the path of the CA certificate clients must trust (dir/ca.pem).
func (e *Emulator) CAFile() string { return filepath.Join(e.dir, fileCACert) }

// CertPool returns a pool holding the emulator's CA.
func (e *Emulator) CertPool() *x509.CertPool { return e.pool.Clone() }

// Provider returns the provider's side given with WithProvider, or nil.
func (e *Emulator) Provider() *provider.Provider { return e.cfg.provider }

// Handler returns the whole emulator (token endpoint, Graph, control routes) for embedding.
// URLs in its answers are built from each request's Host, so it must be served over HTTPS.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Close stops serving: it aborts pending delay faults, then waits up to 5 seconds for
// requests in flight. It is safe to call more than once.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.srv
	e.mu.Unlock()
	e.cancel()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("closing emulator: %w", err)
	}
	return nil
}

// TenantID returns the id of the first tenant.
func (e *Emulator) TenantID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.Tenants[0].ID
}

// State returns every tenant, application and client, as GET /_emulator/state does.
func (e *Emulator) State() StateView {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stateViewLocked()
}

// DemoInfo returns what the demo tenant holds, when the emulator made one.
func (e *Emulator) DemoInfo() (DemoInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.demo == nil {
		return DemoInfo{}, false
	}
	return *e.demo, true
}

// mutate applies fn to a copy of the state, writes the copy to disk and only then makes it
// current, so an answer never acknowledges a write that is not on disk. Every write goes
// through it: it records the previous version of each changed application for stale reads
// and replication lag, and the credentials added and removed for sign-in propagation. The
// caller holds e.mu.
func (e *Emulator) mutate(fn func(st *tenantState) error) error {
	next := e.st.clone()
	if err := fn(next); err != nil {
		return err
	}
	if err := next.validate(); err != nil {
		return err
	}
	if err := saveState(filepath.Join(e.dir, fileState), next); err != nil {
		return &persistError{err}
	}
	now := e.cfg.now()
	for _, nt := range next.Tenants {
		ot := e.st.tenantByName(nt.ID)
		for _, na := range nt.Apps {
			var old *app
			if ot != nil {
				old = ot.appByObjectID(na.ObjectID)
			}
			switch {
			case old == nil:
				e.recordSignInLocked(nil, na, now)
			case old.Version != na.Version:
				e.stale[strings.ToLower(old.ObjectID)] = &staleEntry{prev: old, left: e.settings.StaleReads}
				e.recordReplicationLocked(old, na, now)
				e.recordSignInLocked(old, na, now)
			}
		}
	}
	e.st = next
	return nil
}

// persistError is a failure to write state.json: the change was not made.
type persistError struct{ err error }

func (p *persistError) Error() string { return "saving emulator state: " + p.err.Error() }
func (p *persistError) Unwrap() error { return p.err }

// Test-facing helpers. They change the tenant directly, bypassing Graph's checks (but not
// the seed's), and persist like any write.

// AddTenant adds a tenant built from s.
func (e *Emulator) AddTenant(s Seed) (TenantView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := s.build(e.cfg.now(), e.cfg.cki)
	if err != nil {
		return TenantView{}, fmt.Errorf("adding tenant: %w", err)
	}
	if err := e.mutate(func(st *tenantState) error {
		st.Tenants = append(st.Tenants, t)
		return nil
	}); err != nil {
		return TenantView{}, fmt.Errorf("adding tenant: %w", err)
	}
	for _, tv := range e.stateViewLocked().Tenants {
		if tv.ID == t.ID {
			return tv, nil
		}
	}
	return TenantView{}, fmt.Errorf("adding tenant %s: %w", t.ID, ErrNotFound)
}

// AddApplication adds an application to the tenant tenantID ("" for the first tenant).
// Owners may name applications of that tenant by appId or displayName, or multitenant
// applications of other tenants consented in it (ConsentApplication) by appId.
func (e *Emulator) AddApplication(tenantID string, a SeedApplication) (ApplicationView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var view ApplicationView
	err := e.mutate(func(st *tenantState) error {
		t := st.Tenants[0]
		if tenantID != "" {
			if t = st.tenantByName(tenantID); t == nil {
				return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
			}
		}
		na, err := a.build(e.cfg.now(), e.cfg.cki)
		if err != nil {
			return err
		}
		t.Apps = append(t.Apps, na)
		for i, ref := range a.Owners {
			o, err := t.resolveOwner(ref)
			if err != nil {
				return fmt.Errorf("owners[%d]: %w", i, err)
			}
			if !na.isOwner(o) {
				na.Owners = append(na.Owners, o)
			}
		}
		view = e.appView(t, na)
		return nil
	})
	if err != nil {
		return ApplicationView{}, fmt.Errorf("adding application %q: %w", a.DisplayName, err)
	}
	return view, nil
}

// AddUser adds a member user to the tenant tenantID ("" for the first tenant).
func (e *Emulator) AddUser(tenantID string, su SeedUser) (UserView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var view UserView
	err := e.mutate(func(st *tenantState) error {
		t := st.Tenants[0]
		if tenantID != "" {
			if t = st.tenantByName(tenantID); t == nil {
				return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
			}
		}
		u, err := su.build(t.Domain)
		if err != nil {
			return err
		}
		t.Users = append(t.Users, u)
		view = UserView{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName, DirectoryRoles: append([]string{}, u.DirectoryRoles...)}
		return nil
	})
	if err != nil {
		return UserView{}, fmt.Errorf("adding user %q: %w", su.UserPrincipalName, err)
	}
	return view, nil
}

// Application returns the application whose appId or object id is id.
func (e *Emulator) Application(id string) (ApplicationView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, a := e.findApp(e.st, id)
	if a == nil {
		return ApplicationView{}, fmt.Errorf("finding application %s: %w", id, ErrNotFound)
	}
	return e.appView(t, a), nil
}

// findApp finds an application by appId or object id in any tenant.
func (e *Emulator) findApp(st *tenantState, id string) (*tenant, *app) {
	if t, a := st.appByAppID(id); a != nil {
		return t, a
	}
	for _, t := range st.Tenants {
		if a := t.appByObjectID(id); a != nil {
			return t, a
		}
	}
	return nil, nil
}

// changeApp runs fn on the application id (appId or object id) and bumps its version.
func (e *Emulator) changeApp(id, op string, fn func(t *tenant, a *app) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.mutate(func(st *tenantState) error {
		t, a := e.findApp(st, id)
		if a == nil {
			return fmt.Errorf("application %s: %w", id, ErrNotFound)
		}
		if err := fn(t, a); err != nil {
			return err
		}
		a.Version++
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// AddKeyCredential adds a certificate credential to the application id (appId or object
// id) without Graph's checks on the collection (size limit, duplicates), and returns it.
// Like every write, it is subject to replication lag and sign-in propagation.
func (e *Emulator) AddKeyCredential(id string, k SeedKeyCredential) (KeyCredentialView, error) {
	return e.addKeyCredential(id, k, false)
}

func (e *Emulator) addKeyCredential(id string, k SeedKeyCredential, sizeLimit bool) (KeyCredentialView, error) {
	var view KeyCredentialView
	err := e.changeApp(id, "adding key credential", func(_ *tenant, a *app) error {
		kc, err := k.build(e.cfg.cki)
		if err != nil {
			return err
		}
		if _, dup := a.keyCredByID(kc.KeyID); dup {
			return fmt.Errorf("keyId %s is already used", kc.KeyID)
		}
		a.KeyCredentials = append(a.KeyCredentials, kc)
		if sizeLimit && e.checkSizeLocked(a) != nil {
			return ErrObjectSizeExceeded
		}
		view = e.keyCredView(kc)
		return nil
	})
	if err == nil {
		e.mu.Lock()
		if _, a := e.findApp(e.st, id); a != nil {
			view.SignInFrom = e.signInFromLocked(a, view.KeyID)
		}
		e.mu.Unlock()
	}
	return view, err
}

// PortalAddKeyCredential adds a certificate credential to the application id (appId or
// object id) as a person uploading it in the portal does: through Graph's size limit
// (ErrObjectSizeExceeded), with the same certificate allowed twice. Like every write, it is
// subject to replication lag and sign-in propagation. POST
// /_emulator/applications/{appId}/keyCredentials calls it.
func (e *Emulator) PortalAddKeyCredential(id string, k SeedKeyCredential) (KeyCredentialView, error) {
	return e.addKeyCredential(id, k, true)
}

// ErrObjectSizeExceeded is returned by PortalAddKeyCredential when the application would grow
// past Settings.ObjectSizeLimit.
var ErrObjectSizeExceeded = errors.New("the size of the object has exceeded its limit (Directory_ResourceSizeExceeded)")

// RemoveKeyCredential removes the key credential keyID from the application id, as the
// portal's delete does (DELETE /_emulator/applications/{appId}/keyCredentials/{keyId}). Like
// every write, it is subject to replication lag and sign-in propagation.
func (e *Emulator) RemoveKeyCredential(id, keyID string) error {
	return e.changeApp(id, "removing key credential", func(_ *tenant, a *app) error {
		i, ok := a.keyCredByID(keyID)
		if !ok {
			return fmt.Errorf("key credential %s: %w", keyID, ErrNotFound)
		}
		a.KeyCredentials = append(a.KeyCredentials[:i], a.KeyCredentials[i+1:]...)
		return nil
	})
}

// RemoveApplication deletes the application id (appId or object id) as an administrator
// would in the portal: Graph answers 404 for it from then on, at once. Its service
// principal goes with it, and so does its place among other applications' owners.
func (e *Emulator) RemoveApplication(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mutate(func(st *tenantState) error {
		t, a := e.findApp(st, id)
		if a == nil {
			return fmt.Errorf("removing application %s: %w", id, ErrNotFound)
		}
		t.Apps = slices.DeleteFunc(t.Apps, func(x *app) bool { return x == a })
		for _, o := range t.Apps {
			o.Owners = slices.DeleteFunc(o.Owners, func(sp string) bool { return strings.EqualFold(sp, a.ServicePrincipalID) })
		}
		delete(e.stale, strings.ToLower(a.ObjectID))
		delete(e.replicas, strings.ToLower(a.ObjectID))
		return nil
	})
}

// SetOwners replaces the owners of the application id with the service principals named:
// applications of the same tenant by appId or displayName, or multitenant applications of
// other tenants consented in it by appId.
func (e *Emulator) SetOwners(id string, owners ...string) error {
	return e.changeApp(id, "setting owners", func(t *tenant, a *app) error {
		a.Owners = []string{}
		for i, ref := range owners {
			o, err := t.resolveOwner(ref)
			if err != nil {
				return fmt.Errorf("owners[%d]: %w", i, err)
			}
			if !a.isOwner(o) {
				a.Owners = append(a.Owners, o)
			}
		}
		return nil
	})
}

// SetSignInAudience sets the signInAudience of the application id (appId or object id):
// SignInAudienceMyOrg or SignInAudienceMultipleOrgs, as "Supported account types" in the
// portal does. Service principals already made in other tenants stay; a single-tenant
// application cannot sign in through them.
func (e *Emulator) SetSignInAudience(id, audience string) error {
	return e.changeApp(id, "setting signInAudience", func(_ *tenant, a *app) error {
		aud := canonicalAudience(audience)
		if aud == "" {
			return fmt.Errorf("signInAudience %q is not %s or %s", audience, SignInAudienceMyOrg, SignInAudienceMultipleOrgs)
		}
		a.SignInAudience = aud
		return nil
	})
}

// ErrNotMultiTenant is returned by ConsentApplication for an application whose
// signInAudience keeps it to its home tenant.
var ErrNotMultiTenant = errors.New("the application is single-tenant (signInAudience AzureADMyOrg): other tenants cannot consent to it")

// ConsentApplication does what an administrator of tenant tenantID does when they grant admin
// consent to appID, a multitenant application registered in another tenant: it makes the
// application's service principal in tenantID, and grants it the Microsoft Graph application
// permissions roles there (for example RoleApplicationReadWriteOwned). It returns the
// service principal's id, the "oid" of the application's tokens from that tenant, which
// AddApplication and SetOwners may then name as an owner by the appId. Consenting again adds
// roles to the same service principal. The application signs in to tenantID with the
// credentials of its application object, subject to sign-in propagation like every
// sign-in. Errors: ErrNotFound for an unknown tenant or application, ErrNotMultiTenant.
func (e *Emulator) ConsentApplication(tenantID, appID string, roles ...string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var spID string
	err := e.mutate(func(st *tenantState) error {
		t := st.tenantByName(tenantID)
		if t == nil {
			return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
		}
		ht, home := st.appByAppID(appID)
		switch {
		case home == nil:
			return fmt.Errorf("application %s: %w", appID, ErrNotFound)
		case ht == t:
			return fmt.Errorf("application %s is registered in tenant %s itself: it has its own service principal there (SetGraphRoles)", appID, t.ID)
		case !home.multiTenant():
			return fmt.Errorf("application %s: %w", appID, ErrNotMultiTenant)
		}
		f := t.foreignSPByAppID(appID)
		if f == nil {
			f = &foreignSP{ID: newGUID(), AppID: home.AppID, DisplayName: home.DisplayName,
				CreatedDateTime: e.cfg.now().UTC().Truncate(time.Second), Roles: []string{}}
			t.ForeignSPs = append(t.ForeignSPs, f)
		}
		for _, r := range roles {
			if !containsFold(f.Roles, r) {
				f.Roles = append(f.Roles, r)
			}
		}
		spID = f.ID
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("consenting to application %s in tenant %s: %w", appID, tenantID, err)
	}
	return spID, nil
}

// SetGraphRoles replaces the Graph application permissions of the application id's service
// principal. Tokens issued before keep the roles they were issued with, as in Entra.
func (e *Emulator) SetGraphRoles(id string, roles ...string) error {
	return e.changeApp(id, "setting Graph roles", func(_ *tenant, a *app) error {
		a.Roles = []string{}
		for _, r := range roles {
			if !containsFold(a.Roles, r) {
				a.Roles = append(a.Roles, r)
			}
		}
		return nil
	})
}

// AccessToken mints an access token for the application appID and resource (for example
// "https://graph.microsoft.com"), exactly as the token endpoint would after a successful
// sign-in, for tests that are not about signing in.
func (e *Emulator) AccessToken(appID, resource string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, a := e.st.appByAppID(appID)
	if a == nil {
		return "", fmt.Errorf("minting access token: application %s: %w", appID, ErrNotFound)
	}
	tok, _, err := e.mintAccessToken(t, a, resource, "2")
	if err != nil {
		return "", fmt.Errorf("minting access token: %w", err)
	}
	return tok, nil
}
