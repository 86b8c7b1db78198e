package graph_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

var _ rotation.KeyCredentials = (*graph.Client)(nil)

func TestGet(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	target := env.apps["target"]
	app, err := c.Get(context.Background(), target.AppID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if app.AppID != target.AppID || app.ObjectID != target.ObjectID || app.DisplayName != "target" {
		t.Errorf("Get = app %s object %s %q, want app %s object %s %q", app.AppID, app.ObjectID, app.DisplayName,
			target.AppID, target.ObjectID, "target")
	}
	if len(app.KeyCredentials) != 2 {
		t.Fatalf("Get: %d credentials, want 2", len(app.KeyCredentials))
	}
	for i, name := range []string{"provider old", "provider backup"} {
		k, want := app.KeyCredentials[i], env.certs[name]
		seeded := target.KeyCredentials[i]
		if !bytes.Equal(k.Key, want.DER) {
			t.Errorf("credential %d (%s): key has %d bytes, want the certificate's DER (%d bytes)", i, name, len(k.Key), len(want.DER))
		}
		// Duplicates are detectable before writing: the thumbprint comes from the key bytes.
		if got := k.Thumbprint(); got != thumb(want) {
			t.Errorf("credential %d (%s): Thumbprint() = %s, want %s", i, name, got, thumb(want))
		}
		if got := certs.ThumbprintSHA1(k.Key); got != thumb(want) {
			t.Errorf("credential %d (%s): thumbprint of key = %s, want %s", i, name, got, thumb(want))
		}
		if got := certs.ThumbprintFromCustomKeyIdentifier(k.CustomKeyIdentifier); got != thumb(want) {
			t.Errorf("credential %d (%s): customKeyIdentifier gives %q, want %s", i, name, got, thumb(want))
		}
		if k.KeyID != seeded.KeyID || k.DisplayName != name || k.Type != certs.KeyTypeX509Cert || k.Usage != certs.KeyUsageVerify {
			t.Errorf("credential %d = %s %q %s/%s, want %s %q %s/%s", i, k.KeyID, k.DisplayName, k.Type, k.Usage,
				seeded.KeyID, name, certs.KeyTypeX509Cert, certs.KeyUsageVerify)
		}
		if k.StartDateTime.Location() != time.UTC || k.EndDateTime.Location() != time.UTC {
			t.Errorf("credential %d: dates %s, %s, want UTC", i, k.StartDateTime, k.EndDateTime)
		}
		if !k.StartDateTime.Equal(want.Cert.NotBefore) || !k.EndDateTime.Equal(want.Cert.NotAfter) {
			t.Errorf("credential %d: dates %s..%s, want %s..%s", i, k.StartDateTime, k.EndDateTime, want.Cert.NotBefore, want.Cert.NotAfter)
		}
	}
	// One request, a single-object read by appId with $select (the form that returns keys).
	var gets []string
	for _, r := range env.e.Requests() {
		if strings.HasPrefix(r.Path, "/v1.0/") {
			gets = append(gets, r.Method+" "+r.Path+"?"+r.Query)
		}
	}
	want := "GET /v1.0/applications(appId='" + target.AppID + "')?$select=id,appId,displayName,keyCredentials"
	if len(gets) != 1 || gets[0] != want {
		t.Errorf("Graph requests = %q, want [%q]", gets, want)
	}
}

// TestAddComposed is one add as the rotation engine composes it: read, write back every
// credential plus the new one, read again to verify. At the HTTP level that must be exactly
// one GET, one PATCH (gzip-compressed) and one GET.
func TestAddComposed(t *testing.T) {
	for _, keepKeys := range []bool{true, false} {
		name := "oldKeysSent"
		if !keepKeys {
			name = "oldKeysNull"
		}
		t.Run(name, func(t *testing.T) {
			env := newEnv(t)
			c := env.client(t)
			ctx := context.Background()
			target := env.apps["target"]
			newCert := certtest.New(env.now, certtest.CommonName("provider new"))

			app, err := c.Get(ctx, target.AppID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			creds := make([]certs.KeyCredential, 0, len(app.KeyCredentials)+1)
			for _, k := range app.KeyCredentials {
				k = k.Clone()
				if !keepKeys {
					k.Key = nil
				}
				creds = append(creds, k)
			}
			added := certs.KeyCredential{
				KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify,
				Key: newCert.DER, DisplayName: "provider new",
				StartDateTime: newCert.Cert.NotBefore, EndDateTime: newCert.Cert.NotAfter,
			}
			creds = append(creds, added)
			if err := c.Replace(ctx, app.ObjectID, creds); err != nil {
				t.Fatalf("Replace: %v", err)
			}
			after, err := c.Get(ctx, target.AppID)
			if err != nil {
				t.Fatalf("Get after Replace: %v", err)
			}

			var got []string
			for _, k := range after.KeyCredentials {
				got = append(got, k.KeyID+" "+k.Thumbprint())
			}
			want := []string{
				target.KeyCredentials[0].KeyID + " " + thumb(env.certs["provider old"]),
				target.KeyCredentials[1].KeyID + " " + thumb(env.certs["provider backup"]),
				added.KeyID + " " + thumb(newCert),
			}
			if !slices.Equal(got, want) {
				t.Errorf("after Replace, Get = %q, want %q (old certificates kept, in order)", got, want)
			}
			for _, k := range after.KeyCredentials {
				if len(k.Key) == 0 {
					t.Errorf("credential %s lost its key", k.KeyID)
				}
			}

			reqs := env.graphRequests()
			appPath := "/v1.0/applications(appId='" + target.AppID + "')"
			wantReqs := []string{"GET " + appPath + " 200", "PATCH /v1.0/applications/" + target.ObjectID + " 204", "GET " + appPath + " 200"}
			if !slices.Equal(reqs, wantReqs) {
				t.Errorf("Graph requests:\n got  %q\n want %q", reqs, wantReqs)
			}
			for _, r := range env.e.Requests() {
				if r.Method == "PATCH" && r.ContentEncoding != "gzip" {
					t.Errorf("PATCH sent with Content-Encoding %q, want gzip", r.ContentEncoding)
				}
			}
			if n := env.tokenRequests(); n != 1 {
				t.Errorf("%d token requests for three Graph requests, want 1 (cached token)", n)
			}
		})
	}
}

// TestReplaceExact checks Replace sends exactly the list given: a reordered list is stored
// in that order, and a subset removes what is left out (the hazard the engine avoids).
func TestReplaceExact(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	ctx := context.Background()
	target := env.apps["target"]
	app, err := c.Get(ctx, target.AppID)
	if err != nil {
		t.Fatal(err)
	}
	reversed := []certs.KeyCredential{app.KeyCredentials[1], app.KeyCredentials[0]}
	if err := c.Replace(ctx, app.ObjectID, reversed); err != nil {
		t.Fatalf("Replace(reversed): %v", err)
	}
	want := []string{thumb(env.certs["provider backup"]), thumb(env.certs["provider old"])}
	if got := env.thumbprints(t, "target"); !slices.Equal(got, want) {
		t.Errorf("after Replace(reversed), app holds %q, want %q", got, want)
	}
	if err := c.Replace(ctx, app.ObjectID, reversed[:1]); err != nil {
		t.Fatalf("Replace(subset): %v", err)
	}
	if got, want := env.thumbprints(t, "target"), want[:1]; !slices.Equal(got, want) {
		t.Errorf("after Replace(subset), app holds %q, want %q", got, want)
	}
}

// TestReplaceKeepsSubSecondDates: a credential whose dates have fractions of a second (set by
// another client) survives a read-modify-write; Graph refuses a changed date on an existing
// keyId.
func TestReplaceKeepsSubSecondDates(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	ctx := context.Background()
	target := env.apps["target"]
	odd := certtest.New(env.now, certtest.CommonName("fractional"))
	start := odd.Cert.NotBefore.Add(1234567 * time.Microsecond / 10)
	if _, err := env.e.AddKeyCredential(target.AppID, emulator.SeedKeyCredential{
		Certificate: odd.DER, DisplayName: "fractional", StartDateTime: start,
	}); err != nil {
		t.Fatal(err)
	}
	app, err := c.Get(ctx, target.AppID)
	if err != nil {
		t.Fatal(err)
	}
	last := app.KeyCredentials[len(app.KeyCredentials)-1]
	if !last.StartDateTime.Equal(start) {
		t.Logf("the emulator stores %s for a start of %s", last.StartDateTime, start)
	}
	n := certtest.New(env.now, certtest.CommonName("new"))
	creds := append(app.KeyCredentials, certs.KeyCredential{KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert,
		Usage: certs.KeyUsageVerify, Key: n.DER, DisplayName: "new"})
	if err := c.Replace(ctx, app.ObjectID, creds); err != nil {
		t.Fatalf("Replace(read + new) with a sub-second date: %v", err)
	}
	if got := len(env.thumbprints(t, "target")); got != 4 {
		t.Errorf("app holds %d credentials, want 4", got)
	}
}

func TestReplaceRefusesBadInput(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	object := env.apps["target"].ObjectID
	id := rotation.NewGUID()
	tests := []struct {
		name   string
		object string
		creds  []certs.KeyCredential
	}{
		{"objectNotGUID", "target", nil},
		{"objectInjection", object + "/owners", nil},
		{"keyIDMissing", object, []certs.KeyCredential{{Type: certs.KeyTypeX509Cert}}},
		{"keyIDNotGUID", object, []certs.KeyCredential{{KeyID: "abc"}}},
		{"keyIDTwice", object, []certs.KeyCredential{{KeyID: id}, {KeyID: strings.ToUpper(id)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Replace(context.Background(), tt.object, tt.creds)
			if err == nil {
				t.Fatal("Replace = nil error")
			}
			ge := graphError(t, err)
			if ge.Transient() || ge.Reason().Code != certs.GraphError {
				t.Errorf("Replace: transient %v, code %s, want permanent %s (%v)", ge.Transient(), ge.Reason().Code, certs.GraphError, err)
			}
		})
	}
	if reqs := env.graphRequests(); len(reqs) != 0 {
		t.Errorf("refused input reached Graph: %q", reqs)
	}
}

// TestObserve checks the metrics hook sees every HTTP request: the token request and the
// Graph read.
func TestObserve(t *testing.T) {
	env := newEnv(t)
	var o observations
	c := env.client(t, func(cfg *graph.Config) { cfg.Observe = o.observe })
	if _, err := c.Get(context.Background(), env.apps["target"].AppID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), rotation.NewGUID()); err == nil {
		t.Fatal("Get(unknown) = nil error")
	}
	got := o.list()
	// The token side is OpenID discovery then the token request.
	want := []string{"token/ok", "token/ok", "get/ok", "get/not_found"}
	if !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}

// TestGzipRefused: when the server answers 415 to a compressed body, the SDK resends it
// uncompressed.
func TestGzipRefused(t *testing.T) {
	env := newEnv(t, emulator.WithRejectGzip())
	c := env.client(t)
	ctx := context.Background()
	app, err := c.Get(ctx, env.apps["target"].AppID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Replace(ctx, app.ObjectID, app.KeyCredentials); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	var patches []string
	for _, r := range env.e.Requests() {
		if r.Method == "PATCH" {
			patches = append(patches, r.ContentEncoding+" "+strconv.Itoa(r.Status))
		}
	}
	if want := []string{"gzip 415", " 204"}; !slices.Equal(patches, want) {
		t.Errorf("PATCH attempts (encoding, status) = %q, want %q", patches, want)
	}
}

// TestConcurrentUse runs operations from several goroutines on one client (run with -race).
func TestConcurrentUse(t *testing.T) {
	env := newEnv(t)
	src := newSource(env.certs["agent"])
	c := env.client(t, func(cfg *graph.Config) { cfg.Credential = src })
	renewed := certtest.New(env.now, certtest.CommonName("agent concurrent"), certtest.FreshKey())
	if _, err := env.e.AddKeyCredential(env.apps["agent"].AppID, emulator.SeedKeyCredential{Certificate: renewed.DER}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if i == 8 {
				src.Set(renewed)
			}
			_, err := c.Get(context.Background(), env.apps["target"].AppID)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
