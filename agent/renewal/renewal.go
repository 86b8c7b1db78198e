// Package renewal renews the agent's own sign-in credential before it expires: a new key pair
// made locally, its certificate added to the agent's app registration with Graph's addKey
// (which needs no permission beyond the current key), proven to sign in, then used.
//
// Crash safety: the new pair is written to the "next" files before addKey, so a restart
// resumes with the same key and never registers a second new one; that an addKey was sent is
// recorded too, so that a restart whose reads of the app are behind (Graph's replication lag)
// waits for the key to show rather than adding the same certificate again. Promotion writes the main
// files; credential.Recover repairs a promotion cut short.
package renewal

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/securefile"
)

// Graph is what a renewal needs of Microsoft Graph and the token endpoint.
type Graph interface {
	// Get reads the application with client id appID, with its key credentials.
	Get(ctx context.Context, appID string) (certs.Application, error)
	// AddKey adds cert to the application objectID with addKey, proven by the current key.
	AddKey(ctx context.Context, objectID string, cert *x509.Certificate, displayName string) (certs.KeyCredential, error)
	// RemoveKey removes keyID from the application objectID with removeKey, proven by the
	// current key.
	RemoveKey(ctx context.Context, objectID, keyID string) error
	// TrySignIn asks for a token with cert and key, without switching to them.
	TrySignIn(ctx context.Context, cert *x509.Certificate, key crypto.Signer) error
}

// retireFile is where a renewal records the previous certificate it still has to remove from
// the agent's app, so that a crash between the switch and the removal resumes it.
func retireFile(main credential.Files) string {
	return filepath.Join(filepath.Dir(main.Cert), "agent.previous.json")
}

// previous is the content of the retire file.
type previous struct {
	Thumbprint string    `json:"thumbprint"`
	NotAfter   time.Time `json:"notAfter"`
	// LastError is why the last attempt to remove it failed.
	LastError string `json:"lastError,omitempty"`
}

// NextFiles returns where a renewal keeps the new pair until it is proven.
func NextFiles(main credential.Files) credential.Files {
	return credential.Files{
		Cert: filepath.Join(filepath.Dir(main.Cert), "agent.next.pem"),
		Key:  filepath.Join(filepath.Dir(main.Key), "agent.next.key"),
	}
}

// Config holds a Renewer's settings and dependencies; all are required unless marked.
type Config struct {
	Graph Graph
	// ClientID is the agent's own app registration.
	ClientID string
	// Source is the credential the agent signs in with; a renewal switches it.
	Source *credential.Source
	// Files are where the credential lives.
	Files credential.Files
	// KeyBits and Validity shape new credentials.
	KeyBits  int
	Validity time.Duration
	// RenewBefore is how long before expiry a renewal starts.
	RenewBefore time.Duration
	// ProveWindow bounds how long a renewal waits for a new key to be accepted at sign-in
	// (Entra takes seconds to minutes) before it gives up until the next check (default
	// 15m).
	ProveWindow time.Duration
	// CheckEvery is how often the credential's age is checked (default 1h).
	CheckEvery time.Duration
	// Audit records each step.
	Audit func(ctx context.Context, e rotation.AuditEntry)
	// Logger.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Renewer renews the agent's credential. Run drives it; Start asks for a renewal now.
type Renewer struct {
	cfg Config
	log *slog.Logger
	req chan string // an actor asking for a renewal now

	// mu guards the fields below.
	mu      sync.Mutex
	running bool
	waiting *waitState // a renewal waiting for its new key to be accepted
	lastErr error      // the last renewal's failure, nil after a success
	// prev caches the retire file for Problems, which every status request calls: prevGen
	// counts the writes and removals of the file (only this Renewer makes them, through
	// changedPrevious), and prevAt is the generation prev was read at (0: none read yet).
	prev    previous
	prevErr error
	prevGen uint64
	prevAt  uint64
}

type waitState struct {
	thumbprint string
	since      time.Time
	attempts   int
	lastErr    string
}

// New checks cfg and returns a Renewer.
func New(cfg Config) (*Renewer, error) {
	if cfg.Graph == nil || cfg.Source == nil || cfg.Audit == nil || cfg.Logger == nil || cfg.ClientID == "" {
		return nil, errors.New("renewal: Config.Graph, ClientID, Source, Audit and Logger are required")
	}
	if cfg.ProveWindow <= 0 {
		cfg.ProveWindow = 15 * time.Minute
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	return &Renewer{cfg: cfg, log: cfg.Logger.With("component", "renewal"), req: make(chan string, 1)}, nil
}

// errBusy is what Start returns while a renewal runs.
var errBusy = &health.BusyError{What: "a renewal of the agent's credential"}

// Start asks Run for a renewal now, on behalf of actor, and returns without waiting. It
// returns a *health.BusyError while one is under way or already asked for.
func (r *Renewer) Start(actor string) error {
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running {
		return errBusy
	}
	select {
	case r.req <- actor:
		return nil
	default:
		return errBusy
	}
}

// Run renews the credential when it enters the RenewBefore window, when asked (Start), and
// resumes a renewal that a stop or crash cut short. It checks at start and every CheckEvery,
// and returns nil when ctx ends.
func (r *Renewer) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.CheckEvery)
	defer t.Stop()
	actor := ""
	for {
		// A previous certificate whose removal a crash or a failure cut short.
		if err := r.removePrevious(ctx, rotation.ActorAgent); err != nil && ctx.Err() == nil {
			r.log.Warn("removing the agent's previous certificate failed; will try again", "retry_in", r.cfg.CheckEvery, "err", err)
		}
		c := r.cfg.Source.Credential()
		_, err := os.Stat(NextFiles(r.cfg.Files).Key)
		pending := err == nil
		due := c != nil && c.Cert.NotAfter.Sub(r.cfg.Now()) < r.cfg.RenewBefore
		if pending || due || actor != "" {
			if actor == "" {
				actor = rotation.ActorAgent
			}
			r.setRunning(true)
			err := r.renew(ctx, actor)
			r.setRunning(false)
			r.mu.Lock()
			r.lastErr = err
			r.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				r.log.Warn("renewing the agent's credential failed; will try again", "retry_in", r.cfg.CheckEvery, "err", err)
			}
		}
		actor = ""
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case actor = <-r.req:
		}
	}
}

func (r *Renewer) setRunning(b bool) {
	r.mu.Lock()
	r.running = b
	if !b {
		r.waiting = nil
	}
	r.mu.Unlock()
}

// renew runs one renewal.
func (r *Renewer) renew(ctx context.Context, actor string) error {
	main := r.cfg.Files
	next := NextFiles(main)
	cur := r.cfg.Source.Credential()
	if cur == nil {
		return errors.New("the agent has no credential to renew")
	}
	curThumb := certs.ThumbprintSHA1(cur.Cert.Raw)
	fail := func(step string, err error) error {
		reason := rotation.ErrorReason(err)
		r.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeError, Code: reason.Code,
			Message: fmt.Sprintf("renewing the agent's credential: %s: %s", step, reason.Message)})
		return fmt.Errorf("%s: %w", step, err)
	}

	own, err := r.cfg.Graph.Get(ctx, r.cfg.ClientID)
	if err != nil {
		return fail("reading the agent's own app "+r.cfg.ClientID+" (the agent's service principal must own its app registration, or hold Application.Read.All)", err)
	}
	nc, err := credential.Load(next)
	if errors.Is(err, credential.ErrNotFound) {
		host, _ := os.Hostname()
		nc, err = credential.Generate(credential.Options{CommonName: "certagent " + host, Bits: r.cfg.KeyBits, Validity: r.cfg.Validity, Now: r.cfg.Now})
		if err == nil {
			err = credential.Save(next, nc)
		}
	}
	if err != nil {
		return fail("preparing the new key pair", err)
	}
	newThumb := certs.ThumbprintSHA1(nc.Cert.Raw)
	if !hasThumb(own.KeyCredentials, newThumb) && r.sentBefore(newThumb) {
		// An earlier addKey of this key may have landed (a stop, a crash or a lost answer
		// came before it was seen): a read that lacks it may be behind (Graph's replication
		// lag). Graph does not refuse the same certificate twice, so outwait the lag before
		// adding it again.
		if own, err = r.awaitKey(ctx, newThumb); err != nil {
			return fail("reading the agent's own app "+r.cfg.ClientID, err)
		}
	}
	if !hasThumb(own.KeyCredentials, newThumb) {
		// Recorded before the call, so that a restart knows it may have landed.
		if err := writeSent(sentFile(main), newThumb, r.cfg.Now()); err != nil {
			return fail("recording the addKey about to be sent", err)
		}
		name := fmt.Sprintf("certagent %s (renewed %s)", strings.TrimPrefix(nc.Cert.Subject.CommonName, "certagent "), r.cfg.Now().UTC().Format(time.DateOnly))
		if _, err := r.cfg.Graph.AddKey(ctx, own.ObjectID, nc.Cert, name); err != nil {
			return fail("adding the new certificate to the agent's app", err)
		}
		r.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK,
			Message: fmt.Sprintf("added the agent's new certificate %s to its app %s", newThumb, r.cfg.ClientID)})
	}

	// Prove the new key signs in before relying on it. Entra accepts a new key only after a
	// while (seconds to minutes): keep signing in with the old key meanwhile, and try the new
	// one with growing pauses for up to ProveWindow.
	if err := r.prove(ctx, nc); err != nil {
		return fail(fmt.Sprintf("signing in with the new certificate %s (kept the old one)", newThumb), err)
	}
	// Recorded before the switch, so that a crash at any instant after it still removes the
	// previous certificate; removePrevious never removes the one in use.
	err = writePrevious(retireFile(main), previous{Thumbprint: curThumb, NotAfter: cur.Cert.NotAfter})
	r.changedPrevious()
	if err != nil {
		return fail("recording the previous certificate to remove", err)
	}
	if err := credential.Promote(main, next, nc); err != nil {
		// The new key works and is registered; the files still hold the old pair, which is
		// still registered too. The next start resumes from the next files.
		return fail("storing the new credential", err)
	}
	r.cfg.Source.Set(nc)
	os.Remove(sentFile(main))
	r.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK,
		Message: fmt.Sprintf("the agent now signs in with certificate %s (valid until %s)", newThumb, nc.Cert.NotAfter.UTC().Format(time.DateOnly))})
	r.log.Info("agent credential renewed", "credential", nc)

	// The previous certificate is superseded: left on the app it would stay valid for up to a
	// year after its key was discarded. Remove it with removeKey, proven by the new key.
	return r.removePrevious(ctx, actor)
}

// sentFile records the thumbprint of a new certificate whose addKey was sent, until the
// renewal switches to it: after a restart, its absence from a read may be the read being
// behind, not the addKey being lost.
func sentFile(main credential.Files) string {
	return filepath.Join(filepath.Dir(main.Cert), "agent.next.added.json")
}

type sent struct {
	Thumbprint string    `json:"thumbprint"`
	At         time.Time `json:"at"`
}

func writeSent(path, thumb string, at time.Time) error {
	b, err := json.Marshal(sent{Thumbprint: thumb, At: at.UTC()})
	if err != nil {
		return err
	}
	return securefile.WriteFile(path, b)
}

// sentBefore reports whether an addKey of the certificate thumb was sent before.
func (r *Renewer) sentBefore(thumb string) bool {
	b, err := os.ReadFile(sentFile(r.cfg.Files))
	if err != nil {
		return false
	}
	var s sent
	return json.Unmarshal(b, &s) == nil && s.Thumbprint == thumb
}

// awaitKeyFor bounds how long awaitKey reads the agent's app for a key whose addKey was sent:
// longer than Graph's replication lag is ever reported to be (docs/graph.md).
const awaitKeyFor = 2 * time.Minute

// awaitKey reads the agent's own app until it shows the certificate thumb, for at most
// awaitKeyFor, and returns the last read. Not seen by then: the addKey did not land.
func (r *Renewer) awaitKey(ctx context.Context, thumb string) (certs.Application, error) {
	start := r.cfg.Now()
	delay := time.Second
	for {
		own, err := r.cfg.Graph.Get(ctx, r.cfg.ClientID)
		if err != nil || hasThumb(own.KeyCredentials, thumb) || r.cfg.Now().Sub(start) >= awaitKeyFor {
			if err == nil && !hasThumb(own.KeyCredentials, thumb) {
				r.log.Warn("the new certificate's earlier addKey did not land; adding it again", "thumbprint", thumb, "waited", awaitKeyFor)
			}
			return own, err
		}
		if err := r.cfg.Sleep(ctx, delay); err != nil {
			return own, err
		}
		delay = min(2*delay, 15*time.Second)
	}
}

// removePrevious removes the agent's previous certificate, recorded by a renewal, from its
// app, reads the app back until it is gone, and forgets it. Nothing recorded: nothing to do.
func (r *Renewer) removePrevious(ctx context.Context, actor string) error {
	path := retireFile(r.cfg.Files)
	prev, err := readPrevious(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if c := r.cfg.Source.Credential(); c != nil && certs.ThumbprintSHA1(c.Cert.Raw) == prev.Thumbprint {
		// The recorded certificate is the one in use (a renewal cut short before the
		// switch): never remove it.
		defer r.changedPrevious()
		return os.Remove(path)
	}
	fail := func(step string, err error) error {
		prev.LastError = rotation.ErrorReason(err).Message
		writePrevious(path, prev)
		r.changedPrevious()
		r.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeError, Code: rotation.ErrorReason(err).Code,
			Message: fmt.Sprintf("removing the agent's previous certificate %s from its app: %s: %s", prev.Thumbprint, step, rotation.ErrorReason(err).Message)})
		return fmt.Errorf("removing the previous certificate %s: %s: %w", prev.Thumbprint, step, err)
	}
	own, err := r.cfg.Graph.Get(ctx, r.cfg.ClientID)
	if err != nil {
		return fail("reading the agent's app", err)
	}
	for _, k := range own.KeyCredentials {
		if k.Thumbprint() != prev.Thumbprint {
			continue
		}
		err := r.cfg.Graph.RemoveKey(ctx, own.ObjectID, k.KeyID)
		switch {
		case err == nil:
			r.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionCredential, Actor: actor, Outcome: rotation.OutcomeOK, KeyID: k.KeyID,
				Message: fmt.Sprintf("removed the agent's previous certificate %s (keyId %s) from its app %s: superseded by the renewal", prev.Thumbprint, k.KeyID, r.cfg.ClientID)})
		case rotation.ErrorReason(err).Code == certs.AppNotFound:
			// Gone already: an earlier attempt removed it (a stop or crash came before the
			// record was dropped) and this read was behind. Not a second removal.
			r.log.Info("the agent's previous certificate was gone already", "thumbprint", prev.Thumbprint, "key_id", k.KeyID)
		default:
			return fail("removeKey", err)
		}
	}
	// Read back until it is gone (Graph's reads lag its writes).
	delay := time.Second
	for attempt := 1; ; attempt++ {
		own, err = r.cfg.Graph.Get(ctx, r.cfg.ClientID)
		if err == nil && !hasThumb(own.KeyCredentials, prev.Thumbprint) {
			break
		}
		if attempt >= 6 {
			if err == nil {
				err = errors.New("still on the app")
			}
			return fail("reading back", err)
		}
		if r.cfg.Sleep(ctx, delay) != nil {
			return ctx.Err()
		}
		delay *= 2
	}
	r.log.Info("previous agent certificate removed", "thumbprint", prev.Thumbprint)
	defer r.changedPrevious()
	return os.Remove(path)
}

func readPrevious(path string) (previous, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return previous{}, err
	}
	var p previous
	if err := json.Unmarshal(b, &p); err != nil || p.Thumbprint == "" {
		return previous{}, fmt.Errorf("reading %s: not a record of a previous certificate: %v", path, err)
	}
	return p, nil
}

// cachedPrevious returns what readPrevious of the retire file returns, reading the file only
// when it has changed since the last read.
func (r *Renewer) cachedPrevious() (previous, error) {
	r.mu.Lock()
	gen := r.prevGen + 1 // generations start at 1, so that prevAt 0 means none read
	if r.prevAt == gen {
		defer r.mu.Unlock()
		return r.prev, r.prevErr
	}
	r.mu.Unlock()
	p, err := readPrevious(retireFile(r.cfg.Files))
	r.mu.Lock()
	if r.prevGen+1 == gen { // no write or removal came while reading
		r.prev, r.prevErr, r.prevAt = p, err, gen
	}
	r.mu.Unlock()
	return p, err
}

// changedPrevious notes that the retire file was written or removed (or may have been):
// the next cachedPrevious reads it again.
func (r *Renewer) changedPrevious() {
	r.mu.Lock()
	r.prevGen++
	r.mu.Unlock()
}

func writePrevious(path string, p previous) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return securefile.WriteFile(path, b)
}

// prove signs in with nc until it works, a permanent error other than "not accepted yet"
// comes, or ProveWindow passes.
func (r *Renewer) prove(ctx context.Context, nc *credential.Credential) error {
	start := r.cfg.Now()
	delay := 2 * time.Second
	thumb := certs.ThumbprintSHA1(nc.Cert.Raw)
	for attempt := 1; ; attempt++ {
		err := r.cfg.Graph.TrySignIn(ctx, nc.Cert, nc.Key)
		if err == nil {
			r.mu.Lock()
			r.waiting = nil
			r.mu.Unlock()
			if attempt > 1 {
				r.log.Info("the new certificate signs in", "thumbprint", thumb, "after", r.cfg.Now().Sub(start).Round(time.Second), "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !notAcceptedYet(err) && !rotation.IsTransient(err) {
			return err
		}
		if r.cfg.Now().Sub(start) >= r.cfg.ProveWindow {
			return fmt.Errorf("not accepted after %s (%d attempts): %w", r.cfg.ProveWindow, attempt, err)
		}
		r.mu.Lock()
		if r.waiting == nil {
			r.waiting = &waitState{thumbprint: thumb, since: start}
		}
		r.waiting.attempts, r.waiting.lastErr = attempt, "not accepted yet (AADSTS700027)"
		if !notAcceptedYet(err) {
			r.waiting.lastErr = string(rotation.ErrorReason(err).Code)
		}
		r.mu.Unlock()
		if attempt == 1 {
			r.log.Info("renewal waiting for the new certificate to become usable at sign-in", "thumbprint", thumb, "err", err)
		}
		if r.cfg.Sleep(ctx, delay) != nil {
			return err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// notAcceptedYet reports whether err is the token endpoint not knowing the key yet
// (AADSTS700027 "not registered"), which is what sign-in propagation looks like.
func notAcceptedYet(err error) bool {
	var ae interface{ AADSTSCode() int }
	if errors.As(err, &ae) {
		return ae.AADSTSCode() == 700027
	}
	return strings.Contains(err.Error(), "AADSTS700027")
}

// Problems returns what a person should know about the agent's credential at now.
func (r *Renewer) Problems(now time.Time) []health.Problem {
	var ps []health.Problem
	r.mu.Lock()
	w := r.waiting
	r.mu.Unlock()
	if w != nil {
		ps = append(ps, health.Problem{Code: health.CredentialRenewalWaiting, Severity: health.Info,
			Message: fmt.Sprintf("renewal waiting for the new key %s to become usable: Entra ID accepts a new certificate at sign-in only after a while; waiting since %s (%d tries, last: %s); the agent keeps signing in with its current certificate meanwhile",
				w.thumbprint, w.since.UTC().Format(time.RFC3339), w.attempts, w.lastErr)})
	}
	if p, err := r.cachedPrevious(); err == nil && p.LastError != "" {
		sev := health.Warning
		if !p.NotAfter.After(now) {
			sev = health.Info // expired: it cannot sign in any more, only clutters the app
		}
		ps = append(ps, health.Problem{Code: health.AgentCredentialSuperseded, Severity: sev,
			Message: fmt.Sprintf("the agent's previous certificate %s (valid until %s) is still on its app %s: removing it failed (%s); the agent retries every %s, or remove it in the portal under Certificates & secrets",
				p.Thumbprint, p.NotAfter.UTC().Format(time.DateOnly), r.cfg.ClientID, p.LastError, r.cfg.CheckEvery)})
	}
	c := r.cfg.Source.Credential()
	if c == nil {
		return ps
	}
	left := c.Cert.NotAfter.Sub(now)
	if left < r.cfg.RenewBefore {
		sev := health.Warning
		if left < 7*24*time.Hour {
			sev = health.Critical
		}
		ps = append(ps, health.Problem{Code: health.AgentCredentialExpiring, Severity: sev,
			Message: fmt.Sprintf("the agent's own sign-in certificate (thumbprint %s) expires in %d days, on %s, and was not renewed; run `certagent credential rotate`",
				certs.ThumbprintSHA1(c.Cert.Raw), certs.DaysBetween(now, c.Cert.NotAfter), c.Cert.NotAfter.UTC().Format(time.DateOnly))})
	}
	return ps
}

// NextRenewal returns when the current credential enters the renewal window.
func (r *Renewer) NextRenewal() time.Time {
	c := r.cfg.Source.Credential()
	if c == nil {
		return time.Time{}
	}
	return c.Cert.NotAfter.Add(-r.cfg.RenewBefore)
}

func hasThumb(creds []certs.KeyCredential, thumb string) bool {
	for _, c := range creds {
		if c.Thumbprint() == thumb {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
