package graph_test

import (
	"context"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/internal/certtest"
)

// BenchmarkGet measures one read through the SDK against the emulator (token cached).
func BenchmarkGet(b *testing.B) {
	env := newEnv(b)
	c := env.client(b)
	ctx := context.Background()
	appID := env.apps["target"].AppID
	if _, err := c.Get(ctx, appID); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Get(ctx, appID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdd measures one add as the engine composes it: Get, Replace with one more
// credential, Get to verify (against the emulator, token cached).
func BenchmarkAdd(b *testing.B) {
	env := newEnv(b)
	c := env.client(b)
	ctx := context.Background()
	appID := env.apps["target"].AppID
	n := certtest.New(env.now, certtest.CommonName("bench"))
	if _, err := c.Get(ctx, appID); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		app, err := c.Get(ctx, appID)
		if err != nil {
			b.Fatal(err)
		}
		creds := app.KeyCredentials
		if len(creds) > 2 {
			creds = creds[:2] // keep the app small: drop the previous iteration's credential
		}
		creds = append(creds, certs.KeyCredential{KeyID: rotation.NewGUID(), Type: certs.KeyTypeX509Cert,
			Usage: certs.KeyUsageVerify, Key: n.DER})
		if err := c.Replace(ctx, app.ObjectID, creds); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Get(ctx, appID); err != nil {
			b.Fatal(err)
		}
	}
}
