package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
)

// Backoff is the pause before each retry of one event (the last repeats; each is jittered
// by ±10%). It follows the example schedule of the Standard Webhooks spec, spanning days:
// the outbox keeps an event until the webhook takes it. Tests shorten it.
var Backoff = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// maxRetryAfter caps how long a Retry-After header can hold an event back.
const maxRetryAfter = 24 * time.Hour

// DefaultRescan is how often Run looks for applied and failed rotations when nothing woke
// it (Config.Rescan).
const DefaultRescan = time.Minute

// FailingAfter is how long an event may stay undelivered after its first failed attempt
// before status shows webhook_failing.
const FailingAfter = 15 * time.Minute

// Rotations is what the notifier needs of the rotations: all of them, and a way to confirm
// one.
type Rotations interface {
	// List returns the rotations that match f.
	List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error)
	// Execute runs cmd on rotation id; an error wrapping rotation.ErrInvalidState or
	// rotation.ErrNotFound means it does not apply (any more).
	Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error)
}

// Config holds the notifier's settings and dependencies. URL "" turns it off.
type Config struct {
	// URL is the provider's webhook; "" means a person confirms instead, and nothing is
	// recorded or sent.
	URL string
	// Headers are added to every request (an API key the provider gave, say); they cannot
	// replace the webhook-* headers or Content-Type.
	Headers map[string]string
	// Timeout bounds one delivery.
	Timeout time.Duration
	// ExtraCAs is a PEM bundle of CA certificates trusted besides the system's (the
	// cloud.ca_file: a TLS-inspecting proxy re-signs the webhook's traffic as it does
	// Graph's); may be nil.
	ExtraCAs []byte
	// SecretFile holds the signing secret(s) (notify.secret_file; see ParseSecrets). ""
	// sends unsigned deliveries, which New logs as a warning and Problems reports.
	SecretFile string
	// TenantID goes into every event whose target TargetOf does not name.
	TenantID string
	// TargetOf names the target of a rotation's events; nil means no name, TenantID and
	// the rotation's app.
	TargetOf func(rotation.Rotation) Target
	// UserAgent is sent with every request.
	UserAgent string
	// Rotations lists rotations and confirms applied ones. Required.
	Rotations Rotations
	// Store keeps the outbox. Required.
	Store Store
	// Audit records each delivery and each failed attempt. Required.
	Audit func(ctx context.Context, e rotation.AuditEntry)
	// Logger. Required.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rescan is how often Run looks for applied and failed rotations unwoken (default
	// DefaultRescan).
	Rescan time.Duration
	// Transport, if set, carries the requests instead of an HTTPS transport trusting
	// ExtraCAs (tests).
	Transport http.RoundTripper
}

// Notifier delivers events. Create it with New, run it with Run, and call RotationChanged
// (or Wake) when a rotation reaches applied or failed, and Expiring for an expiry warning.
// Its methods are safe for concurrent use.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	hc     *http.Client
	signer *Signer
	wake   chan struct{}

	// mu guards box, tries and gone. Run is the only goroutine that delivers; Expiring adds
	// to box from others.
	mu    sync.Mutex
	box   outbox
	tries map[string]*tries // by event id, in memory: a restart tries again at once
	gone  string            // why deliveries stopped (the webhook answered 410 Gone); "" while they go on
}

// tries is the delivery history of one event since the agent started.
type tries struct {
	n     int
	first time.Time // first failed attempt
	next  time.Time // next attempt not before
	last  string    // last failure
}

// New checks cfg, reads the signing secret, and returns a notifier.
func New(cfg Config) (*Notifier, error) {
	if cfg.Rotations == nil || cfg.Store == nil || cfg.Audit == nil || cfg.Logger == nil {
		return nil, errors.New("notify: Config.Rotations, Store, Audit and Logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = DefaultRescan
	}
	n := &Notifier{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "notify"),
		wake:  make(chan struct{}, 1),
		tries: map[string]*tries{},
	}
	n.box = outbox{st: cfg.Store, log: n.log}
	if cfg.SecretFile != "" {
		s, err := ReadSecretFile(cfg.SecretFile, n.log)
		if err != nil {
			return nil, err
		}
		n.signer = s
	}
	tr := cfg.Transport
	if tr == nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(cfg.ExtraCAs)
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr = t
	}
	n.hc = &http.Client{
		Timeout:   cfg.Timeout,
		Transport: tr,
		// Standard Webhooks: a 3xx is a failure; the URL should be updated instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return n, nil
}

// Wake tells the notifier to look at the rotations now. It never blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// RotationChanged tells the notifier that r changed state; it matches the rotation engine's
// OnOutcome hook (applied, failed, rejected). It never blocks: Run records the event. Without
// the call, Run still finds applied and failed rotations within Config.Rescan.
func (n *Notifier) RotationChanged(rotation.Rotation) { n.Wake() }

// Expiring records a certificate.expiring event in the outbox, durably, and wakes Run to
// deliver it. Recording the same warning again (same app, certificate and threshold) while
// it waits keeps one. Without a URL it does nothing.
func (n *Notifier) Expiring(ctx context.Context, d ExpiringData) error {
	if n.cfg.URL == "" {
		return nil
	}
	ev, err := ExpiringEvent(d, n.cfg.Now())
	if err != nil {
		return err
	}
	if _, err := n.record(ctx, ev); err != nil {
		return err
	}
	n.Wake()
	return nil
}

// Run delivers events until ctx ends: it records an event for each applied or failed
// rotation that has none, posts what is due in the order recorded, confirms a rotation once
// the webhook took its certificate.applied event, and drops what is done. At start it picks
// up what a stop or crash left in the outbox. Without a URL it returns at once: a person
// confirms.
func (n *Notifier) Run(ctx context.Context) error {
	if n.cfg.URL == "" {
		return nil
	}
	if n.signer == nil {
		n.log.Warn("webhook deliveries are not signed: the provider cannot tell them from forged ones; set notify.secret_file to the secret the provider gave", "url", redactURL(n.cfg.URL))
	} else {
		n.log.Info("webhook deliveries signed (Standard Webhooks)", "url", redactURL(n.cfg.URL), "secret", n.signer)
	}
	for {
		wait := n.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-n.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// cycle runs one pass and returns how long to wait before the next.
func (n *Notifier) cycle(ctx context.Context) time.Duration {
	n.mu.Lock()
	err := n.box.load(ctx)
	n.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("reading the notification outbox", "err", err)
		}
		return n.cfg.Rescan
	}
	n.scan(ctx)
	n.settle(ctx)
	return n.deliverDue(ctx)
}

// target names r's target.
func (n *Notifier) target(r rotation.Rotation) Target {
	if n.cfg.TargetOf != nil {
		return n.cfg.TargetOf(r)
	}
	return Target{TenantID: n.cfg.TenantID, AppID: r.Target.AppID}
}

// record adds ev to the outbox unless it is there.
func (n *Notifier) record(ctx context.Context, ev Event) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.box.load(ctx); err != nil {
		return false, err
	}
	added, err := n.box.add(ctx, ev)
	if added {
		n.log.Debug("notification recorded", "event", ev.Type, "webhook_id", ev.ID, "rotation_id", ev.RotationID)
	}
	return added, err
}

// scan records the event of every applied and failed rotation that has none.
func (n *Notifier) scan(ctx context.Context) {
	rs, err := n.cfg.Rotations.List(ctx, rotation.Filter{})
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("listing rotations to notify", "err", err)
		}
		return
	}
	for _, r := range rs {
		var ev Event
		switch r.State {
		case rotation.StateApplied:
			ev, err = AppliedEvent(r, n.target(r))
		case rotation.StateFailed:
			ev, err = FailedEvent(r, n.target(r))
		default:
			continue
		}
		if err == nil {
			_, err = n.record(ctx, ev)
		}
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error("recording a notification", "rotation_id", r.ID, "event", ev.Type, "err", err)
			}
			return
		}
	}
	n.mu.Lock()
	delivered := n.deliveredLocked()
	n.mu.Unlock()
	// A delivered rotation.failed stays while its rotation is failed with that failure, so
	// that the scan does not tell it again; then it goes.
	byID := map[string]rotation.Rotation{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	for _, e := range delivered {
		if e.Type != TypeRotationFailed {
			continue
		}
		r, ok := byID[e.RotationID]
		if ok && r.State == rotation.StateFailed {
			if ev, err := FailedEvent(r, n.target(r)); err == nil && ev.ID == e.ID {
				continue
			}
		}
		n.drop(ctx, e)
	}
}

// deliveredLocked returns the delivered entries. n.mu is held.
func (n *Notifier) deliveredLocked() []*entry {
	var out []*entry
	for _, e := range n.box.entries {
		if e.Delivered != nil {
			out = append(out, e)
		}
	}
	return out
}

// settle finishes what delivered events leave to do: confirm the rotation of a delivered
// certificate.applied (a crash may have come between delivery and confirmation), drop a
// delivered certificate.expiring.
func (n *Notifier) settle(ctx context.Context) {
	n.mu.Lock()
	delivered := n.deliveredLocked()
	n.mu.Unlock()
	for _, e := range delivered {
		if ctx.Err() != nil {
			return
		}
		n.afterDelivery(ctx, e)
	}
}

// afterDelivery does what follows the delivery of e.
func (n *Notifier) afterDelivery(ctx context.Context, e *entry) {
	switch e.Type {
	case TypeCertificateApplied:
		_, err := n.cfg.Rotations.Execute(ctx, e.RotationID, rotation.CommandConfirm, rotation.ActorNotify, "the provider's webhook took the notification")
		switch {
		case err == nil, errors.Is(err, rotation.ErrInvalidState), errors.Is(err, rotation.ErrNotFound):
			// Confirmed now, or by a person before, or gone: nothing left to do.
			n.drop(ctx, e)
		case ctx.Err() == nil:
			n.log.Warn("confirming after notification; will try again", "rotation_id", e.RotationID, "err", err)
		}
	case TypeRotationFailed:
		// Kept until the rotation leaves this failure (scan).
	default:
		n.drop(ctx, e)
	}
}

// drop removes e from the outbox, logging a failure (the next pass tries again).
func (n *Notifier) drop(ctx context.Context, e *entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.box.remove(ctx, e); err != nil && ctx.Err() == nil {
		n.log.Error("removing a delivered notification", "webhook_id", e.ID, "err", err)
	}
	delete(n.tries, e.ID)
}

// deliverDue posts every event that is due, oldest first; an event waits while an earlier
// one of the same rotation (or certificate) is undelivered. It returns how long until the
// next is due.
func (n *Notifier) deliverDue(ctx context.Context) time.Duration {
	n.mu.Lock()
	pending := make([]*entry, 0, len(n.box.entries))
	for _, e := range n.box.entries {
		if e.Delivered == nil {
			pending = append(pending, e)
		}
	}
	gone := n.gone
	n.mu.Unlock()
	wait := n.cfg.Rescan
	if gone != "" {
		return wait
	}
	blocked := map[string]bool{}
	for _, e := range pending {
		if blocked[e.Order] {
			continue
		}
		blocked[e.Order] = true // until this one is delivered
		now := n.cfg.Now()
		n.mu.Lock()
		t := n.tries[e.ID]
		n.mu.Unlock()
		if t != nil && now.Before(t.next) {
			wait = min(wait, t.next.Sub(now))
			continue
		}
		res := n.post(ctx, e)
		if ctx.Err() != nil {
			return 0
		}
		if res.err == nil {
			n.delivered(ctx, e, res)
			n.mu.Lock()
			ok := e.Delivered != nil
			n.mu.Unlock()
			if ok {
				blocked[e.Order] = false
				n.afterDelivery(ctx, e)
			}
			continue
		}
		if res.gone {
			n.stop(ctx, e, res)
			return wait
		}
		wait = min(wait, n.failed(ctx, e, res))
	}
	return wait
}

// delivered records that the webhook took e.
func (n *Notifier) delivered(ctx context.Context, e *entry, res result) {
	n.mu.Lock()
	err := n.box.markDelivered(ctx, e, n.cfg.Now())
	delete(n.tries, e.ID)
	n.mu.Unlock()
	if err != nil {
		// Delivered again later, with the same webhook-id: the receiver drops the duplicate.
		n.log.Error("recording a delivery", "webhook_id", e.ID, "err", err)
	}
	n.log.Info("notified the provider", "event", e.Type, "webhook_id", e.ID, "rotation_id", e.RotationID, "status", res.status)
	n.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: rotation.ActorNotify, Outcome: rotation.OutcomeOK, RotationID: e.RotationID,
		Message: fmt.Sprintf("told the provider %s (webhook-id %s; %s answered %d)", e.Type, e.ID, res.host, res.status)})
}

// failed schedules e's next attempt and returns the pause.
func (n *Notifier) failed(ctx context.Context, e *entry, res result) time.Duration {
	now := n.cfg.Now()
	n.mu.Lock()
	t := n.tries[e.ID]
	if t == nil {
		t = &tries{first: now}
		n.tries[e.ID] = t
	}
	d := jitter(Backoff[min(t.n, len(Backoff)-1)])
	if res.retryAfter > d {
		d = min(res.retryAfter, maxRetryAfter)
	}
	t.n++
	t.next = now.Add(d)
	t.last = res.err.Error()
	k := t.n
	n.mu.Unlock()
	n.log.Warn("notifying the provider failed", "event", e.Type, "webhook_id", e.ID, "rotation_id", e.RotationID, "attempt", k, "next_in", d.Round(time.Second).String(), "err", res.err)
	n.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: rotation.ActorNotify, Outcome: rotation.OutcomeError, RotationID: e.RotationID,
		Message: fmt.Sprintf("notifying the provider of %s failed (webhook-id %s, attempt %d, next in %s): %v", e.Type, e.ID, k, d.Round(time.Second), res.err)})
	return d
}

// stop stops deliveries after the webhook answered 410 Gone.
func (n *Notifier) stop(ctx context.Context, e *entry, res result) {
	msg := fmt.Sprintf("the provider's webhook (%s) answered 410 Gone: it takes no more notifications from this agent; deliveries stopped until the agent restarts; fix notify.webhook_url with the provider, then restart", res.host)
	n.mu.Lock()
	n.gone = msg
	n.mu.Unlock()
	n.log.Error("webhook gone; deliveries stopped", "webhook_id", e.ID, "host", res.host)
	n.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: rotation.ActorNotify, Outcome: rotation.OutcomeError, RotationID: e.RotationID, Message: msg})
}

// result is how one attempt ended.
type result struct {
	err        error
	status     int
	host       string
	retryAfter time.Duration
	gone       bool
}

// post makes one attempt at delivering e.
func (n *Notifier) post(ctx context.Context, e *entry) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(e.Body))
	if err != nil {
		return result{err: err}
	}
	res := result{host: req.URL.Host}
	for k, v := range n.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.cfg.UserAgent)
	setAttemptHeaders(req.Header, n.signer, e.ID, n.cfg.Now(), e.Body)
	resp, err := n.hc.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.status = resp.StatusCode
	switch {
	case resp.StatusCode/100 == 2:
	case resp.StatusCode == http.StatusGone:
		res.err, res.gone = fmt.Errorf("the webhook answered %s", resp.Status), true
	case resp.StatusCode/100 == 3:
		res.err = fmt.Errorf("the webhook answered %s (to %s); redirects are not followed: set notify.webhook_url to the new address", resp.Status, resp.Header.Get("Location"))
	default:
		res.err = fmt.Errorf("the webhook answered %s", resp.Status)
		res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), n.cfg.Now())
	}
	return res
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. 0 when absent or bad.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*mathrand.Float64()))
}

// redactURL is u without its query (which may carry a key).
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.RawQuery, p.Fragment, p.User = "", "", nil
	return p.String()
}

// Pending returns how many events wait for delivery (for status and tests).
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, e := range n.box.entries {
		if e.Delivered == nil {
			k++
		}
	}
	return k
}

// Problems lists what a person should know about the notifications at now: deliveries that
// are not signed (info), that keep failing (warning), or that stopped because the webhook
// is gone (critical). None without a URL.
func (n *Notifier) Problems(now time.Time) []health.Problem {
	if n.cfg.URL == "" {
		return nil
	}
	var ps []health.Problem
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gone != "" {
		ps = append(ps, health.Problem{Code: health.WebhookFailing, Severity: health.Critical, Message: n.gone})
	} else {
		var oldest *tries
		count := 0
		for _, t := range n.tries {
			if now.Sub(t.first) < FailingAfter {
				continue
			}
			count++
			if oldest == nil || t.first.Before(oldest.first) {
				oldest = t
			}
		}
		if oldest != nil {
			ps = append(ps, health.Problem{Code: health.WebhookFailing, Severity: health.Warning, Message: fmt.Sprintf(
				"%d notification(s) to the provider's webhook (%s) failing since %s (last: %s); the agent keeps retrying, next at %s; check notify.webhook_url and the provider's side",
				count, redactURL(n.cfg.URL), oldest.first.UTC().Format(time.RFC3339), oldest.last, oldest.next.UTC().Format(time.RFC3339))})
		}
	}
	if n.signer == nil {
		ps = append(ps, health.Problem{Code: health.WebhookUnsigned, Severity: health.Info,
			Message: "notifications to the provider's webhook are not signed, so the provider cannot tell them from forged ones: put the secret the provider gave in a private file and set notify.secret_file"})
	}
	return ps
}
