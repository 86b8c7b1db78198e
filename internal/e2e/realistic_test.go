package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/apitype"
)

// TestDevRealistic: `certagent dev --realistic` (Entra's sign-in propagation and replication
// lag on, seeded) completes a rotation of the sample certificate and a renewal of the
// agent's own credential, as issue [N] asks. Slow by design: the delays are seconds long.
func TestDevRealistic(t *testing.T) {
	t.Parallel()
	d := startDev(t, 2*time.Minute, "--realistic", "--realistic-seed", "7")
	info, c := d.info, d.client
	ctx := context.Background()
	wait(t, 2*time.Minute, "ready (the agent's first key takes seconds to sign in)", func() bool { _, err := c.Ready(ctx); return err == nil })

	sample, err := os.ReadFile(info.SampleCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(info.DropFolder, "sample.cer"), sample, 0o644); err != nil {
		t.Fatal(err)
	}
	wait(t, 2*time.Minute, "the sample applied", func() bool {
		rs, err := c.Rotations(ctx, "applied")
		return err == nil && len(rs) == 1
	})

	before, err := c.Credential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateCredential(ctx); err != nil {
		t.Fatal(err)
	}
	var sawWaiting bool
	wait(t, 3*time.Minute, "the renewed credential in use, the old one removed", func() bool {
		s, err := c.Status(ctx)
		if err != nil {
			return false
		}
		waiting := false
		for _, p := range s.Problems {
			if p.Code == apitype.ProblemCredentialRenewalWaiting {
				waiting, sawWaiting = true, true
			}
			if p.Severity == apitype.SeverityCritical {
				t.Fatalf("critical problem during the renewal: %+v", p)
			}
		}
		cr, err := c.Credential(ctx)
		if err != nil || waiting || cr.Thumbprint == before.Thumbprint {
			return false
		}
		state, err := readEmulatorApp(info)
		return err == nil && strings.Contains(state, cr.Thumbprint) && !strings.Contains(state, before.Thumbprint)
	})
	if !sawWaiting {
		t.Log("the new key signed in at the first try (the seed's delay was short)")
	}
	if !strings.Contains(d.out.String()+d.errb.String(), "seed 7") {
		t.Errorf("the banner does not print the seed, so a run cannot be repeated:\n%s", d.out.String())
	}
}

func wait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
