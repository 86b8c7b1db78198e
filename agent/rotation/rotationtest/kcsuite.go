package rotationtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/internal/certtest"
)

// KeyCredentialsHarness connects TestKeyCredentials to an implementation of
// rotation.KeyCredentials and to a way of setting up and inspecting its applications that
// does not go through it.
type KeyCredentialsHarness struct {
	// KC is the implementation under test. Required.
	KC rotation.KeyCredentials
	// NewApp creates a fresh application in the tenant KC talks to, holding initial (each
	// entry has KeyID, Type, Usage, Key, DisplayName and dates set), and returns its appId
	// and object id. It must not use KC. Required.
	NewApp func(t *testing.T, initial []certs.KeyCredential) (appID, objectID string)
	// Peek returns the application's credentials as the tenant holds them, read without KC
	// (for the emulator: its control surface). Key may be nil, but each entry's
	// Thumbprint() must give the certificate's thumbprint: when the tenant reports only the
	// thumbprint, put its hex text in CustomKeyIdentifier. Required.
	Peek func(t *testing.T, appID string) []certs.KeyCredential
	// Now is the clock the suite mints certificates against (default time.Now).
	Now func() time.Time
}

// TestKeyCredentials is the conformance suite for rotation.KeyCredentials implementations
// (the Graph adapter against the emulator, and FakeApps). It checks what the rotation engine
// relies on, and documents the one behaviour it must never trigger by accident:
//
//   - Get returns every credential with its key bytes, and Thumbprint() of each is the
//     certificate's;
//   - Replace with the credentials read plus a new one keeps the old ones (sent back with or
//     without key bytes) and adds the new one under the keyId the caller chose;
//   - Replace repeated with the same collection changes nothing (a retry after a lost answer
//     is safe);
//   - Replace with a subset REMOVES the credentials left out: this is how a customer's
//     backups break, and the agent never does it without a person's request;
//   - the same certificate under two keyIds is stored twice;
//   - a displayName longer than 90 characters is cut to 90;
//   - Get of an unknown appId and Replace of an unknown object id fail with reason code
//     app_not_found, not transient.
func TestKeyCredentials(t *testing.T, h KeyCredentialsHarness) {
	if h.KC == nil || h.NewApp == nil || h.Peek == nil {
		t.Fatal("rotationtest: KeyCredentialsHarness needs KC, NewApp and Peek")
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h KeyCredentialsHarness)
	}{
		{"GetReturnsKeys", testKCGet},
		{"ReplaceKeepsOldAddsNew", testKCReplaceAdds},
		{"ReplaceRepeated", testKCReplaceRepeated},
		{"ReplaceSubsetRemoves", testKCReplaceSubset},
		{"DuplicateCertificate", testKCDuplicate},
		{"DisplayNameCut", testKCDisplayName},
		{"UnknownApp", testKCUnknownApp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// newCred mints a certificate and returns it as a new credential with a fresh keyId, named
// name, dated as the certificate.
func newCred(h KeyCredentialsHarness, name string) certs.KeyCredential {
	c := certtest.New(h.Now(), certtest.CommonName(name))
	return certs.KeyCredential{
		KeyID:         rotation.NewGUID(),
		Type:          certs.KeyTypeX509Cert,
		Usage:         certs.KeyUsageVerify,
		Key:           c.DER,
		DisplayName:   name,
		StartDateTime: c.Cert.NotBefore.UTC(),
		EndDateTime:   c.Cert.NotAfter.UTC(),
	}
}

// want is what a credential on the app must look like.
type want struct {
	keyID, thumbprint, displayName string
}

func wantOf(c certs.KeyCredential) want {
	return want{keyID: strings.ToLower(c.KeyID), thumbprint: certs.ThumbprintSHA1(c.Key), displayName: c.DisplayName}
}

// checkCreds compares credentials with what must be there, in any order.
func checkCreds(t *testing.T, what string, got []certs.KeyCredential, wants ...want) {
	t.Helper()
	var g, w []string
	for _, c := range got {
		g = append(g, fmt.Sprintf("%s %s %q", strings.ToLower(c.KeyID), c.Thumbprint(), c.DisplayName))
	}
	for _, c := range wants {
		w = append(w, fmt.Sprintf("%s %s %q", c.keyID, c.thumbprint, c.displayName))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

func testKCGet(t *testing.T, h KeyCredentialsHarness) {
	a, b := newCred(h, "certagent suite get A"), newCred(h, "certagent suite get B")
	appID, objectID := h.NewApp(t, []certs.KeyCredential{a, b})
	app, err := h.KC.Get(context.Background(), appID)
	if err != nil {
		t.Fatalf("Get(%s): %v", appID, err)
	}
	if !strings.EqualFold(app.AppID, appID) || !strings.EqualFold(app.ObjectID, objectID) {
		t.Errorf("Get(%s) = app %s object %s, want app %s object %s", appID, app.AppID, app.ObjectID, appID, objectID)
	}
	checkCreds(t, "Get", app.KeyCredentials, wantOf(a), wantOf(b))
	for _, c := range app.KeyCredentials {
		var sent certs.KeyCredential
		for _, s := range []certs.KeyCredential{a, b} {
			if strings.EqualFold(s.KeyID, c.KeyID) {
				sent = s
			}
		}
		if string(c.Key) != string(sent.Key) {
			t.Errorf("Get: credential %s has %d key bytes, want the certificate's %d", c.KeyID, len(c.Key), len(sent.Key))
		}
		if c.Type != certs.KeyTypeX509Cert || c.Usage != certs.KeyUsageVerify {
			t.Errorf("Get: credential %s is %s/%s, want %s/%s", c.KeyID, c.Type, c.Usage, certs.KeyTypeX509Cert, certs.KeyUsageVerify)
		}
		if !c.EndDateTime.Equal(sent.EndDateTime) {
			t.Errorf("Get: credential %s ends %s, want %s", c.KeyID, c.EndDateTime, sent.EndDateTime)
		}
	}
}

func testKCReplaceAdds(t *testing.T, h KeyCredentialsHarness) {
	for _, withKeys := range []bool{true, false} {
		t.Run(fmt.Sprintf("oldKeysSent=%v", withKeys), func(t *testing.T) {
			ctx := context.Background()
			a, b := newCred(h, "certagent suite old A"), newCred(h, "certagent suite old B")
			appID, objectID := h.NewApp(t, []certs.KeyCredential{a, b})
			app, err := h.KC.Get(ctx, appID)
			if err != nil {
				t.Fatal(err)
			}
			creds := cloneCreds(app.KeyCredentials)
			if !withKeys {
				for i := range creds {
					creds[i].Key = nil
				}
			}
			n := newCred(h, "certagent suite new")
			if err := h.KC.Replace(ctx, objectID, append(creds, n)); err != nil {
				t.Fatalf("Replace(old + new): %v", err)
			}
			checkCreds(t, "Peek after Replace(old + new)", h.Peek(t, appID), wantOf(a), wantOf(b), wantOf(n))
			after, err := h.KC.Get(ctx, appID)
			if err != nil {
				t.Fatal(err)
			}
			checkCreds(t, "Get after Replace(old + new)", after.KeyCredentials, wantOf(a), wantOf(b), wantOf(n))
		})
	}
}

func testKCReplaceRepeated(t *testing.T, h KeyCredentialsHarness) {
	ctx := context.Background()
	a := newCred(h, "certagent suite repeat A")
	appID, objectID := h.NewApp(t, []certs.KeyCredential{a})
	n := newCred(h, "certagent suite repeat new")
	old := a.Clone()
	old.Key = nil
	for i := range 2 {
		if err := h.KC.Replace(ctx, objectID, []certs.KeyCredential{old, n}); err != nil {
			t.Fatalf("Replace #%d: %v", i+1, err)
		}
	}
	checkCreds(t, "Peek after the same Replace twice", h.Peek(t, appID), wantOf(a), wantOf(n))
}

// testKCReplaceSubset documents the hazard: Graph's PATCH replaces the collection, so a
// credential left out is gone. The engine always sends back everything it read; removing a
// credential is only ever a person's explicit request.
func testKCReplaceSubset(t *testing.T, h KeyCredentialsHarness) {
	ctx := context.Background()
	a, b := newCred(h, "certagent suite keep"), newCred(h, "certagent suite dropped")
	appID, objectID := h.NewApp(t, []certs.KeyCredential{a, b})
	keep := a.Clone()
	keep.Key = nil
	if err := h.KC.Replace(ctx, objectID, []certs.KeyCredential{keep}); err != nil {
		t.Fatalf("Replace(subset): %v", err)
	}
	checkCreds(t, "Peek after Replace(subset): the credential left out must be gone", h.Peek(t, appID), wantOf(a))
}

func testKCDuplicate(t *testing.T, h KeyCredentialsHarness) {
	ctx := context.Background()
	a := newCred(h, "certagent suite duplicate")
	appID, objectID := h.NewApp(t, []certs.KeyCredential{a})
	again := a.Clone()
	again.KeyID = rotation.NewGUID()
	again.DisplayName = "certagent suite duplicate again"
	old := a.Clone()
	old.Key = nil
	if err := h.KC.Replace(ctx, objectID, []certs.KeyCredential{old, again}); err != nil {
		t.Fatalf("Replace(with the same certificate under a new keyId): %v", err)
	}
	checkCreds(t, "Peek after adding the same certificate again", h.Peek(t, appID), wantOf(a), wantOf(again))
	app, err := h.KC.Get(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	checkCreds(t, "Get after adding the same certificate again", app.KeyCredentials, wantOf(a), wantOf(again))
}

func testKCDisplayName(t *testing.T, h KeyCredentialsHarness) {
	ctx := context.Background()
	appID, objectID := h.NewApp(t, nil)
	n := newCred(h, "certagent suite long name")
	// 120 characters, the first of them outside ASCII: Graph counts characters, not bytes.
	n.DisplayName = "ü" + strings.Repeat("0123456789", 12)[1:]
	if err := h.KC.Replace(ctx, objectID, []certs.KeyCredential{n}); err != nil {
		t.Fatalf("Replace(long displayName): %v", err)
	}
	w := wantOf(n)
	w.displayName = string([]rune(n.DisplayName)[:certs.MaxDisplayNameLen])
	checkCreds(t, "Peek after a 120-character displayName", h.Peek(t, appID), w)
	app, err := h.KC.Get(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	checkCreds(t, "Get after a 120-character displayName", app.KeyCredentials, w)
}

func testKCUnknownApp(t *testing.T, h KeyCredentialsHarness) {
	ctx := context.Background()
	missing := rotation.NewGUID()
	_, err := h.KC.Get(ctx, missing)
	if err == nil {
		t.Fatalf("Get(unknown app %s) = nil error", missing)
	}
	if code := rotation.ErrorReason(err).Code; code != certs.AppNotFound {
		t.Errorf("Get(unknown app): reason code %q, want %q (error: %v)", code, certs.AppNotFound, err)
	}
	if rotation.IsTransient(err) {
		t.Errorf("Get(unknown app): transient, want permanent (error: %v)", err)
	}
	err = h.KC.Replace(ctx, rotation.NewGUID(), []certs.KeyCredential{newCred(h, "certagent suite nowhere")})
	if err == nil {
		t.Fatal("Replace(unknown object) = nil error")
	}
	if code := rotation.ErrorReason(err).Code; code != certs.AppNotFound {
		t.Errorf("Replace(unknown object): reason code %q, want %q (error: %v)", code, certs.AppNotFound, err)
	}
	if rotation.IsTransient(err) {
		t.Errorf("Replace(unknown object): transient, want permanent (error: %v)", err)
	}
}
