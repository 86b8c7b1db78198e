// Package target is one app registration's work: the certificates that reach it (the drop
// folder and API submissions), the policy they must pass, the rotation engine that puts them
// on the app through Graph, and what a person should know about it (its status and
// problems). The agent wires one Target per app registration it keeps current.
package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/intake"
	"github.com/aucloud/certagent/agent/provenance"
	"github.com/aucloud/certagent/agent/pull"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// RefreshEvery is how often Certificates(refresh) may read Graph.
const RefreshEvery = 5 * time.Second

// Store is what a target needs of the agent's store: the rotations and the audit log, and a
// meta area for its last read of the app.
type Store interface {
	rotation.Store
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
	// AppendAsync queues audit entries without waiting for the disk (a flood of drop files).
	AppendAsync(ctx context.Context, audit ...rotation.AuditEntry) error
}

// Config holds a target's settings and dependencies; all are required unless marked.
type Config struct {
	// Name names the target in the config, the API and the status ("default" for the
	// single target: of an older config).
	Name string
	// TenantID is the tenant the app registration is in.
	TenantID string
	// AppID is the app registration's client id.
	AppID string
	// Policy judges certificates; Names renders a new credential's description.
	Policy certpolicy.Policy
	Names  *certpolicy.NameTemplate
	// Provenance judges the signatures that come with certificates, by every path (nil: no
	// key pinned, nothing required).
	Provenance *provenance.Verifier
	// ManualApproval holds new rotations for a person's approval.
	ManualApproval bool
	// Retire says whether and when superseded certificates are removed from the app.
	Retire rotation.RetirePolicy
	// MaxAttempts bounds the engine's write attempts (0: its default).
	MaxAttempts int
	// Read tunes how the engine reads the app (zero: its defaults).
	Read rotation.ReadOptions
	// Graph reads and writes the app's keyCredentials.
	Graph rotation.KeyCredentials
	// Store keeps rotations, the audit log and the last read of the app.
	Store Store
	// Intake is the drop folder's configuration; Handler and Logger are set by New.
	Intake intake.Config
	// Source is where the target's next certificate is fetched from; a zero URL: nowhere.
	Source Source
	// SyncInterval is how often the app is read when nothing happens.
	SyncInterval time.Duration
	// ExpiryWarning is how long before the newest certificate expires a problem is raised.
	ExpiryWarning time.Duration
	// OnOutcome, if set, is called when the engine takes a rotation to applied, failed or
	// rejected; it must not block.
	OnOutcome func(rotation.Rotation)
	// OnWrite, if set, gets the read-to-write window of each write (metrics).
	OnWrite func(time.Duration)
	// OnIntake, if set, counts each certificate taken in: verdict "accepted" or "rejected",
	// with the reason code (metrics).
	OnIntake func(verdict, code string)
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Source is a target's source section: the provider's URL of its next certificate.
type Source struct {
	URL      string
	Interval time.Duration
	// CAFile is the pinned CA; "" trusts the system's roots.
	CAFile string
	// UserAgent is sent with each request.
	UserAgent string
	// Transport, if set, replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Target is one app registration's work. Its methods are safe for concurrent use.
type Target struct {
	cfg    Config
	log    *slog.Logger
	engine *rotation.Engine
	intake *intake.Intake
	pull   *pull.Fetcher // nil without a source URL

	// refreshMu guards lastRefresh (rate limit of Certificates with refresh).
	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// SnapshotKey is the store's meta key for the last read of the app appID, so that status
// and certificates have an answer right after a restart, before the first read. Targets share
// one store: each app has its own key.
func SnapshotKey(appID string) string {
	return legacySnapshotKey + "/" + strings.ToLower(appID)
}

// legacySnapshotKey is where an agent with one target kept its snapshot.
const legacySnapshotKey = "target-app-snapshot"

// New builds a target; Run starts its work.
func New(cfg Config) (*Target, error) {
	if cfg.Graph == nil || cfg.Store == nil || cfg.Logger == nil || cfg.Names == nil || cfg.AppID == "" {
		return nil, errors.New("target: Config.AppID, Graph, Store, Names and Logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Target{cfg: cfg, log: cfg.Logger}
	var err error
	if t.engine, err = rotation.New(rotation.Config{
		Store:            cfg.Store,
		Graph:            cfg.Graph,
		AppID:            cfg.AppID,
		TargetName:       cfg.Name,
		Policy:           cfg.Policy,
		RequireSignature: cfg.Provenance.Required(),
		DisplayName:      cfg.Names.Render,
		ManualApproval:   cfg.ManualApproval,
		MaxAttempts:      cfg.MaxAttempts,
		Read:             cfg.Read,
		Retire:           cfg.Retire,
		OnSnapshot:       t.saveSnapshot,
		OnOutcome:        cfg.OnOutcome,
		OnWrite:          cfg.OnWrite,
		Logger:           cfg.Logger,
		Now:              cfg.Now,
	}); err != nil {
		return nil, err
	}
	t.restoreSnapshot()
	ic := cfg.Intake
	ic.Handler, ic.Logger, ic.Now = t, cfg.Logger, cfg.Now
	if t.intake, err = intake.New(ic); err != nil {
		return nil, err
	}
	if src := cfg.Source; src.URL != "" {
		if t.pull, err = pull.New(pull.Config{
			URL: src.URL, Interval: src.Interval, CAFile: src.CAFile, UserAgent: src.UserAgent, Transport: src.Transport,
			Submit: t.submitPulled, Meta: cfg.Store, Key: PullKey(cfg.Name), Logger: cfg.Logger, Now: cfg.Now,
		}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// PullKey is the store's meta key of the fetch state of the target named name.
func PullKey(name string) string { return "pull/" + name }

// Run runs the engine, the drop folder and the periodic read of the app until ctx ends.
func (t *Target) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	parts := []func(context.Context) error{t.engine.Run, t.intake.Run, t.syncLoop}
	if t.pull != nil {
		parts = append(parts, t.pull.Run)
	}
	errc := make(chan error, len(parts))
	for _, f := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// syncLoop reads the app at start and every SyncInterval.
func (t *Target) syncLoop(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.SyncInterval)
	defer tick.Stop()
	for {
		if _, err := t.engine.Sync(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("reading the target app from Graph failed", "app_id", t.cfg.AppID, "err", err)
		} else if err == nil {
			t.engine.RetireDue(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Name returns the target's name.
func (t *Target) Name() string { return t.cfg.Name }

// AppID returns the target's app registration (client) id.
func (t *Target) AppID() string { return t.cfg.AppID }

// Changes returns a number that changes whenever the app's snapshot does (each read of it):
// the API's cached status is made anew when it does.
func (t *Target) Changes() uint64 { return t.engine.Changes() }

// TenantID returns the target's tenant.
func (t *Target) TenantID() string { return t.cfg.TenantID }

// Engine returns the target's rotation engine.
func (t *Target) Engine() *rotation.Engine { return t.engine }

// DropFolder returns the drop folder's path.
func (t *Target) DropFolder() string { return t.intake.Dir() }

// Scan asks the drop folder for a rescan now, and the provider's URL (source.url) for a
// fetch. It returns a *health.UnavailableError while the folder cannot be read.
func (t *Target) Scan(context.Context) error {
	if t.pull != nil {
		t.pull.Fetch()
	}
	if err := t.intake.Ready(); err != nil {
		return err
	}
	t.intake.Scan()
	return nil
}

// Ready returns why the target cannot work now, or nil.
func (t *Target) Ready() error { return t.intake.Ready() }

// Submitted is what became of a submitted certificate.
type Submitted struct {
	// Verdict is the policy's, or the provenance check's when that refused the certificate;
	// a refused certificate has no rotation.
	Verdict certpolicy.Verdict
	// Rotation is the new rotation (Created) or the existing one for the same certificate.
	Rotation rotation.Rotation
	Created  bool
	// Signer is the pinned key that signed the certificate; nil when it came unsigned.
	Signer *provenance.Key
}

// Delivery is a certificate as it reached the agent: a drop file, an API request, a fetch.
type Delivery struct {
	// Data is the certificate file's bytes, exactly as they came.
	Data []byte
	// Signature is the detached signature that came with it (name.cer.sig, the API's
	// signature field, source.url + ".sig"); nil when none came.
	Signature []byte
	// Alt are other forms of Data the signature may be over (an API certificate field that is
	// the base64 of the signed file).
	Alt [][]byte
	// Source says where it came from; Actor who sent it.
	Source rotation.Source
	Actor  string
}

// Submit is the one path from bytes to a rotation, shared by the drop folder, the API and the
// fetch of source.url: the policy and the provenance check first, then the engine (which
// returns the existing rotation for a certificate it has seen). A refused input returns its
// verdict and records nothing here: the caller audits it with what it knows (the file's fate,
// the API caller). Judge says which refusal wins when both refuse.
func (t *Target) Submit(ctx context.Context, d Delivery) (Submitted, error) {
	pr := t.cfg.Provenance.Check(d.Signature, d.Data, d.Alt...)
	v := Judge(t.cfg.Policy.Check(d.Data, t.cfg.Now()), pr)
	if !v.Accepted {
		return Submitted{Verdict: v}, nil
	}
	if pr.Unchecked {
		t.log.Info("a signature came with the certificate, but no provenance key is pinned to check it", "thumbprint", v.Certificate.Thumbprint, "source", d.Source.Kind, "file", d.Source.FileName)
	}
	sub := rotation.Submission{Cert: *v.Certificate, DER: v.DER, Source: d.Source, Actor: d.Actor}
	if pr.Signer != nil {
		sub.Source.SignedBy, sub.Signer = pr.Signer.Fingerprint, pr.Signer.String()
	}
	r, created, err := t.engine.Submit(ctx, sub)
	return Submitted{Verdict: v, Rotation: r, Created: created, Signer: pr.Signer}, err
}

// Judge combines the policy's verdict on a certificate file with the provenance check of its
// signature: the verdict of Submit, and of `certagent inspect`. When both refuse, the
// provenance check's reason is given, unless the input holds a private key or is too large:
// an unsigned file should be told unsigned first, but a private key must be named for what
// it is (the drop folder makes such a file private).
func Judge(v certpolicy.Verdict, pr provenance.Result) certpolicy.Verdict {
	if !v.Accepted && (v.Reason.Code == certs.ContainsPrivateKey || v.Reason.Code == certs.TooLarge) {
		return v
	}
	if pr.Reason != nil {
		v.Accepted, v.Reason = false, pr.Reason
	}
	return v
}

// SubmitAPI submits a certificate posted to the API, with its signature (nil: none), and
// audits a refusal.
func (t *Target) SubmitAPI(ctx context.Context, data, signature []byte, fileName, actor string) (Submitted, error) {
	s, err := t.Submit(ctx, Delivery{Data: data, Signature: signature, Alt: provenance.Decoded(data),
		Source: rotation.Source{Kind: rotation.SourceAPI, FileName: fileName}, Actor: actor})
	if err != nil {
		return s, err
	}
	v := s.Verdict
	if !v.Accepted {
		t.countIntake("rejected", string(v.Reason.Code))
		t.audit(ctx, rotation.AuditEntry{
			Action: rotation.ActionIntakeRejected, Actor: actor, Outcome: rotation.OutcomeRefused,
			File: fileName, Cert: v.Certificate, Code: v.Reason.Code, Message: v.Reason.Message, AppID: t.cfg.AppID,
		})
		return s, nil
	}
	t.countIntake("accepted", "")
	return s, nil
}

// submitPulled submits a certificate fetched from source.url, with its signature (nil when
// none was published), and audits a refusal (actor pull).
func (t *Target) submitPulled(ctx context.Context, cert, sig []byte, from string) (pull.Outcome, error) {
	name := from
	if u, err := url.Parse(from); err == nil {
		name = path.Base(u.Path)
	}
	s, err := t.Submit(ctx, Delivery{Data: cert, Signature: sig,
		Source: rotation.Source{Kind: rotation.SourcePull, URL: from, FileName: name}, Actor: rotation.ActorPull})
	if err != nil {
		return pull.Outcome{}, err
	}
	if v := s.Verdict; !v.Accepted {
		t.countIntake("rejected", string(v.Reason.Code))
		t.audit(ctx, rotation.AuditEntry{
			Action: rotation.ActionIntakeRejected, Actor: rotation.ActorPull, Outcome: rotation.OutcomeRefused,
			File: name, Cert: v.Certificate, Code: v.Reason.Code, Message: "fetched from " + from + ": " + v.Reason.Message, AppID: t.cfg.AppID,
		})
		return pull.Outcome{Reason: v.Reason}, nil
	}
	t.countIntake("accepted", "")
	return pull.Outcome{RotationID: s.Rotation.ID, Created: s.Created}, nil
}

// HandleFile implements intake.Handler: a settled drop-folder file's contents, with its
// signature file's when one came, go through the same policy, provenance check and engine
// as an API submission.
func (t *Target) HandleFile(ctx context.Context, f intake.File) intake.Decision {
	s, err := t.Submit(ctx, Delivery{Data: f.Data, Signature: f.Signature,
		Source: rotation.Source{Kind: rotation.SourceDropFolder, FileName: f.Name}, Actor: rotation.ActorIntake})
	if err != nil {
		// The store could not record it: leave the file where it is and try again later.
		t.log.Error("recording dropped certificate", "file", f.Name, "err", err)
		return intake.Decision{Retry: true}
	}
	if !s.Verdict.Accepted {
		return intake.Decision{Reason: s.Verdict.Reason, Cert: s.Verdict.Certificate}
	}
	return intake.Decision{Accepted: true, RotationID: s.Rotation.ID, Cert: s.Verdict.Certificate}
}

// Filed implements intake.Handler: every file's fate goes to the audit log and the metrics.
func (t *Target) Filed(ctx context.Context, f intake.File, d intake.Decision, archivedAs string) {
	t.filed(ctx, f, d, archivedAs, t.cfg.AppID)
}

// SignatureNote follows the archived name in the message of an intake.filed entry for a
// certificate that came with its signature file: "moved to processed/<name>; with signature
// file <name>.sig" (the signature is filed beside the certificate).
const SignatureNote = "; with signature file "

// filed audits a file's fate; appID is the app it was for ("" when it went to no target).
func (t *Target) filed(ctx context.Context, f intake.File, d intake.Decision, archivedAs, appID string) {
	e := rotation.AuditEntry{
		Action: rotation.ActionIntakeFiled, Actor: rotation.ActorIntake, Outcome: rotation.OutcomeOK,
		RotationID: d.RotationID, File: f.Name, Cert: d.Cert, AppID: appID,
		Message: "moved to processed/" + archivedAs,
	}
	sig := ""
	if f.SignatureName != "" {
		sig = SignatureNote + f.SignatureName
		e.Message += sig
	}
	if d.Accepted {
		t.countIntake("accepted", "")
		if d.RotationID != "" {
			if err := t.engine.Archived(ctx, d.RotationID, archivedAs); err != nil {
				t.log.Warn("recording archived name", "rotation_id", d.RotationID, "err", err)
			}
		}
	} else {
		code := certs.Code("")
		msg := ""
		if d.Reason != nil {
			code, msg = d.Reason.Code, d.Reason.Message
		}
		t.countIntake("rejected", string(code))
		e.Outcome, e.Code = rotation.OutcomeRefused, code
		e.Message = fmt.Sprintf("moved to rejected/%s%s: %s", archivedAs, sig, msg)
	}
	// Queued rather than committed one by one: a flood of thousands of files must not wait
	// on an fsync each. The file itself (and its reason note) is the durable record of its
	// fate; at worst a crash loses the last moments' entries.
	e.At = t.cfg.Now().UTC()
	if err := t.cfg.Store.AppendAsync(ctx, e); err != nil {
		t.log.Error("writing audit entry", "action", e.Action, "err", err)
	}
}

func (t *Target) countIntake(verdict, code string) {
	if t.cfg.OnIntake != nil {
		t.cfg.OnIntake(verdict, code)
	}
}

func (t *Target) audit(ctx context.Context, e rotation.AuditEntry) {
	if e.At.IsZero() {
		e.At = t.cfg.Now().UTC()
	}
	if err := t.cfg.Store.Append(ctx, e); err != nil {
		t.log.Error("writing audit entry", "action", e.Action, "err", err)
	}
}

// Certificates returns the app's certificates from the last read of Graph. With refresh, it
// reads the app first, at most once per RefreshEvery (a *health.TooSoonError otherwise); a
// failed read is a *health.UnavailableError.
func (t *Target) Certificates(ctx context.Context, refresh bool) (apitype.CertificateList, error) {
	if refresh {
		t.refreshMu.Lock()
		wait := RefreshEvery - t.cfg.Now().Sub(t.lastRefresh)
		if wait > 0 {
			t.refreshMu.Unlock()
			return apitype.CertificateList{}, &health.TooSoonError{Wait: wait,
				Detail: fmt.Sprintf("the certificates were refreshed from Graph moments ago; try again in %s", wait.Round(time.Second))}
		}
		t.lastRefresh = t.cfg.Now()
		t.refreshMu.Unlock()
		if _, err := t.engine.Sync(ctx); err != nil {
			reason := rotation.ErrorReason(err)
			return apitype.CertificateList{}, &health.UnavailableError{Err: err, Problem: health.Problem{Code: apitype.CodeUnavailable, Severity: health.Warning,
				Message: fmt.Sprintf("reading the app from Microsoft Graph failed: %s (%s)", reason.Message, reason.Code)}}
		}
	}
	snap := t.engine.Snapshot()
	list := apitype.CertificateList{Items: []apitype.Certificate{}}
	if snap.SyncedAt.IsZero() {
		return list, nil
	}
	at := snap.SyncedAt.UTC()
	list.SyncedAt = &at
	byKey := t.agentKeyIDs(ctx)
	now := t.cfg.Now()
	for _, c := range snap.App.KeyCredentials {
		list.Items = append(list.Items, t.certificate(c, now, byKey))
	}
	slices.SortStableFunc(list.Items, func(a, b apitype.Certificate) int { return a.EndDateTime.Compare(b.EndDateTime) })
	return list, nil
}

// certificate is the API's view of credential c; byKey maps the keyIds the agent wrote to
// their rotation (nil: not known).
func (t *Target) certificate(c certs.KeyCredential, now time.Time, byKey map[string]string) apitype.Certificate {
	rid, mine := byKey[strings.ToLower(c.KeyID)]
	return apitype.Certificate{
		Target:        t.cfg.Name,
		KeyID:         c.KeyID,
		Thumbprint:    c.Thumbprint(),
		DisplayName:   c.DisplayName,
		StartDateTime: c.StartDateTime.UTC(),
		EndDateTime:   c.EndDateTime.UTC(),
		DaysRemaining: certs.DaysBetween(now, c.EndDateTime),
		AddedByAgent:  mine,
		RotationID:    rid,
	}
}

// Holds reports whether the app held a credential with keyID when it was last read.
func (t *Target) Holds(keyID string) bool {
	for _, c := range t.engine.Snapshot().App.KeyCredentials {
		if strings.EqualFold(c.KeyID, keyID) {
			return true
		}
	}
	return false
}

// Retire removes the credential keyID from the app under the retire guards (see
// rotation.Engine.Retire) and returns what was removed; an unknown key is a
// *health.NotFoundError.
func (t *Target) Retire(ctx context.Context, keyID, actor, why string) (apitype.Certificate, error) {
	c, err := t.engine.Retire(ctx, keyID, actor, why)
	if err == nil && c.KeyID == "" {
		return apitype.Certificate{}, &health.NotFoundError{What: fmt.Sprintf("app %s of target %s holds no credential with keyId %s", t.cfg.AppID, t.cfg.Name, keyID)}
	}
	return t.certificate(c, t.cfg.Now(), nil), err
}

// agentKeyIDs maps the keyIds certagent wrote (lower case) to their rotation.
func (t *Target) agentKeyIDs(ctx context.Context) map[string]string {
	rs, err := t.engine.List(ctx, rotation.Filter{})
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, r := range rs {
		if r.KeyID != "" && !r.AlreadyPresent {
			m[strings.ToLower(r.KeyID)] = r.ID
		}
	}
	return m
}

// saveSnapshot keeps the engine's latest read of the app in the store. Key bytes are
// dropped: the thumbprint is all status needs, and the engine re-reads before any write.
func (t *Target) saveSnapshot(s rotation.Snapshot) {
	for i := range s.App.KeyCredentials {
		c := &s.App.KeyCredentials[i]
		if c.CustomKeyIdentifier == nil && len(c.Key) > 0 {
			c.CustomKeyIdentifier = []byte(c.Thumbprint())
		}
		c.Key = nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.log.Error("encoding app snapshot", "err", err)
		return
	}
	if err := t.cfg.Store.PutMeta(context.Background(), SnapshotKey(t.cfg.AppID), b); err != nil {
		t.log.Warn("saving app snapshot", "err", err)
	}
}

// restoreSnapshot gives the engine the last read of its app: from the app's own key, or
// from the key of an agent with one target when it was a read of this app (moved to the app's
// key). A snapshot of another app is never restored: its ledger would be this app's.
func (t *Target) restoreSnapshot() {
	ctx := context.Background()
	s, ok := t.readSnapshot(ctx, SnapshotKey(t.cfg.AppID))
	if !ok {
		if s, ok = t.readSnapshot(ctx, legacySnapshotKey); !ok {
			return
		}
		t.saveSnapshot(s)
		if err := t.cfg.Store.DeleteMeta(ctx, legacySnapshotKey); err != nil {
			t.log.Warn("removing the single-target app snapshot", "err", err)
		}
	}
	t.engine.Restore(s)
}

func (t *Target) readSnapshot(ctx context.Context, key string) (rotation.Snapshot, bool) {
	var s rotation.Snapshot
	b, err := t.cfg.Store.GetMeta(ctx, key)
	if err != nil || len(b) == 0 {
		return s, false
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.log.Warn("ignoring unreadable app snapshot", "key", key, "err", err)
		return s, false
	}
	return s, strings.EqualFold(s.App.AppID, t.cfg.AppID)
}
