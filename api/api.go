// Package api serves certagent's local REST API (docs/contract.md, "Local REST API"): loopback only,
// bearer-token protected, problem+json errors, with the handlers calling a Backend that the
// agent implements.
//
// New returns an http.Handler; the agent owns the http.Server and sets its limits with
// ServerLimits. Every request passes, in this order: the browser checks (a Host that is not a
// loopback name, or an Origin, Referer or cross-site Sec-Fetch-Site header: 403), the token
// check (everything but /livez and /readyz: 401), the router (404, 405), strict query
// parameters (400), then the handler. Errors of every kind become a problem response in one
// place, the echo HTTPErrorHandler (errors.go).
package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// The handlers call the agent through the small interfaces below, one per role, each
// declared here with only the methods its routes need. Every method is safe for concurrent
// use, answers from memory or the store (no Graph call per request, except the one refresh
// Certificates allows), and honours ctx.
//
// Methods return the agent's own errors; api/errors.go is the one place that turns them into
// an HTTP status and a problem: *health.NotFoundError and rotation.ErrNotFound 404,
// rotation.ErrInvalidState (a *rotation.StateError tells the state) and *health.BusyError
// 409, *rotation.RetireError 409 retire_refused, *health.TooSoonError 429 with Retry-After, *health.UnavailableError 503 with its
// problem's code, *health.NotReadyError 503 not_ready. Any other error is a 500 "internal"
// problem whose detail never reaches the client (it is logged).

// StatusSource serves GET /api/v1/status and GET /readyz.
type StatusSource interface {
	// Status returns the agent's status. The handler shapes it for the wire (every state
	// counted, problems most urgent first, UTC times), so the agent's parts need not.
	Status(ctx context.Context) apitype.Status
	// Ready returns nil when the agent can do its work, and otherwise why not (a
	// *health.NotReadyError lists the problems).
	Ready(ctx context.Context) error
}

// CertificateSource serves the certificate routes.
type CertificateSource interface {
	// Certificates returns the certificates of the target named target ("" every target)
	// as last read from Graph. With refresh, it first reads each app from Graph once
	// (rate-limited: *health.TooSoonError; Graph unreachable: *health.UnavailableError). An
	// unknown target is a *health.NotFoundError.
	Certificates(ctx context.Context, target string, refresh bool) (apitype.CertificateList, error)
	// Retire removes the certificate keyID from the app of the target named target ("" the
	// only target, or the one whose app holds keyID), under the retire guards; a refusal
	// is a *rotation.RetireError, an unknown key or target a *health.NotFoundError. It
	// returns the removed credential.
	Retire(ctx context.Context, target, keyID, actor, note string) (apitype.Certificate, error)
}

// RotationService serves the rotation routes.
type RotationService interface {
	// Rotations returns the rotations of the target named target ("" every target) that
	// match f, oldest first; an unknown target is a *health.NotFoundError.
	Rotations(ctx context.Context, f rotation.Filter, target string) ([]rotation.Rotation, error)
	// Rotation returns one rotation, or an error wrapping rotation.ErrNotFound.
	Rotation(ctx context.Context, id string) (rotation.Rotation, error)
	// Submit runs exactly the same policy and engine as the drop folder. See SubmitResult.
	Submit(ctx context.Context, s Submission) (SubmitResult, error)
	// Execute performs a person's command on a rotation. Errors wrap rotation.ErrNotFound
	// or rotation.ErrInvalidState.
	Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error)
}

// DropFolder serves POST /api/v1/scan.
type DropFolder interface {
	// Scan asks the drop folder for a rescan now, without waiting for it; a
	// *health.UnavailableError while the folder cannot be read.
	Scan(ctx context.Context) error
}

// CredentialService serves the routes of the agent's own sign-in credential.
type CredentialService interface {
	// Credential returns the agent's own sign-in credential; a *health.NotFoundError when
	// there is none yet.
	Credential(ctx context.Context) (apitype.Credential, error)
	// RotateCredential starts a renewal of the agent's own credential and returns without
	// waiting for it; a *health.BusyError when one is under way already.
	RotateCredential(ctx context.Context, actor string) error
}

// AuditLog serves GET /api/v1/audit.
type AuditLog interface {
	// Audit returns audit entries newest first: those with Seq < q.Before (when set), at
	// most q.Limit of them.
	Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error)
}

// Submission is a certificate posted to POST /api/v1/rotations.
type Submission struct {
	// Data is the request's certificate: DER, PEM or base64, exactly as sent (at most
	// certs.MaxFileSize bytes). The policy decides what it is.
	Data []byte
	// Signature is the signature field of a JSON request as sent (base64, of the signature
	// or of a base64 .sig file); nil when none came. The target's provenance settings
	// judge it.
	Signature []byte
	// FileName is the name the caller gave (a base name, printable), or "".
	FileName string
	// Target is the target the caller named, or "" for the one whose policy names it.
	Target string
	// Actor is "api" or "api:<name>".
	Actor string
}

// SubmitResult is the outcome of a Submission.
type SubmitResult struct {
	// Rejected, when not nil, is why the policy refused the certificate (422 with
	// Rejected.Code); Rotation is then unused.
	Rejected *certs.Reason
	// Certificate holds the facts of the submitted certificate when the input held one;
	// they accompany a rejection.
	Certificate *certs.Certificate
	// Rotation is the new rotation (Created: 201) or the existing one for the same
	// certificate (200; nothing else happened).
	Rotation rotation.Rotation
	Created  bool
}

// Config holds New's dependencies.
type Config struct {
	// The roles the handlers call. All required.
	Status       StatusSource
	Certificates CertificateSource
	Rotations    RotationService
	DropFolder   DropFolder
	Credential   CredentialService
	Audit        AuditLog
	// Token is the bearer token every request under /api/v1/ and /metrics must carry (the
	// contents of the token file, whitespace trimmed). Required, at least MinTokenLen bytes.
	Token []byte
	// Metrics serves GET /metrics (Prometheus text format). Optional: without it /metrics
	// answers 404.
	Metrics http.Handler
	// Logger receives the mutating calls, refused requests and internal errors. Required.
	Logger *slog.Logger
	// Version is the agent's version, used when the backend's Status leaves it empty.
	Version string
	// StatusMaxAge, when positive, lets GET /api/v1/status answer with the status made for
	// an earlier request, at most this old, while StatusVersion (when set) returns what it
	// did then and no mutating request has been served since (statusCache). Zero makes the
	// status anew for every request.
	StatusMaxAge time.Duration
	// StatusVersion returns a number that changes whenever the status changes for a reason
	// the source counts. Optional.
	StatusVersion func() uint64
	// ListenAddr is the configured listen address (host:port). Besides localhost,
	// 127.0.0.1 and [::1], its host is accepted in the Host header. Optional; a host that is
	// not a loopback address or "localhost" is an error.
	ListenAddr string
}

// MinTokenLen is the shortest token New accepts.
const MinTokenLen = 16

// MaxBodySize is the largest request body the API reads (1 MiB); larger bodies get 413.
const MaxBodySize = certs.MaxFileSize

// Limits for the agent's http.Server (see ServerLimits).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	// WriteTimeout leaves room for a certificates refresh, which reads Graph once.
	WriteTimeout   = 90 * time.Second
	IdleTimeout    = 2 * time.Minute
	MaxHeaderBytes = 64 << 10
)

// ServerLimits sets the timeouts and header size limit the API wants on the agent's server.
func ServerLimits(s *http.Server) {
	s.ReadHeaderTimeout = ReadHeaderTimeout
	s.ReadTimeout = ReadTimeout
	s.WriteTimeout = WriteTimeout
	s.IdleTimeout = IdleTimeout
	s.MaxHeaderBytes = MaxHeaderBytes
}

// New checks cfg and returns the API's handler.
func New(cfg Config) (http.Handler, error) {
	e, err := newEcho(cfg)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// server holds what the handlers share. It is read-only after newEcho, but for the status
// cache.
type server struct {
	status    StatusSource
	certs     CertificateSource
	rotations RotationService
	drop      DropFolder
	cred      CredentialService
	audit     AuditLog
	tokenHash [sha256.Size]byte
	// statusCache is GET /api/v1/status's last answer; its counter of writes is the one
	// mutable field.
	statusCache *statusCache
	metrics     http.Handler
	log         *slog.Logger
	version     string
	// hosts are the accepted Host names (lower case, without port or brackets).
	hosts map[string]bool
	// public are the paths served without a token.
	public map[string]bool
}

func newEcho(cfg Config) (*echo.Echo, error) {
	switch {
	case cfg.Status == nil || cfg.Certificates == nil || cfg.Rotations == nil || cfg.DropFolder == nil || cfg.Credential == nil || cfg.Audit == nil:
		return nil, errors.New("api: Config.Status, Certificates, Rotations, DropFolder, Credential and Audit are required")
	case cfg.Logger == nil:
		return nil, errors.New("api: Config.Logger is required")
	case len(cfg.Token) < MinTokenLen:
		return nil, fmt.Errorf("api: Config.Token must be at least %d bytes", MinTokenLen)
	}
	s := &server{
		status:      cfg.Status,
		certs:       cfg.Certificates,
		rotations:   cfg.Rotations,
		drop:        cfg.DropFolder,
		cred:        cfg.Credential,
		audit:       cfg.Audit,
		tokenHash:   sha256.Sum256(cfg.Token),
		metrics:     cfg.Metrics,
		log:         cfg.Logger.With("component", "api"),
		version:     cfg.Version,
		hosts:       map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true},
		public:      map[string]bool{},
		statusCache: &statusCache{maxAge: cfg.StatusMaxAge, version: cfg.StatusVersion},
	}
	if cfg.ListenAddr != "" {
		host, err := listenHost(cfg.ListenAddr)
		if err != nil {
			return nil, err
		}
		s.hosts[host] = true
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Pre(s.guard)
	for _, rt := range routes {
		mw := []echo.MiddlewareFunc{s.strictQuery(rt.query)}
		if rt.mutating {
			mw = append([]echo.MiddlewareFunc{s.logMutation}, mw...)
		}
		if rt.public {
			s.public[rt.path] = true
		}
		h := rt.handler
		e.Add(rt.method, rt.path, func(c echo.Context) error { return h(s, c) }, mw...)
	}
	e.Use(noOptions)
	return e, nil
}

// listenHost returns the host of a listen address, lower case and without brackets, or an
// error when it is not a loopback address or "localhost".
func listenHost(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("api: Config.ListenAddr %q: %w", addr, err)
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		return host, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("api: Config.ListenAddr %q: not a loopback address", addr)
	}
	return host, nil
}
