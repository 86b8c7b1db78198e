// Package expiry warns, once per threshold, that the newest certificate on a target app is
// about to expire: a pure decision (Decide: certificates, now, thresholds and what already
// fired → the warnings to give) and a Checker that keeps what fired in the store, so that a
// restart does not warn again, and hands each warning to the log (a record with
// event=certificate_expiring, which the log routing sends to the Event Log or journal) and
// to the provider's webhook.
package expiry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/store"
)

// Day is the unit of thresholds.
const Day = 24 * time.Hour

// DefaultThresholds are monitor.expiry_thresholds' default: 30, 14, 7 and 1 days.
var DefaultThresholds = []time.Duration{30 * Day, 14 * Day, 7 * Day, 1 * Day}

// LogEvent is the value of the log record's "event" attribute: the log routing gives it a
// stable Event Log / journal id.
const LogEvent = "certificate_expiring"

// Cert is one certificate credential on a target app, as last read from Graph.
type Cert struct {
	// Target is the target's name ("" while the config has one unnamed target).
	Target   string
	TenantID string
	AppID    string
	KeyID    string
	// Thumbprint is the SHA-1 thumbprint, upper-case hex ("" when Graph did not tell).
	Thumbprint  string
	DisplayName string
	NotAfter    time.Time
}

// Key identifies c's fired state: its app and thumbprint (its keyId without one).
func (c Cert) Key() string {
	id := certs.NormalizeThumbprint(c.Thumbprint)
	if id == "" {
		id = "key-" + strings.ToLower(c.KeyID)
	}
	return c.AppID + "/" + id
}

// Warning is one threshold crossed by one certificate.
type Warning struct {
	Cert
	// Threshold is the threshold crossed (whole days).
	Threshold time.Duration
	// DaysLeft is the whole days from the check to NotAfter (certs.DaysBetween).
	DaysLeft int
}

// ThresholdDays is w.Threshold in days.
func (w Warning) ThresholdDays() int { return int(w.Threshold / Day) }

// Fired is what already fired, by Cert.Key.
type Fired map[string]FiredCert

// FiredCert is the thresholds that fired for one certificate. Stored as JSON: the field
// names are on disk.
type FiredCert struct {
	AppID    string    `json:"appId"`
	NotAfter time.Time `json:"notAfter"`
	// Days are the thresholds fired (or passed over), in days, largest first.
	Days []int `json:"days"`
}

func (f FiredCert) has(days int) bool { return slices.Contains(f.Days, days) }

// Decide returns the warnings to give at now, and what has fired after them. Only the newest
// certificate of each app (the latest NotAfter) is judged: an older one expiring while its
// successor is on the app is the normal end of a rotation. A certificate left with less
// than a threshold crosses it; it warns once, with the smallest threshold crossed, and every
// larger one counts as fired with it (an agent that first sees a certificate 5 days before
// it expires warns "7 days" once, not 30, 14 and 7 at once). An expired certificate gives no
// warning (status shows certificate_expired). next keeps the state of every certificate in
// certs, and drops the state of the certificates of those apps that are gone; the state of
// apps absent from certs is kept as it was.
func Decide(now time.Time, list []Cert, thresholds []time.Duration, fired Fired) (warnings []Warning, next Fired) {
	next = Fired{}
	apps := map[string]bool{}
	newest := map[string]Cert{}
	for _, c := range list {
		apps[c.AppID] = true
		if n, ok := newest[c.AppID]; !ok || c.NotAfter.After(n.NotAfter) {
			newest[c.AppID] = c
		}
		if f, ok := fired[c.Key()]; ok {
			next[c.Key()] = f
		}
	}
	for k, f := range fired {
		if !apps[f.AppID] {
			next[k] = f
		}
	}
	days := thresholdDays(thresholds)
	for _, app := range slices.Sorted(maps.Keys(newest)) {
		c := newest[app]
		left := c.NotAfter.Sub(now)
		if left <= 0 {
			continue
		}
		var crossed []int
		for _, d := range days {
			if left <= time.Duration(d)*Day {
				crossed = append(crossed, d)
			}
		}
		if len(crossed) == 0 {
			continue
		}
		f := next[c.Key()]
		f.Days = slices.Clone(f.Days)
		f.AppID, f.NotAfter = c.AppID, c.NotAfter.UTC()
		smallest := crossed[len(crossed)-1]
		if !f.has(smallest) {
			warnings = append(warnings, Warning{Cert: c, Threshold: time.Duration(smallest) * Day, DaysLeft: certs.DaysBetween(now, c.NotAfter)})
		}
		for _, d := range crossed {
			if !f.has(d) {
				f.Days = append(f.Days, d)
			}
		}
		slices.SortFunc(f.Days, func(a, b int) int { return b - a })
		next[c.Key()] = f
	}
	return warnings, next
}

// thresholdDays returns the thresholds as whole days, distinct, largest first; anything
// under a day is dropped (config validation refuses it).
func thresholdDays(ts []time.Duration) []int {
	var out []int
	for _, t := range ts {
		if d := int(t / Day); d > 0 && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b int) int { return b - a })
	return out
}

// Store is what the checker needs of the agent's store: its meta area.
type Store interface {
	ListMeta(ctx context.Context, prefix string) ([]store.MetaEntry, error)
	PutMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
}

// firedPrefix is the meta key prefix of the fired state: one key per certificate,
// firedPrefix + Cert.Key(). Part of the store's content: it never changes.
const firedPrefix = "expiry-fired/"

// DefaultInterval is how often Run checks when nothing wakes it.
const DefaultInterval = 10 * time.Minute

// Config holds the checker's settings and dependencies.
type Config struct {
	// Thresholds are the days before expiry that warn (monitor.expiry_thresholds). nil
	// means DefaultThresholds; an empty, non-nil list turns warnings off.
	Thresholds []time.Duration
	// Store keeps what fired. Required.
	Store Store
	// Certificates returns every target app's certificates as last read (Run calls it).
	// Required for Run.
	Certificates func() []Cert
	// Notify, if set, records a warning for the provider's webhook (notify.Notifier's
	// Expiring, adapted). It is called before the warning counts as fired: an error leaves
	// it to the next check.
	Notify func(ctx context.Context, w Warning) error
	// Interval is how often Run checks unwoken (default DefaultInterval).
	Interval time.Duration
	// Logger receives the warnings. Required.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Checker gives each warning once. Its methods are safe for concurrent use; checks run one
// at a time.
type Checker struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex // serialises Check
	wake chan struct{}
}

// New checks cfg and returns a checker.
func New(cfg Config) (*Checker, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("expiry: Config.Store and Logger are required")
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Checker{cfg: cfg, log: cfg.Logger.With("component", "expiry"), wake: make(chan struct{}, 1)}, nil
}

// Wake asks Run to check now (after a read of an app, say). It never blocks.
func (c *Checker) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run checks Config.Certificates every Config.Interval, and when woken, until ctx ends.
// Failures are logged and retried at the next check.
func (c *Checker) Run(ctx context.Context) error {
	if c.cfg.Certificates == nil {
		return errors.New("expiry: Config.Certificates is required for Run")
	}
	for {
		if _, err := c.Check(ctx, c.cfg.Certificates()); err != nil && ctx.Err() == nil {
			c.log.Error("checking certificate expiry", "err", err)
		}
		t := time.NewTimer(c.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Check gives the warnings due for list at the checker's now, once each: for each, it calls
// Notify, logs the record (level warn, event=certificate_expiring, target, app_id,
// thumbprint, key_id, days_left, threshold_days, not_after), then stores that it fired. A
// crash before the store write gives the warning again at the next start (the webhook
// event keeps its id; the log record repeats): at least once, never lost. It returns the
// warnings given.
func (c *Checker) Check(ctx context.Context, list []Cert) ([]Warning, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	kvs, err := c.cfg.Store.ListMeta(ctx, firedPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading the expiry warnings given: %w", err)
	}
	fired := Fired{}
	for _, kv := range kvs {
		var f FiredCert
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			c.log.Error("skipping an expiry state entry that does not decode", "key", kv.Key, "err", err)
			continue
		}
		fired[strings.TrimPrefix(kv.Key, firedPrefix)] = f
	}
	warnings, next := Decide(now, list, c.cfg.Thresholds, fired)
	var given []Warning
	var errs []error
	for _, w := range warnings {
		if c.cfg.Notify != nil {
			if err := c.cfg.Notify(ctx, w); err != nil {
				// Not fired: the next check tries again.
				errs = append(errs, fmt.Errorf("recording the expiry warning of %s for the webhook: %w", w.Key(), err))
				if old, ok := fired[w.Key()]; ok {
					next[w.Key()] = old
				} else {
					delete(next, w.Key())
				}
				continue
			}
		}
		target := w.Target
		if target == "" {
			target = w.AppID
		}
		c.log.Warn("certificate expiring",
			"event", LogEvent, "target", target, "app_id", w.AppID, "thumbprint", w.Thumbprint, "key_id", w.KeyID,
			"days_left", w.DaysLeft, "threshold_days", w.ThresholdDays(), "not_after", w.NotAfter.UTC().Format(time.RFC3339))
		given = append(given, w)
	}
	for k, f := range next {
		if old, ok := fired[k]; ok && slices.Equal(old.Days, f.Days) && old.NotAfter.Equal(f.NotAfter) {
			continue
		}
		b, err := json.Marshal(f)
		if err == nil {
			err = c.cfg.Store.PutMeta(ctx, firedPrefix+k, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("storing the expiry warnings given for %s: %w", k, err))
		}
	}
	for k := range fired {
		if _, ok := next[k]; !ok {
			if err := c.cfg.Store.DeleteMeta(ctx, firedPrefix+k); err != nil {
				errs = append(errs, fmt.Errorf("forgetting the expiry warnings of %s: %w", k, err))
			}
		}
	}
	return given, errors.Join(errs...)
}
