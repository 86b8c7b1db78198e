package agent

import (
	"context"
	"time"

	"github.com/aucloud/certagent/agent/expiry"
	"github.com/aucloud/certagent/agent/notify"
)

// buildExpiry builds the expiry warnings (monitor.expiry_thresholds): every target's
// certificates as last read, each naming its target and tenant, checked every
// expiry.DefaultInterval, each warning logged with event=certificate_expiring and recorded
// for the provider's webhook.
func (a *Agent) buildExpiry() error {
	thresholds := make([]time.Duration, 0, len(a.cfg.Monitor.ExpiryThresholds))
	for _, d := range a.cfg.Monitor.ExpiryThresholds {
		thresholds = append(thresholds, d.Duration())
	}
	var err error
	a.expiry, err = expiry.New(expiry.Config{
		Thresholds: thresholds,
		Store:      a.store,
		Certificates: func() []expiry.Cert {
			var out []expiry.Cert
			for _, t := range a.targets {
				for _, c := range t.CertificateExpiries() {
					out = append(out, expiry.Cert{Target: t.Name(), TenantID: t.TenantID(), AppID: t.AppID(),
						KeyID: c.KeyID, Thumbprint: c.Thumbprint, NotAfter: c.NotAfter})
				}
			}
			return out
		},
		Notify: func(ctx context.Context, w expiry.Warning) error {
			return a.notifier.Expiring(ctx, notify.ExpiringData{
				Target: w.Target, TenantID: w.TenantID, AppID: w.AppID, KeyID: w.KeyID, Thumbprint: w.Thumbprint,
				DisplayName: w.DisplayName, NotAfter: w.NotAfter, DaysLeft: w.DaysLeft, ThresholdDays: w.ThresholdDays(),
			})
		},
		Logger: a.log,
		Now:    a.now,
	})
	return err
}
