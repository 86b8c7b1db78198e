package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator/provider"
	"github.com/aucloud/certagent/internal/devenv"
)

// narrateYear prints, as it happens, the year `certagent dev --provider` plays with nobody
// in it: the provider's certificate published, fetched by the agent, applied and proven on the
// app, and confirmed by the provider's webhook receiver. It only watches (the agent's API and
// the provider's records) and returns when the year is told or ctx ends.
func narrateYear(ctx context.Context, w io.Writer, e *devenv.Env) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "  [+%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	pub := e.Published
	fmt.Fprintf(w, "\nA year with nobody in it (certagent dev --provider):\n")
	say("the provider published %s (thumbprint %s) at %s, signed with its key %s",
		pub.Certificate.Subject, pub.Certificate.Thumbprint, e.Info.ProviderCertificateURL, e.Provider.Fingerprint())

	tok, err := client.ReadTokenFile(e.Info.TokenFile)
	if err != nil {
		say("cannot read the API token: %v", err)
		return
	}
	c, err := client.New(e.Info.APIURL, tok)
	if err != nil {
		say("%v", err)
		return
	}
	// wait polls cond until it holds, saying what the agent's status shows when it takes long.
	wait := func(what string, cond func() bool) bool {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		quiet := time.Now()
		for !cond() {
			select {
			case <-ctx.Done():
				return false
			case <-tick.C:
			}
			if time.Since(quiet) > 30*time.Second {
				quiet = time.Now()
				var codes []string
				if s, err := c.Status(ctx); err == nil {
					for _, p := range s.Problems {
						codes = append(codes, p.Code+": "+p.Message)
					}
				}
				say("still waiting for %s; status: %s", what, strings.Join(codes, "; "))
			}
		}
		return true
	}
	var r apitype.Rotation
	find := func() bool {
		rs, err := c.Rotations(ctx, "")
		if err != nil {
			return false
		}
		for _, x := range rs {
			if x.Certificate.Thumbprint == pub.Certificate.Thumbprint {
				r = x
				return true
			}
		}
		return false
	}
	if !wait("the agent to fetch it", find) {
		return
	}
	signer := r.Source.SignedBy
	if len(r.History) > 0 {
		if _, key, ok := strings.Cut(r.History[0].Note, "signed by pinned key "); ok {
			signer = key
		}
	}
	say("the agent fetched it by itself (source %s, %s): the signature is by pinned key %s; rotation %s",
		r.Source.Kind, r.Source.FileName, signer, r.ID)
	state := func(want ...string) func() bool {
		return func() bool {
			x, err := c.Rotation(ctx, r.ID)
			if err != nil {
				return false
			}
			r = x
			for _, s := range want {
				if x.State == s {
					return true
				}
			}
			return x.State == "failed" || x.State == "rejected"
		}
	}
	if !wait("the rotation to be applied", state("applied", "confirmed")) {
		return
	}
	if r.State == "failed" || r.State == "rejected" {
		say("rotation %s %s: %+v", r.ID, r.State, r.Reason)
		return
	}
	say("applied to app %s as keyId %s, read back from Graph with every earlier certificate still there", e.Info.TargetAppID, r.KeyID)
	var d provider.Delivery
	told := func() bool {
		for _, x := range e.Provider.Deliveries() {
			if x.Verified && x.Type == "certificate.applied" && strings.EqualFold(x.Thumbprint, pub.Certificate.Thumbprint) {
				d = x
				return true
			}
		}
		return false
	}
	if !wait("the provider's webhook receiver to hear of it", told) {
		return
	}
	mine := "one it did not publish"
	if d.Published {
		mine = "the certificate it published"
	}
	say("the provider's webhook receiver verified the signed certificate.applied (%s) and answered 204: it tells of %s, on app %s", d.ID, mine, d.AppID)
	if !wait("the rotation to be confirmed", state("confirmed")) {
		return
	}
	last := r.History[len(r.History)-1]
	say("rotation %s confirmed by %s: the provider was told; nobody touched anything", r.ID, last.Actor)
	fmt.Fprintf(w, "\nNext year: publish again (curl --cacert %s -X POST -d '{\"customer\":\"%s\"}' %s);\nthe agent fetches it within source.interval (1m here), or at once after POST /api/v1/scan.\n",
		e.Info.EmulatorCAFile, strings.ToLower(e.Info.TenantID), e.Info.ProviderPublishURL)
}
