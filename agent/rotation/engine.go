package rotation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/logevent"
)

// Rechecker re-runs the certificate policy on a parsed certificate before it is written
// (a certificate approved a month after it arrived may have expired meanwhile).
// certpolicy.Policy satisfies it.
type Rechecker interface {
	CheckCertificate(c *x509.Certificate, now time.Time) *certs.Reason
}

// Config holds the engine's dependencies. Fields marked required must be set.
type Config struct {
	Store Store          // required
	Graph KeyCredentials // required
	// AppID is the target app registration's client id. Required.
	AppID string
	// TargetName is the target's name in the config, recorded with each rotation.
	TargetName string
	// Policy re-checks a certificate before it is written. Required.
	Policy Rechecker
	// RequireSignature refuses to write a certificate that came without a pinned key's
	// signature (Source.SignedBy empty), so that a rotation accepted before
	// provenance.required was turned on never reaches the app after it.
	RequireSignature bool
	// DisplayName renders the description of a new credential. Required.
	DisplayName func(c certs.Certificate, now time.Time) string
	// ManualApproval holds new rotations in StatePendingApproval until a person approves.
	ManualApproval bool
	// MaxAttempts bounds the write attempts for transient failures (default 6).
	MaxAttempts int
	// BackoffInitial and BackoffMax shape the pause between attempts (defaults 1s and 2m);
	// a server's Retry-After wins when longer (capped at 10 minutes).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// WriteTimeout bounds one read-modify-write cycle. It is also how long a shutdown waits
	// for a write under way to finish, so a stop never leaves a write half-observed when it
	// can be avoided (default 30s).
	WriteTimeout time.Duration
	// Read tunes the reads that outwait Graph's replication lag and tell a read that is
	// behind from a change made outside the agent (see ReadOptions). Its Sleep and Now
	// default to the engine's.
	Read ReadOptions
	// Retire says whether and when old certificates are removed from the app.
	Retire RetirePolicy
	// OnWrite, if set, is called after each write of the target app's keyCredentials with
	// the time between the answer of the read the write was built on and the write. It must
	// not block.
	OnWrite func(readToWrite time.Duration)
	// OnSnapshot, if set, is called after every successful read of the target app, with the
	// app as read. It must not block.
	OnSnapshot func(Snapshot)
	// OnOutcome, if set, is called when the engine takes a rotation to StateApplied,
	// StateFailed or StateRejected (the policy refused it on the app). It must not block.
	OnOutcome func(Rotation)
	Logger    *slog.Logger // required
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends (default: a timer). Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// NewID returns a fresh GUID for rotation ids and keyIds (default: random v4 UUID).
	NewID func() string
}

// Snapshot is the target application as last read from Graph.
type Snapshot struct {
	App      certs.Application
	SyncedAt time.Time
	// Err is the last read's failure, nil when it succeeded.
	Err *certs.Reason
	// ErrAt is when Err happened.
	ErrAt time.Time
	// Ledger is what the engine knows of the app's credentials from every read so far (see
	// Ledger); restored with the snapshot, it lets the first reads after a restart be judged.
	Ledger Ledger `json:"ledger"`
}

// Engine runs rotations: it takes submissions, applies them to the target app one at a time,
// and moves them through their states on a person's actions. All methods are safe for
// concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	wake chan struct{}

	// mu serialises state changes of rotations (read-modify-write on the store).
	mu sync.Mutex

	// graphMu serialises every conversation with Graph about the target app, so that two
	// read-modify-write cycles of this agent never interleave.
	graphMu sync.Mutex

	// snapMu guards snap. snap.Ledger changes only under graphMu (too).
	snapMu sync.Mutex
	snap   Snapshot
	// snapChanges counts the changes of snap, for Changes.
	snapChanges atomic.Uint64
}

// Changes returns a number that changes whenever the snapshot does (each read of the app,
// each failed read): the API's cached status is made anew when it does.
func (e *Engine) Changes() uint64 { return e.snapChanges.Load() }

// New checks cfg and returns an engine. Call Run to start applying.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("rotation: Config.Store is required")
	case cfg.Graph == nil:
		return nil, errors.New("rotation: Config.Graph is required")
	case cfg.AppID == "":
		return nil, errors.New("rotation: Config.AppID is required")
	case cfg.Policy == nil:
		return nil, errors.New("rotation: Config.Policy is required")
	case cfg.DisplayName == nil:
		return nil, errors.New("rotation: Config.DisplayName is required")
	case cfg.Logger == nil:
		return nil, errors.New("rotation: Config.Logger is required")
	}
	cfg.Store = appAudit{cfg.Store, cfg.AppID}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 2 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.NewID == nil {
		cfg.NewID = NewGUID
	}
	if cfg.Retire.After <= 0 {
		cfg.Retire.After = 14 * 24 * time.Hour
	}
	if cfg.Read.Sleep == nil {
		cfg.Read.Sleep = cfg.Sleep
	}
	if cfg.Read.Now == nil {
		cfg.Read.Now = cfg.Now
	}
	return &Engine{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "rotation"),
		wake: make(chan struct{}, 1),
	}, nil
}

// NewGUID returns a random (version 4) UUID in Graph's lower-case form.
func NewGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC() }

// poke wakes the worker without blocking.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run applies rotations in StateApplying, oldest first, one at a time, until ctx ends. At
// start it picks up rotations left applying by a previous run (a crash or a stop), which are
// settled by looking at the app before anything is written again. It returns nil when ctx is
// cancelled.
func (e *Engine) Run(ctx context.Context) error {
	for {
		rs, err := e.List(ctx, Filter{State: StateApplying})
		if err != nil && ctx.Err() == nil {
			e.log.Error("listing rotations to apply", "err", err)
		}
		for _, r := range rs {
			if ctx.Err() != nil {
				return nil
			}
			e.apply(ctx, r)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-time.After(time.Minute):
			// A safety net: a wake-up lost to a full channel never strands a rotation.
		}
	}
}

// Submission is a certificate that passed the policy, on its way to becoming a rotation.
type Submission struct {
	Cert   certs.Certificate
	DER    []byte
	Source Source
	Actor  string
	// Signer names the pinned key that signed the certificate, for the history and the
	// audit log ("provider.pub (ECDSA P-256, SHA256:...)"); "" when it came unsigned.
	Signer string
}

// Submit records a new rotation for the certificate, or returns the existing rotation for the
// same thumbprint (created == false, nothing else happens: no second upload, ever).
func (e *Engine) Submit(ctx context.Context, s Submission) (r Rotation, created bool, err error) {
	now := e.now()
	state := StateApplying
	if e.cfg.ManualApproval {
		state = StatePendingApproval
	}
	note := "submitted through the API"
	switch s.Source.Kind {
	case SourceDropFolder:
		note = "dropped as " + s.Source.FileName
	case SourcePull:
		note = "fetched from " + s.Source.URL
	}
	if s.Signer != "" {
		note += "; signed by pinned key " + s.Signer
	}
	r = Rotation{
		ID:    e.cfg.NewID(),
		State: state,
		// The keyId of the future write is chosen now and stored with the rotation, in the
		// same transaction: the intent is durable before any write, at no extra fsync.
		IntentKeyID: e.cfg.NewID(),
		Certificate: s.Cert,
		DER:         append([]byte(nil), s.DER...),
		Source:      s.Source,
		Target:      Target{Name: e.cfg.TargetName, AppID: e.cfg.AppID},
		History:     []Event{{At: now, State: state, Actor: s.Actor, Note: note}},
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	cert := s.Cert
	got, created, err := e.cfg.Store.Create(ctx, r, AuditEntry{
		At: now, Action: ActionRotationState, Actor: s.Actor, Outcome: OutcomeOK,
		RotationID: r.ID, State: state, File: s.Source.FileName, Cert: &cert, Message: note,
	})
	if err != nil {
		return Rotation{}, false, fmt.Errorf("recording rotation for %s: %w", s.Cert.Thumbprint, err)
	}
	if !created {
		msg := fmt.Sprintf("same certificate as rotation %s (%s); nothing uploaded", got.ID, got.State)
		if err := e.cfg.Store.Append(ctx, AuditEntry{
			At: now, Action: ActionRotationDup, Actor: s.Actor, Outcome: OutcomeOK,
			RotationID: got.ID, State: got.State, File: s.Source.FileName, Cert: &cert, Message: msg,
		}); err != nil {
			e.log.Warn("auditing duplicate submission", "rotation_id", got.ID, "err", err)
		}
		e.log.Info("duplicate certificate", "rotation_id", got.ID, "thumbprint", cert.Thumbprint, "state", got.State)
		return got, false, nil
	}
	e.log.Info("rotation created", "rotation_id", got.ID, "thumbprint", cert.Thumbprint, "state", got.State, "source", s.Source.Kind, "file", s.Source.FileName)
	if state == StateApplying {
		e.poke()
	}
	return got, true, nil
}

// Archived records where the drop folder filed the rotation's file, unless an earlier file of
// the same certificate was recorded already.
func (e *Engine) Archived(ctx context.Context, id, archivedAs string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.cfg.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	if r.Source.Kind != SourceDropFolder || r.Source.ArchivedAs != "" {
		return nil
	}
	r.Source.ArchivedAs = archivedAs
	return e.cfg.Store.Update(ctx, r)
}

// Get returns one rotation.
func (e *Engine) Get(ctx context.Context, id string) (Rotation, error) {
	return e.cfg.Store.Get(ctx, id)
}

// List returns rotations, oldest first.
//
// Several engines (one per target app) may share a store: an engine lists only the rotations
// of its own app.
func (e *Engine) List(ctx context.Context, f Filter) ([]Rotation, error) {
	rs, err := e.cfg.Store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(rs, func(r Rotation) bool { return !e.owns(r) }), nil
}

// Scan calls fn for each of this engine's rotations, oldest first, under Scanner's rules
// (fn must not change the rotation). From a Store that is a Scanner it copies nothing;
// from another it lists.
func (e *Engine) Scan(ctx context.Context, fn func(*Rotation)) error {
	// New wraps every Store in appAudit, whose Scan does either.
	return e.cfg.Store.(Scanner).Scan(ctx, func(r *Rotation) {
		if e.owns(*r) {
			fn(r)
		}
	})
}

// owns reports whether r is a rotation of this engine's app. A rotation stored without a
// target (never written by this version) belongs to every engine, as the one app of old.
func (e *Engine) owns(r Rotation) bool {
	return r.Target.AppID == "" || strings.EqualFold(r.Target.AppID, e.cfg.AppID)
}

// Command is what a person does to a rotation (the API's POST /rotations/{id}/<command>).
type Command string

// Commands.
const (
	CommandApprove Command = "approve" // pending_approval → applying
	CommandReject  Command = "reject"  // pending_approval or failed → rejected
	CommandConfirm Command = "confirm" // applied → confirmed: the provider was told
	CommandRetry   Command = "retry"   // failed → applying
)

// Commands lists every command.
var Commands = []Command{CommandApprove, CommandReject, CommandConfirm, CommandRetry}

// Execute performs a person's command on a rotation: approve (pending_approval → applying),
// reject (pending_approval or failed → rejected), confirm (applied → confirmed: the provider
// was told) or retry (failed → applying). Errors wrap ErrNotFound or ErrInvalidState.
func (e *Engine) Execute(ctx context.Context, id string, cmd Command, actor, note string) (Rotation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.cfg.Store.Get(ctx, id)
	if err != nil {
		return Rotation{}, err
	}
	next, ok := commandTransition(r.State, cmd)
	if !ok {
		return r, &StateError{ID: id, State: r.State, Command: cmd}
	}
	switch cmd {
	case CommandReject:
		msg := "rejected by " + actor
		if note != "" {
			msg += ": " + note
		}
		r.Reason = &certs.Reason{Code: certs.RejectedByPerson, Message: msg}
	case CommandRetry, CommandApprove:
		r.Reason = nil
		r.Attempts = 0
	}
	if err := e.transition(ctx, &r, next, actor, note, nil); err != nil {
		return Rotation{}, err
	}
	e.log.Info("rotation "+string(cmd), "rotation_id", r.ID, "actor", actor, "state", r.State)
	if next == StateApplying {
		e.poke()
	}
	return r, nil
}

// commandTransition is the state machine for people's commands.
func commandTransition(from State, cmd Command) (State, bool) {
	switch {
	case cmd == CommandApprove && from == StatePendingApproval:
		return StateApplying, true
	case cmd == CommandReject && (from == StatePendingApproval || from == StateFailed):
		return StateRejected, true
	case cmd == CommandConfirm && from == StateApplied:
		return StateConfirmed, true
	case cmd == CommandRetry && from == StateFailed:
		return StateApplying, true
	}
	return from, false
}

// transition moves r to state, with a history event and an audit entry, and stores it.
// Callers hold e.mu or own r exclusively (the worker).
func (e *Engine) transition(ctx context.Context, r *Rotation, state State, actor, note string, extra *AuditEntry) error {
	now := e.now()
	r.State = state
	r.UpdatedAt = now
	r.History = append(r.History, Event{At: now, State: state, Actor: actor, Note: note})
	cert := r.Certificate
	a := AuditEntry{
		At: now, Action: ActionRotationState, Actor: actor, Outcome: OutcomeOK,
		RotationID: r.ID, State: state, KeyID: r.KeyID, Cert: &cert, Message: note,
	}
	if r.Reason != nil && (state == StateFailed || state == StateRejected) {
		a.Code, a.Message = r.Reason.Code, r.Reason.Message
		if state == StateFailed {
			a.Outcome = OutcomeError
		} else {
			a.Outcome = OutcomeRefused
		}
	}
	audit := []AuditEntry{a}
	if extra != nil {
		audit = append([]AuditEntry{*extra}, audit...)
	}
	return e.save(ctx, r, audit...)
}

// save stores r, which the engine read before it started work on it. The drop folder may
// have recorded where it filed the rotation's file since (Archived): that is kept, not
// written over with the older copy. Callers hold e.mu.
func (e *Engine) save(ctx context.Context, r *Rotation, audit ...AuditEntry) error {
	if r.Source.Kind == SourceDropFolder && r.Source.ArchivedAs == "" {
		if cur, err := e.cfg.Store.Get(ctx, r.ID); err == nil {
			r.Source.ArchivedAs = cur.Source.ArchivedAs
		}
	}
	return e.cfg.Store.Update(ctx, *r, audit...)
}

// apply takes one rotation in StateApplying to applied, failed or rejected — or leaves it
// applying when ctx ends, to be settled by the next run.
func (e *Engine) apply(ctx context.Context, r Rotation) {
	log := e.log.With("rotation_id", r.ID, "thumbprint", r.Certificate.Thumbprint)
	cert, err := x509.ParseCertificate(r.DER)
	if err != nil {
		// Only a corrupted store gets here: the policy parsed it on the way in.
		e.finish(ctx, &r, StateFailed, &certs.Reason{Code: certs.NotACertificate, Message: "the stored certificate does not parse: " + err.Error()}, log)
		return
	}
	for {
		r.Attempts++
		res, kept, err := e.addOnce(ctx, &r, cert)
		if err == nil {
			r.KeyID = res.Credential.KeyID
			r.AlreadyPresent = res.AlreadyPresent
			r.Target.ObjectID, r.Target.DisplayName = res.App.ObjectID, res.App.DisplayName
			note := fmt.Sprintf("on the app as keyId %s, read back with every earlier credential", r.KeyID)
			if res.AlreadyPresent {
				note = fmt.Sprintf("already on the app as keyId %s; nothing written", r.KeyID)
			}
			var wrote *AuditEntry
			if res.Wrote {
				c := r.Certificate
				wrote = &AuditEntry{At: e.now(), Action: ActionGraphWrite, Actor: ActorAgent, Outcome: OutcomeOK,
					RotationID: r.ID, State: StateApplying, KeyID: r.KeyID, Cert: &c,
					Message: fmt.Sprintf("wrote keyId %s to app %s beside its %d existing credentials, %s after the read it was built on; read back with every one of them",
						r.KeyID, e.cfg.AppID, kept, res.ReadToWrite.Round(time.Millisecond))}
			}
			e.finishWith(ctx, &r, StateApplied, nil, log, note, wrote)
			return
		}
		var refused *policyRefusal
		if errors.As(err, &refused) {
			e.finish(ctx, &r, StateRejected, refused.reason, log)
			return
		}
		if ctx.Err() != nil {
			// Stopping: the rotation stays applying with its intent; the next run settles it.
			log.Info("stopping with rotation still applying", "attempt", r.Attempts)
			return
		}
		reason := ErrorReason(err)
		transient := IsTransient(err)
		if !transient || r.Attempts >= e.cfg.MaxAttempts {
			if transient {
				reason = certs.Reason{Code: certs.GraphUnavailable, Message: fmt.Sprintf("gave up after %d attempts: %s", r.Attempts, reason.Message)}
			}
			e.finish(ctx, &r, StateFailed, &reason, log)
			return
		}
		wait := e.backoff(r.Attempts, RetryAfter(err))
		log.Warn("transient Graph failure; will retry", "attempt", r.Attempts, "retry_in", wait.String(), "code", reason.Code, "err", err)
		e.mu.Lock()
		r.UpdatedAt = e.now()
		uerr := e.save(ctx, &r, AuditEntry{At: e.now(), Action: ActionGraphWrite, Actor: ActorAgent, Outcome: OutcomeError,
			RotationID: r.ID, State: r.State, Code: reason.Code, Message: fmt.Sprintf("attempt %d: %s; retrying in %s", r.Attempts, reason.Message, wait.Round(time.Millisecond))})
		e.mu.Unlock()
		if uerr != nil {
			log.Error("recording attempt", "err", uerr)
		}
		if e.cfg.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// policyRefusal is the policy refusing, just before the write, a certificate it accepted on
// the way in (an approval weeks later, a retry after it expired).
type policyRefusal struct{ reason *certs.Reason }

func (p *policyRefusal) Error() string { return p.reason.Error() }

// addOnce runs one read-modify-write cycle for r, storing the intent before the write.
//
// The policy is checked again right before the write, once the read showed that the
// certificate is not on the app: a certificate that is there already is recorded as applied
// whatever the policy says now (it is the truth of the app, and after a crash it may be this
// agent's own earlier write), but one that is not is never written against the policy.
func (e *Engine) addOnce(ctx context.Context, r *Rotation, cert *x509.Certificate) (res AddResult, kept int, err error) {
	e.graphMu.Lock()
	defer e.graphMu.Unlock()

	keyID := r.IntentKeyID
	if keyID == "" {
		keyID = e.cfg.NewID()
	}
	now := e.now()
	nc := certs.KeyCredential{
		KeyID:         keyID,
		Type:          certs.KeyTypeX509Cert,
		Usage:         certs.KeyUsageVerify,
		Key:           r.DER,
		DisplayName:   e.cfg.DisplayName(r.Certificate, now),
		StartDateTime: r.Certificate.NotBefore,
		EndDateTime:   r.Certificate.NotAfter,
	}
	// Once the write is sent it must be allowed to finish and be read back even while the
	// agent stops, so the cycle runs on a context that a stop does not cancel, bounded by
	// WriteTimeout. Before the write, a stop ends the cycle at once.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.WriteTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	ledger := e.ledger()
	res, err = AddCertificate(wctx, e.cfg.Graph, e.cfg.AppID, nc, AddOptions{
		ReadOptions: e.cfg.Read,
		Ledger:      &ledger,
		BeforeWrite: func(app certs.Application) error {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if reason := e.cfg.Policy.CheckCertificate(cert, e.now()); reason != nil {
				return &policyRefusal{reason: reason}
			}
			if e.cfg.RequireSignature && r.Source.SignedBy == "" {
				return &policyRefusal{reason: &certs.Reason{Code: certs.SignatureMissing,
					Message: "the certificate came without the provider's signature, and provenance.required is on now: only signed certificates are written; submit it again with its signature"}}
			}
			stop() // from here on, a stop waits for the write to be proven
			r.Target.ObjectID, r.Target.DisplayName = app.ObjectID, app.DisplayName
			kept = len(app.KeyCredentials)
			if r.IntentKeyID == keyID {
				return nil // stored when the rotation was created
			}
			// A rotation stored without an intent (by an earlier version): store it first.
			r.IntentKeyID = keyID
			e.mu.Lock()
			defer e.mu.Unlock()
			r.UpdatedAt = e.now()
			cert := r.Certificate
			return e.save(ctx, r, AuditEntry{At: r.UpdatedAt, Action: ActionGraphWrite, Actor: ActorAgent, Outcome: OutcomeOK,
				RotationID: r.ID, State: r.State, KeyID: keyID, Cert: &cert,
				Message: fmt.Sprintf("writing keyId %s to app %s with its %d existing credentials", keyID, app.AppID, len(app.KeyCredentials))})
		},
	})
	stop()
	e.setLedger(ledger)
	e.recordChanges(ctx, res.Changes)
	if res.Wrote && e.cfg.OnWrite != nil {
		e.cfg.OnWrite(res.ReadToWrite)
	}
	if len(res.Restored) > 0 {
		var parts []string
		for _, c := range res.Restored {
			parts = append(parts, fmt.Sprintf("keyId %s (thumbprint %s, %q)", c.KeyID, c.Thumbprint(), c.DisplayName))
		}
		msg := fmt.Sprintf("put back on app %s %s: added outside certagent while rotation %s was written, shown by a read only after the write was built, and not kept by it; if it was removed on purpose meanwhile, remove it again (certagent never puts back a credential it has seen removed)",
			e.cfg.AppID, strings.Join(parts, ", "), r.ID)
		e.log.Warn("restored credentials dropped by a concurrent edit", "app_id", e.cfg.AppID, "key_ids", keyIDs(res.Restored))
		e.audit(ctx, AuditEntry{Action: ActionExternalChange, Actor: ActorAgent, Outcome: OutcomeOK, RotationID: r.ID, Message: msg})
	}
	switch {
	case err == nil || res.App.ObjectID != "":
		e.observe(res.App)
	case ctx.Err() == nil: // a stop is not a Graph failure
		e.observeErr(err)
	}
	return res, kept, err
}

// finish moves r to a final-for-now state and logs it.
func (e *Engine) finish(ctx context.Context, r *Rotation, state State, reason *certs.Reason, log *slog.Logger) {
	e.finishWith(ctx, r, state, reason, log, "", nil)
}

// finishWith is finish with a note and an extra audit entry written in the same
// transaction, before the state change.
func (e *Engine) finishWith(ctx context.Context, r *Rotation, state State, reason *certs.Reason, log *slog.Logger, note string, extra *AuditEntry) {
	r.Reason = reason
	if reason != nil && note == "" {
		note = reason.Message
	}
	e.mu.Lock()
	err := e.transition(context.WithoutCancel(ctx), r, state, actorFor(state, reason), note, extra)
	e.mu.Unlock()
	if err != nil {
		log.Error("recording rotation state", "state", state, "err", err)
		return
	}
	switch state {
	case StateApplied:
		log.Info("rotation applied", "key_id", r.KeyID, "already_present", r.AlreadyPresent, logevent.Attr(logevent.RotationApplied))
	case StateFailed:
		// An event for the Event Log and the journal: a person must retry or reject it.
		log.Error("rotation failed", "code", reason.Code, "reason", reason.Message, logevent.Attr(logevent.RotationFailed))
	default:
		log.Warn("rotation "+string(state), "code", reason.Code, "reason", reason.Message)
	}
	if e.cfg.OnOutcome != nil {
		e.cfg.OnOutcome(r.Clone())
	}
}

func actorFor(state State, reason *certs.Reason) string {
	if state == StateRejected && reason != nil && reason.Code != certs.RejectedByPerson {
		return ActorPolicy
	}
	return ActorAgent
}

// backoff is the pause before attempt n+1: exponential with ±20% jitter, or the server's
// Retry-After when that is longer.
func (e *Engine) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := float64(e.cfg.BackoffInitial) * math.Pow(2, float64(attempt-1))
	d = min(d, float64(e.cfg.BackoffMax))
	d *= 0.8 + 0.4*mathrand.Float64()
	wait := time.Duration(d)
	if retryAfter > wait {
		wait = min(retryAfter, 10*time.Minute)
	}
	return wait
}

func (e *Engine) audit(ctx context.Context, a AuditEntry) {
	if a.At.IsZero() {
		a.At = e.now()
	}
	if err := e.cfg.Store.Append(context.WithoutCancel(ctx), a); err != nil {
		e.log.Error("writing audit entry", "action", a.Action, "err", err)
	}
}

// appAudit is the engine's view of its Store: every audit entry it writes names the engine's
// app, so that with several targets the log says which app each step was on.
type appAudit struct {
	Store
	appID string
}

func (s appAudit) stamp(audit []AuditEntry) []AuditEntry {
	out := make([]AuditEntry, len(audit))
	for i, a := range audit {
		if a.AppID == "" {
			a.AppID = s.appID
		}
		out[i] = a
	}
	return out
}

func (s appAudit) Create(ctx context.Context, r Rotation, audit ...AuditEntry) (Rotation, bool, error) {
	return s.Store.Create(ctx, r, s.stamp(audit)...)
}

func (s appAudit) Update(ctx context.Context, r Rotation, audit ...AuditEntry) error {
	return s.Store.Update(ctx, r, s.stamp(audit)...)
}

func (s appAudit) Append(ctx context.Context, audit ...AuditEntry) error {
	return s.Store.Append(ctx, s.stamp(audit)...)
}

// Scan passes Scanner through (the embedded interface would hide it), and lists otherwise.
func (s appAudit) Scan(ctx context.Context, fn func(*Rotation)) error {
	if sc, ok := s.Store.(Scanner); ok {
		return sc.Scan(ctx, fn)
	}
	rs, err := s.Store.List(ctx, Filter{})
	for i := range rs {
		fn(&rs[i])
	}
	return err
}
