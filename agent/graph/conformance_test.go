package graph_test

import (
	"testing"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/rotation/rotationtest"
	"github.com/aucloud/certagent/emulator"
)

// TestKeyCredentials runs the rotation.KeyCredentials conformance suite against the client
// and the emulated tenant, driven by the real azidentity and msgraph-sdk-go.
func TestKeyCredentials(t *testing.T) {
	env := newEnv(t)
	c := env.client(t)
	rotationtest.TestKeyCredentials(t, rotationtest.KeyCredentialsHarness{
		KC: c,
		NewApp: func(t *testing.T, initial []certs.KeyCredential) (string, string) {
			var kcs []emulator.SeedKeyCredential
			for _, k := range initial {
				kcs = append(kcs, emulator.SeedKeyCredential{
					Certificate: k.Key, DisplayName: k.DisplayName, KeyID: k.KeyID,
					StartDateTime: k.StartDateTime, EndDateTime: k.EndDateTime, Usage: k.Usage,
				})
			}
			v, err := env.e.AddApplication("", emulator.SeedApplication{
				DisplayName:    "suite app " + rotation.NewGUID(),
				Owners:         []string{"agent"},
				KeyCredentials: kcs,
			})
			if err != nil {
				t.Fatal(err)
			}
			return v.AppID, v.ObjectID
		},
		Peek: func(t *testing.T, appID string) []certs.KeyCredential {
			v, err := env.e.Application(appID)
			if err != nil {
				t.Fatal(err)
			}
			var out []certs.KeyCredential
			for _, k := range v.KeyCredentials {
				out = append(out, certs.KeyCredential{
					KeyID: k.KeyID, Type: k.Type, Usage: k.Usage, Key: k.Key, DisplayName: k.DisplayName,
					StartDateTime: k.StartDateTime, EndDateTime: k.EndDateTime,
				})
			}
			return out
		},
	})
}
