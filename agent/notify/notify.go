// Package notify tells the backup provider, through its webhook, that a certificate is on the
// app registration, and confirms the rotation once the webhook took the notification.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// notification is the JSON a provider's webhook receives when a certificate is on the app.
type notification struct {
	Event          string            `json:"event"` // "certificate.applied"
	RotationID     string            `json:"rotationId"`
	TenantID       string            `json:"tenantId"`
	AppID          string            `json:"appId"`
	KeyID          string            `json:"keyId"`
	AlreadyPresent bool              `json:"alreadyPresent"`
	Certificate    certs.Certificate `json:"certificate"`
	AppliedAt      time.Time         `json:"appliedAt"`
}

// Backoff is the pause before each retry of a failed webhook delivery (the last repeats).
// Tests shorten it.
var Backoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

// Rotations is what the notifier needs of the rotations: the applied ones, and a way to
// confirm one.
type Rotations interface {
	List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error)
	Execute(ctx context.Context, id string, cmd rotation.Command, actor, note string) (rotation.Rotation, error)
}

// Config holds the notifier's settings and dependencies. URL "" turns it off.
type Config struct {
	// URL is the provider's webhook; "" means a person confirms instead.
	URL string
	// Headers are added to every request (an API key the provider gave, say).
	Headers map[string]string
	// Timeout bounds one delivery.
	Timeout time.Duration
	// ExtraCAs is a PEM bundle of CA certificates trusted besides the system's (the
	// cloud.ca_file: a TLS-inspecting proxy re-signs the webhook's traffic as it does
	// Graph's); may be nil.
	ExtraCAs []byte
	// TenantID goes into every notification.
	TenantID string
	// UserAgent is sent with every request.
	UserAgent string
	// Rotations lists applied rotations and confirms them. Required.
	Rotations Rotations
	// Audit records each delivery. Required.
	Audit func(ctx context.Context, e rotation.AuditEntry)
	// Logger. Required.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Notifier delivers notifications. Create it with New, run it with Run, and Wake it when a
// rotation reaches applied.
type Notifier struct {
	cfg  Config
	log  *slog.Logger
	hc   *http.Client
	wake chan struct{}
}

// New checks cfg and returns a notifier.
func New(cfg Config) (*Notifier, error) {
	switch {
	case cfg.Rotations == nil || cfg.Audit == nil || cfg.Logger == nil:
		return nil, errors.New("notify: Config.Rotations, Audit and Logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(cfg.ExtraCAs)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &Notifier{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "notify"),
		hc:   &http.Client{Timeout: cfg.Timeout, Transport: tr},
		wake: make(chan struct{}, 1),
	}, nil
}

// Wake tells the notifier that a rotation was applied. It never blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run tells the provider about every applied rotation, and confirms the rotation once the
// webhook answered 2xx, until ctx ends. At start it picks up applied rotations whose
// notification a stop or crash interrupted. Without a URL it returns at once: a person
// confirms.
func (n *Notifier) Run(ctx context.Context) error {
	if n.cfg.URL == "" {
		return nil
	}
	attempts := map[string]int{}
	next := map[string]time.Time{}
	for {
		rs, err := n.cfg.Rotations.List(ctx, rotation.Filter{State: rotation.StateApplied})
		if err != nil && ctx.Err() == nil {
			n.log.Error("listing rotations to notify", "err", err)
		}
		wait := time.Hour
		for _, r := range rs {
			now := n.cfg.Now()
			if t, ok := next[r.ID]; ok && now.Before(t) {
				wait = min(wait, t.Sub(now))
				continue
			}
			err := n.deliver(ctx, r)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				delete(attempts, r.ID)
				delete(next, r.ID)
				if _, err := n.cfg.Rotations.Execute(ctx, r.ID, rotation.CommandConfirm, rotation.ActorNotify, "the provider's webhook took the notification"); err != nil {
					n.log.Warn("confirming after notification", "rotation_id", r.ID, "err", err)
				}
				continue
			}
			k := attempts[r.ID]
			attempts[r.ID] = k + 1
			d := Backoff[min(k, len(Backoff)-1)]
			next[r.ID] = n.cfg.Now().Add(d)
			wait = min(wait, d)
			n.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: rotation.ActorNotify, Outcome: rotation.OutcomeError, RotationID: r.ID,
				Message: fmt.Sprintf("notifying the provider failed (attempt %d, next in %s): %v", k+1, d, err)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.wake:
		case <-time.After(wait):
		}
	}
}

// deliver posts one notification.
func (n *Notifier) deliver(ctx context.Context, r rotation.Rotation) error {
	appliedAt := r.UpdatedAt
	for _, h := range r.History {
		if h.State == rotation.StateApplied {
			appliedAt = h.At
		}
	}
	body, err := json.Marshal(notification{
		Event: "certificate.applied", RotationID: r.ID, TenantID: n.cfg.TenantID, AppID: r.Target.AppID,
		KeyID: r.KeyID, AlreadyPresent: r.AlreadyPresent, Certificate: r.Certificate, AppliedAt: appliedAt.UTC(),
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.cfg.UserAgent)
	for k, v := range n.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	n.cfg.Audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: rotation.ActorNotify, Outcome: rotation.OutcomeOK, RotationID: r.ID,
		Cert: &r.Certificate, Message: fmt.Sprintf("told the provider (%s answered %d)", req.URL.Host, resp.StatusCode)})
	return nil
}
