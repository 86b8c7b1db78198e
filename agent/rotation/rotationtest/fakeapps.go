package rotationtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// FakeError is a Graph failure as the adapter reports it: rotation.IsTransient,
// rotation.RetryAfter and rotation.ErrorReason read it through its methods.
type FakeError struct {
	// Status is the HTTP status Graph answered.
	Status int
	// Code is the stable reason code the failure maps to.
	Code certs.Code
	// Msg is Graph's message.
	Msg string
	// Retryable makes Transient report true (Transient is the method's name, so the field
	// cannot share it).
	Retryable bool
	// Wait is what RetryAfter reports: the server's Retry-After, zero when it gave none.
	Wait time.Duration
}

func (e *FakeError) Error() string {
	return fmt.Sprintf("graph: %d %s: %s", e.Status, e.Code, e.Msg)
}

// Transient reports whether the failure is worth retrying.
func (e *FakeError) Transient() bool { return e.Retryable }

// RetryAfter returns how long the server asked to wait.
func (e *FakeError) RetryAfter() time.Duration { return e.Wait }

// Reason returns the stable code and the message.
func (e *FakeError) Reason() certs.Reason { return certs.Reason{Code: e.Code, Message: e.Msg} }

// StatusCode returns the HTTP status.
func (e *FakeError) StatusCode() int { return e.Status }

// Throttled is a 429 with Retry-After: transient.
func Throttled(retryAfter time.Duration) *FakeError {
	return &FakeError{Status: http.StatusTooManyRequests, Code: certs.GraphUnavailable, Msg: "Too many requests.", Retryable: true, Wait: retryAfter}
}

// Unavailable is a 503: transient.
func Unavailable() *FakeError {
	return &FakeError{Status: http.StatusServiceUnavailable, Code: certs.GraphUnavailable, Msg: "Service unavailable.", Retryable: true}
}

// Denied is a 403 Authorization_RequestDenied: permanent.
func Denied() *FakeError {
	return &FakeError{Status: http.StatusForbidden, Code: certs.GraphDenied, Msg: "Insufficient privileges to complete the operation."}
}

// BadRequest is a 400 with msg: permanent.
func BadRequest(format string, args ...any) *FakeError {
	return &FakeError{Status: http.StatusBadRequest, Code: certs.GraphBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// AppNotFound is the 404 for an application that does not exist: permanent.
func AppNotFound(id string) *FakeError {
	return &FakeError{Status: http.StatusNotFound, Code: certs.AppNotFound, Msg: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

// FakeApps is an in-memory rotation.KeyCredentials: a tenant of applications that behaves
// like Graph does for reading and replacing keyCredentials (docs/graph.md):
//
//   - Get returns the application with every credential and its key bytes, as deep copies.
//     An unknown appId fails with AppNotFound (permanent).
//   - Replace sets the whole collection. An entry whose keyId is on the app keeps the stored
//     credential (its Key may be nil); sending other values for it is refused, as Graph
//     refuses to update an existing credential. An entry with a new keyId is a new
//     credential: it needs Key (a certificate's DER), type AsymmetricX509Cert and usage
//     Verify or Sign. A credential left out is removed. The same certificate under two
//     keyIds is stored twice. displayName keeps 90 characters. Missing dates are taken from
//     the certificate and a missing customKeyIdentifier becomes the thumbprint, as Graph
//     does; unlike Graph, FakeApps invents no keyId (an entry without one is refused), so a
//     caller that forgets to choose its keyId is caught.
//
// The exported fields change its behaviour; set them before the fake is used. FakeApps is
// safe for concurrent use.
type FakeApps struct {
	// BeforeGet, if set, runs at the start of each Get (after it is counted). An error it
	// returns is Get's result. It runs without FakeApps' lock, so it may call its methods.
	BeforeGet func(ctx context.Context, appID string) error
	// BeforeReplace, if set, runs at the start of each Replace (after it is counted), with
	// the credentials as passed. An error it returns is Replace's result and nothing
	// changes. It runs without FakeApps' lock.
	BeforeReplace func(ctx context.Context, objectID string, creds []certs.KeyCredential) error
	// StaleReads makes the next StaleReads Gets of an app after each Replace return the
	// collection from before that Replace, like a lagging Graph replica.
	StaleReads int

	// mu guards the fields below.
	mu       sync.Mutex
	apps     map[string]*fakeApp // by object id
	gets     int
	replaces int
}

type fakeApp struct {
	app   certs.Application
	prev  []certs.KeyCredential // the collection before the last Replace
	stale int                   // Gets left that return prev
}

var _ rotation.KeyCredentials = (*FakeApps)(nil)

// NewFakeApps returns a tenant without applications.
func NewFakeApps() *FakeApps {
	return &FakeApps{apps: map[string]*fakeApp{}}
}

// AddApp adds an application. It panics when app lacks AppID or ObjectID, when either is
// taken, or when a credential is one Graph would refuse: the input is the test's own.
// Credentials are completed as a Replace would complete them.
func (f *FakeApps) AddApp(app certs.Application) {
	if app.AppID == "" || app.ObjectID == "" {
		panic("rotationtest: AddApp needs an AppID and an ObjectID")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.findLocked(app.AppID) != nil || f.apps[app.ObjectID] != nil {
		panic(fmt.Sprintf("rotationtest: AddApp: app %s / %s exists", app.AppID, app.ObjectID))
	}
	a := &fakeApp{app: app}
	a.app.KeyCredentials = nil
	creds, err := a.replace(app.KeyCredentials)
	if err != nil {
		panic("rotationtest: AddApp: " + err.Error())
	}
	a.app.KeyCredentials = creds
	f.apps[app.ObjectID] = a
}

// RemoveApp deletes the application with appID, if any.
func (f *FakeApps) RemoveApp(appID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.findLocked(appID); a != nil {
		delete(f.apps, a.app.ObjectID)
	}
}

// Credentials returns the app's credentials as stored (deep copies, with keys), read from
// the side: no call is counted, no stale read is served. It returns nil for an unknown app.
func (f *FakeApps) Credentials(appID string) []certs.KeyCredential {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findLocked(appID)
	if a == nil {
		return nil
	}
	return cloneCreds(a.app.KeyCredentials)
}

// SetCredentials changes the app's credentials from the side, as a person in the Azure
// portal would: the collection becomes creds (kept as given, deep-copied), without counting
// a call or arming stale reads. It panics for an unknown app.
func (f *FakeApps) SetCredentials(appID string, creds []certs.KeyCredential) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findLocked(appID)
	if a == nil {
		panic("rotationtest: SetCredentials: no app " + appID)
	}
	a.app.KeyCredentials = cloneCreds(creds)
}

// Edit changes the app's credentials as a person does in the Azure portal or with az CLI:
// through Graph, so, unlike SetCredentials, it is a write like Replace: the next StaleReads
// Gets return the collection from before it (a lagging replica). edit gets a deep copy of
// the stored credentials and returns the new collection (kept as given). It counts no call
// and panics for an unknown app.
func (f *FakeApps) Edit(appID string, edit func([]certs.KeyCredential) []certs.KeyCredential) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findLocked(appID)
	if a == nil {
		panic("rotationtest: Edit: no app " + appID)
	}
	a.prev = a.app.KeyCredentials
	a.app.KeyCredentials = cloneCreds(edit(cloneCreds(a.app.KeyCredentials)))
	a.stale = f.StaleReads
}

// Gets returns how many times Get was called, failures included.
func (f *FakeApps) Gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// Replaces returns how many times Replace was called, failures included.
func (f *FakeApps) Replaces() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replaces
}

// Get implements rotation.KeyCredentials.
func (f *FakeApps) Get(ctx context.Context, appID string) (certs.Application, error) {
	f.mu.Lock()
	f.gets++
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return certs.Application{}, err
	}
	if f.BeforeGet != nil {
		if err := f.BeforeGet(ctx, appID); err != nil {
			return certs.Application{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findLocked(appID)
	if a == nil {
		return certs.Application{}, AppNotFound(appID)
	}
	app := a.app
	if a.stale > 0 {
		a.stale--
		app.KeyCredentials = a.prev
	}
	app.KeyCredentials = cloneCreds(app.KeyCredentials)
	return app, nil
}

// Replace implements rotation.KeyCredentials.
func (f *FakeApps) Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error {
	f.mu.Lock()
	f.replaces++
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.BeforeReplace != nil {
		if err := f.BeforeReplace(ctx, objectID, creds); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[objectID]
	if a == nil {
		return AppNotFound(objectID)
	}
	next, err := a.replace(creds)
	if err != nil {
		return err
	}
	a.prev = a.app.KeyCredentials
	a.app.KeyCredentials = next
	a.stale = f.StaleReads
	return nil
}

func (f *FakeApps) findLocked(appID string) *fakeApp {
	for _, a := range f.apps {
		if strings.EqualFold(a.app.AppID, appID) {
			return a
		}
	}
	return nil
}

// replace computes the collection a Replace with creds leaves on a, as Graph would.
func (a *fakeApp) replace(creds []certs.KeyCredential) ([]certs.KeyCredential, error) {
	out := make([]certs.KeyCredential, 0, len(creds))
	seen := map[string]bool{}
	for _, c := range creds {
		if c.KeyID == "" {
			return nil, BadRequest("a keyCredential without keyId (the fake invents none; choose the keyId before writing)")
		}
		id := strings.ToLower(c.KeyID)
		if seen[id] {
			return nil, BadRequest("The keyId '%s' appears more than once in keyCredentials.", c.KeyID)
		}
		seen[id] = true
		if stored, ok := a.find(c.KeyID); ok {
			if !sameAsStored(c, stored) {
				return nil, BadRequest("Update to existing credential with KeyId '%s' is not allowed.", stored.KeyID)
			}
			out = append(out, stored.Clone())
			continue
		}
		k, err := newCredential(c)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func (a *fakeApp) find(keyID string) (certs.KeyCredential, bool) {
	for _, k := range a.app.KeyCredentials {
		if strings.EqualFold(k.KeyID, keyID) {
			return k, true
		}
	}
	return certs.KeyCredential{}, false
}

// sameAsStored reports whether every value c carries matches the stored credential.
func sameAsStored(c, k certs.KeyCredential) bool {
	switch {
	case c.Key != nil && !bytes.Equal(c.Key, k.Key),
		c.Type != "" && !strings.EqualFold(c.Type, k.Type),
		c.Usage != "" && !strings.EqualFold(c.Usage, k.Usage),
		c.DisplayName != "" && truncate(c.DisplayName) != k.DisplayName,
		!c.StartDateTime.IsZero() && !c.StartDateTime.Equal(k.StartDateTime),
		!c.EndDateTime.IsZero() && !c.EndDateTime.Equal(k.EndDateTime),
		len(c.CustomKeyIdentifier) > 0 && !bytes.Equal(c.CustomKeyIdentifier, k.CustomKeyIdentifier):
		return false
	}
	return true
}

// newCredential checks and completes a credential Graph has not seen.
func newCredential(c certs.KeyCredential) (certs.KeyCredential, error) {
	if len(c.Key) == 0 {
		return certs.KeyCredential{}, BadRequest("KeyValue cannot be null or empty.")
	}
	cert, err := x509.ParseCertificate(c.Key)
	if err != nil {
		return certs.KeyCredential{}, BadRequest("Invalid certificate: Key value is invalid certificate")
	}
	if !strings.EqualFold(c.Type, certs.KeyTypeX509Cert) {
		return certs.KeyCredential{}, BadRequest(`The value for the property "type" in one of your credentials is invalid. Acceptable values are AsymmetricX509Cert.`)
	}
	switch {
	case strings.EqualFold(c.Usage, certs.KeyUsageVerify):
		c.Usage = certs.KeyUsageVerify
	case strings.EqualFold(c.Usage, "Sign"):
		c.Usage = "Sign"
	default:
		return certs.KeyCredential{}, BadRequest(`The value for the property "usage" in one of your credentials is invalid. Acceptable values are Sign, Verify.`)
	}
	c = c.Clone()
	c.Type = certs.KeyTypeX509Cert
	c.DisplayName = truncate(c.DisplayName)
	if c.StartDateTime.IsZero() {
		c.StartDateTime = cert.NotBefore
	}
	if c.EndDateTime.IsZero() {
		c.EndDateTime = cert.NotAfter
	}
	c.StartDateTime, c.EndDateTime = c.StartDateTime.UTC(), c.EndDateTime.UTC()
	if c.EndDateTime.Before(c.StartDateTime) {
		return certs.KeyCredential{}, BadRequest("Key credential end date is invalid.")
	}
	if len(c.CustomKeyIdentifier) == 0 {
		c.CustomKeyIdentifier = []byte(certs.ThumbprintSHA1(c.Key))
	}
	return c, nil
}

// truncate keeps the first 90 characters, as Graph does with displayName.
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= certs.MaxDisplayNameLen {
		return s
	}
	return string([]rune(s)[:certs.MaxDisplayNameLen])
}

func cloneCreds(creds []certs.KeyCredential) []certs.KeyCredential {
	if creds == nil {
		return nil
	}
	out := make([]certs.KeyCredential, len(creds))
	for i, c := range creds {
		out[i] = c.Clone()
	}
	return out
}
