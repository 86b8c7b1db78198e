package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// actorNotify confirms rotations when the provider's webhook took the notification.
const actorNotify = "notify"

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

// notifyBackoff is the pause before each retry of a failed webhook delivery.
var notifyBackoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

// notifyLoop tells the provider, through notify.webhook_url, about every applied rotation,
// and confirms the rotation once the webhook answered 2xx. At start it picks up applied
// rotations whose notification a stop or crash interrupted. Without a webhook it does
// nothing: a person confirms.
func (a *Agent) notifyLoop(ctx context.Context) error {
	if a.cfg.Notify.WebhookURL == "" {
		return nil
	}
	hc, err := a.notifyClient()
	if err != nil {
		return err
	}
	attempts := map[string]int{}
	next := map[string]time.Time{}
	for {
		rs, err := a.store.List(ctx, rotation.Filter{State: rotation.StateApplied})
		if err != nil && ctx.Err() == nil {
			a.log.Error("listing rotations to notify", "err", err)
		}
		wait := time.Hour
		for _, r := range rs {
			if t, ok := next[r.ID]; ok && a.now().Before(t) {
				wait = min(wait, t.Sub(a.now()))
				continue
			}
			err := a.notify(ctx, hc, r)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				delete(attempts, r.ID)
				delete(next, r.ID)
				if _, err := a.engine.Act(ctx, r.ID, rotation.ActConfirm, actorNotify, "the provider's webhook took the notification"); err != nil {
					a.log.Warn("confirming after notification", "rotation_id", r.ID, "err", err)
				}
				continue
			}
			n := attempts[r.ID]
			attempts[r.ID] = n + 1
			d := notifyBackoff[min(n, len(notifyBackoff)-1)]
			next[r.ID] = a.now().Add(d)
			wait = min(wait, d)
			a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: actorNotify, Outcome: rotation.OutcomeError, RotationID: r.ID,
				Message: fmt.Sprintf("notifying the provider failed (attempt %d, next in %s): %v", n+1, d, err)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.notifyWake:
		case <-time.After(wait):
		}
	}
}

// notifyClient trusts the system's CAs plus cloud.ca_file's (a TLS-inspecting proxy
// re-signs the webhook's traffic as it does Graph's).
func (a *Agent) notifyClient() (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if a.cfg.Cloud.CAFile != "" {
		pem, err := os.ReadFile(a.cfg.Cloud.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading cloud.ca_file: %w", err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: a.cfg.Notify.Timeout.Duration(), Transport: tr}, nil
}

// notify posts one notification.
func (a *Agent) notify(ctx context.Context, hc *http.Client, r rotation.Rotation) error {
	appliedAt := r.UpdatedAt
	for _, h := range r.History {
		if h.State == rotation.StateApplied {
			appliedAt = h.At
		}
	}
	body, err := json.Marshal(notification{
		Event: "certificate.applied", RotationID: r.ID, TenantID: a.cfg.TenantID, AppID: r.Target.AppID,
		KeyID: r.KeyID, AlreadyPresent: r.AlreadyPresent, Certificate: r.Certificate, AppliedAt: appliedAt.UTC(),
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.Notify.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certagent/"+a.version)
	for k, v := range a.cfg.Notify.Headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	a.audit(ctx, rotation.AuditEntry{Action: rotation.ActionNotify, Actor: actorNotify, Outcome: rotation.OutcomeOK, RotationID: r.ID,
		Cert: &r.Certificate, Message: fmt.Sprintf("told the provider (%s answered %d)", req.URL.Host, resp.StatusCode)})
	return nil
}
