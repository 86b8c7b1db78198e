package rotationtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/internal/certtest"
)

func fakeHarness(f *FakeApps, kc rotation.KeyCredentials) KeyCredentialsHarness {
	return KeyCredentialsHarness{
		KC: kc,
		NewApp: func(t *testing.T, initial []certs.KeyCredential) (string, string) {
			appID, objectID := rotation.NewGUID(), rotation.NewGUID()
			f.AddApp(certs.Application{AppID: appID, ObjectID: objectID, DisplayName: t.Name(), KeyCredentials: initial})
			return appID, objectID
		},
		Peek: func(t *testing.T, appID string) []certs.KeyCredential { return f.Credentials(appID) },
	}
}

func TestFakeAppsConformance(t *testing.T) {
	f := NewFakeApps()
	TestKeyCredentials(t, fakeHarness(f, f))
}

var fakeNow = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

func cred(name string) certs.KeyCredential {
	return newCred(KeyCredentialsHarness{Now: func() time.Time { return fakeNow }}, name)
}

// newFake returns a tenant with one app holding creds.
func newFake(creds ...certs.KeyCredential) (f *FakeApps, appID, objectID string) {
	f = NewFakeApps()
	appID, objectID = rotation.NewGUID(), rotation.NewGUID()
	f.AddApp(certs.Application{AppID: appID, ObjectID: objectID, DisplayName: "Backup", KeyCredentials: creds})
	return f, appID, objectID
}

func keyIDs(creds []certs.KeyCredential) string {
	var ids []string
	for _, c := range creds {
		ids = append(ids, c.KeyID)
	}
	return strings.Join(ids, ",")
}

func TestFakeAppsStaleReads(t *testing.T) {
	ctx := context.Background()
	a, n := cred("a"), cred("n")
	f, appID, objectID := newFake(a)
	f.StaleReads = 2
	if err := f.Replace(ctx, objectID, []certs.KeyCredential{a, n}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{a.KeyID, a.KeyID, a.KeyID + "," + n.KeyID, a.KeyID + "," + n.KeyID} {
		app, err := f.Get(ctx, appID)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyIDs(app.KeyCredentials); got != want {
			t.Errorf("Get #%d after Replace with StaleReads 2 = %s, want %s", i+1, got, want)
		}
	}
	if got := keyIDs(f.Credentials(appID)); got != a.KeyID+","+n.KeyID {
		t.Errorf("Credentials = %s, want both (Peek is never stale)", got)
	}
	if f.Gets() != 4 || f.Replaces() != 1 {
		t.Errorf("Gets, Replaces = %d, %d; want 4, 1", f.Gets(), f.Replaces())
	}
}

func TestFakeAppsHooks(t *testing.T) {
	ctx := context.Background()
	a := cred("a")
	f, appID, objectID := newFake(a)
	f.BeforeGet = func(ctx context.Context, id string) error {
		if id != appID {
			t.Errorf("BeforeGet(%s), want %s", id, appID)
		}
		if f.Gets() <= 2 {
			return Throttled(3 * time.Second)
		}
		return nil
	}
	for i := 1; i <= 2; i++ {
		_, err := f.Get(ctx, appID)
		if !rotation.IsTransient(err) || rotation.RetryAfter(err) != 3*time.Second {
			t.Fatalf("Get #%d = %v, want the injected 429", i, err)
		}
	}
	if _, err := f.Get(ctx, appID); err != nil {
		t.Fatalf("Get #3 = %v, want success", err)
	}

	var sent []certs.KeyCredential
	f.BeforeReplace = func(ctx context.Context, id string, creds []certs.KeyCredential) error {
		sent = creds
		return Denied()
	}
	err := f.Replace(ctx, objectID, []certs.KeyCredential{cred("n")})
	if rotation.IsTransient(err) || rotation.ErrorReason(err).Code != certs.GraphDenied {
		t.Fatalf("Replace = %v, want the injected 403", err)
	}
	if len(sent) != 1 {
		t.Errorf("BeforeReplace saw %d credentials, want the 1 passed", len(sent))
	}
	if got := keyIDs(f.Credentials(appID)); got != a.KeyID {
		t.Errorf("a refused Replace changed the app: %s, want %s", got, a.KeyID)
	}
	if f.Gets() != 3 || f.Replaces() != 1 {
		t.Errorf("Gets, Replaces = %d, %d; want 3, 1 (failures count)", f.Gets(), f.Replaces())
	}
}

func TestFakeAppsRefusals(t *testing.T) {
	a := cred("a")
	changedKey := a.Clone()
	changedKey.Key = cred("other").Key
	renamed := a.Clone()
	renamed.Key, renamed.DisplayName = nil, "renamed"
	noID := cred("no id")
	noID.KeyID = ""
	noKey := cred("no key")
	noKey.Key = nil
	badType := cred("bad type")
	badType.Type = "Symmetric"
	badUsage := cred("bad usage")
	badUsage.Usage = "Encrypt"
	notCert := cred("not a certificate")
	notCert.Key = []byte("hello")
	backwards := cred("backwards")
	backwards.EndDateTime = backwards.StartDateTime.Add(-time.Hour)
	tests := []struct {
		name  string
		creds []certs.KeyCredential
		want  string
	}{
		{"no keyId", []certs.KeyCredential{a, noID}, "without keyId"},
		{"keyId twice", []certs.KeyCredential{a, a}, "more than once"},
		{"other key under a stored keyId", []certs.KeyCredential{changedKey}, "not allowed"},
		{"other name under a stored keyId", []certs.KeyCredential{renamed}, "not allowed"},
		{"new credential without key", []certs.KeyCredential{a, noKey}, "cannot be null"},
		{"bad type", []certs.KeyCredential{badType}, "type"},
		{"bad usage", []certs.KeyCredential{badUsage}, "usage"},
		{"not a certificate", []certs.KeyCredential{notCert}, "invalid certificate"},
		{"end before start", []certs.KeyCredential{backwards}, "end date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, appID, objectID := newFake(a)
			err := f.Replace(context.Background(), objectID, tt.creds)
			var fe *FakeError
			if !errors.As(err, &fe) || fe.Status != 400 || fe.Code != certs.GraphBadRequest || fe.Transient() {
				t.Fatalf("Replace = %v, want a permanent 400", err)
			}
			if !strings.Contains(fe.Msg, tt.want) {
				t.Errorf("Replace = %q, want it to mention %q", fe.Msg, tt.want)
			}
			if got := keyIDs(f.Credentials(appID)); got != a.KeyID {
				t.Errorf("credentials after a refused Replace = %s, want %s", got, a.KeyID)
			}
		})
	}
}

func TestFakeAppsCompletesNewCredentials(t *testing.T) {
	c := certtest.New(fakeNow)
	n := certs.KeyCredential{KeyID: strings.ToUpper(rotation.NewGUID()), Type: "asymmetricx509cert", Usage: "verify", Key: c.DER}
	f, appID, objectID := newFake()
	if err := f.Replace(context.Background(), objectID, []certs.KeyCredential{n}); err != nil {
		t.Fatal(err)
	}
	got := f.Credentials(appID)
	if len(got) != 1 {
		t.Fatalf("credentials = %d, want 1", len(got))
	}
	k := got[0]
	if k.KeyID != n.KeyID {
		t.Errorf("keyId = %s, want the caller's %s", k.KeyID, n.KeyID)
	}
	if k.Type != certs.KeyTypeX509Cert || k.Usage != certs.KeyUsageVerify {
		t.Errorf("type/usage = %s/%s, want Graph's spelling", k.Type, k.Usage)
	}
	if !k.StartDateTime.Equal(c.Cert.NotBefore) || !k.EndDateTime.Equal(c.Cert.NotAfter) {
		t.Errorf("dates = %s..%s, want the certificate's %s..%s", k.StartDateTime, k.EndDateTime, c.Cert.NotBefore, c.Cert.NotAfter)
	}
	k.Key = nil
	if got, want := k.Thumbprint(), certs.ThumbprintSHA1(c.DER); got != want {
		t.Errorf("thumbprint from customKeyIdentifier = %q, want %q", got, want)
	}
	// A stored keyId is matched in any case, and the credential is kept as stored.
	again := n.Clone()
	again.KeyID, again.Key = strings.ToLower(n.KeyID), nil
	if err := f.Replace(context.Background(), objectID, []certs.KeyCredential{again}); err != nil {
		t.Fatalf("Replace(stored keyId in lower case) = %v", err)
	}
	if got := keyIDs(f.Credentials(appID)); got != n.KeyID {
		t.Errorf("credentials = %s, want %s as stored", got, n.KeyID)
	}
}

func TestFakeAppsCopies(t *testing.T) {
	ctx := context.Background()
	a := cred("a")
	f, appID, objectID := newFake(a)
	want := string(a.Key)

	app, err := f.Get(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	app.KeyCredentials[0].Key[0] ^= 0xff
	peek := f.Credentials(appID)
	peek[0].Key[0] ^= 0xff

	n := cred("n")
	wantN := string(n.Key)
	in := []certs.KeyCredential{a, n}
	if err := f.Replace(ctx, objectID, in); err != nil {
		t.Fatal(err)
	}
	in[1].Key[0] ^= 0xff
	in[1].DisplayName = "scribbled"

	got := f.Credentials(appID)
	if string(got[0].Key) != want {
		t.Error("changing what Get or Credentials returned changed the stored key")
	}
	if string(got[1].Key) != wantN || got[1].DisplayName != "n" {
		t.Errorf("changing what was passed to Replace changed the stored credential (displayName %q)", got[1].DisplayName)
	}
}

func TestFakeAppsSideChanges(t *testing.T) {
	ctx := context.Background()
	a, b := cred("a"), cred("b")
	f, appID, _ := newFake(a)
	f.SetCredentials(appID, []certs.KeyCredential{b})
	app, err := f.Get(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(app.KeyCredentials); got != b.KeyID {
		t.Errorf("Get after SetCredentials = %s, want %s", got, b.KeyID)
	}
	f.RemoveApp(appID)
	if _, err := f.Get(ctx, appID); rotation.ErrorReason(err).Code != certs.AppNotFound {
		t.Errorf("Get after RemoveApp = %v, want app_not_found", err)
	}
	if f.Credentials(appID) != nil {
		t.Error("Credentials of a removed app is not nil")
	}
}

func TestFakeAppsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := cred("a")
	f, appID, objectID := newFake(a)
	if _, err := f.Get(ctx, appID); !errors.Is(err, context.Canceled) {
		t.Errorf("Get(cancelled) = %v", err)
	}
	if err := f.Replace(ctx, objectID, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Replace(cancelled) = %v", err)
	}
	if len(f.Credentials(appID)) != 1 {
		t.Error("a cancelled Replace changed the app")
	}
}

func TestFakeErrors(t *testing.T) {
	tests := []struct {
		err       *FakeError
		transient bool
		after     time.Duration
		code      certs.Code
		status    int
	}{
		{Throttled(2500 * time.Millisecond), true, 2500 * time.Millisecond, certs.GraphUnavailable, 429},
		{Unavailable(), true, 0, certs.GraphUnavailable, 503},
		{Denied(), false, 0, certs.GraphDenied, 403},
		{BadRequest("manifest %s", "too big"), false, 0, certs.GraphBadRequest, 400},
		{AppNotFound("x"), false, 0, certs.AppNotFound, 404},
	}
	for _, tt := range tests {
		// The rotation package must see through wrapping.
		err := fmt.Errorf("reading app: %w", tt.err)
		if got := rotation.IsTransient(err); got != tt.transient {
			t.Errorf("IsTransient(%v) = %v, want %v", err, got, tt.transient)
		}
		if got := rotation.RetryAfter(err); got != tt.after {
			t.Errorf("RetryAfter(%v) = %v, want %v", err, got, tt.after)
		}
		if got := rotation.ErrorReason(err); got.Code != tt.code || got.Message != tt.err.Msg {
			t.Errorf("ErrorReason(%v) = %+v, want code %s and Graph's message", err, got, tt.code)
		}
		if tt.err.StatusCode() != tt.status {
			t.Errorf("StatusCode(%v) = %d, want %d", err, tt.err.StatusCode(), tt.status)
		}
	}
}
