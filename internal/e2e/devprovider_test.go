package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDevProvider runs `certagent dev --provider` and watches a year with nobody in it: the
// provider publishes a signed certificate, the agent fetches, applies and proves it, and the
// provider's webhook receiver confirms it, as the command tells. Then "next year": the
// provider publishes again (its control route) and, after POST /api/v1/scan, the same story
// happens again without any other step.
func TestDevProvider(t *testing.T) {
	d := startDev(t, 90*time.Second, "--provider")
	out, errb, cmd, exited, info, c := &d.out, &d.errb, d.cmd, d.exited, d.info, d.client

	story := []string{
		"the provider published CN=AUCloud VB365",
		"the agent fetched it by itself (source pull, next.cer): the signature is by pinned key provider-signing.pub (ECDSA P-256, SHA256:",
		"applied to app ",
		"the provider's webhook receiver verified the signed certificate.applied",
		"it tells of the certificate it published",
		"confirmed by notify: the provider was told; nobody touched anything",
	}
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), story[len(story)-1]) {
		if time.Now().After(deadline) {
			t.Fatalf("the year was not told within 90s\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	printed := out.String()
	at := 0
	for _, line := range story {
		i := strings.Index(printed[at:], line)
		if i < 0 {
			t.Fatalf("the story lacks, in its order, %q:\n%s", line, printed)
		}
		at += i
	}
	t.Logf("certagent dev --provider:\n%s", printed)

	if info.ProviderPublishURL == "" || info.ProviderCertificateURL == "" {
		t.Fatalf("dev.json lacks the provider's URLs: %+v", info)
	}
	ctx := context.Background()

	// Next year: the provider publishes; the agent is asked to look now rather than in a
	// minute; nothing else.
	pool, err := caPool(info.EmulatorCAFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpsClient(pool).Post(info.ProviderPublishURL, "application/json", strings.NewReader(`{"customer":"`+strings.ToLower(info.TenantID)+`","commonName":"AUCloud VB365 next year"}`))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Certificate struct{ Thumbprint string } `json:"certificate"`
	}
	json.NewDecoder(resp.Body).Decode(&pub)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || pub.Certificate.Thumbprint == "" {
		t.Fatalf("publish: %d %+v", resp.StatusCode, pub)
	}
	if _, err := c.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "next year's certificate confirmed", func() bool {
		rs, err := c.Rotations(ctx, "confirmed")
		if err != nil {
			return false
		}
		for _, r := range rs {
			if r.Certificate.Thumbprint == pub.Certificate.Thumbprint && r.Source.Kind == "pull" && r.Source.SignedBy != "" {
				return true
			}
		}
		return false
	})
	if rs, err := c.Rotations(ctx, "confirmed"); err != nil || len(rs) != 2 {
		t.Errorf("confirmed rotations = %d, %v; want two years", len(rs), err)
	}

	if runtime.GOOS != "windows" {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("certagent dev --provider exited with %v after an interrupt\n%s", err, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("certagent dev --provider did not stop within 30s of an interrupt")
		}
	}
}
