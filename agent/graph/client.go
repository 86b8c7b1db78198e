package graph

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	graphauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithappid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/aucloud/certagent/agent/certs"
)

// DefaultTimeout bounds one operation (Get, Replace, AddKey, RemoveKey), its retries and the
// sign-in it may need included, when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config configures a Client. TenantID, ClientID, AuthorityHost, GraphURL and Credential are
// required.
type Config struct {
	// TenantID is the directory (tenant) id, or its domain name.
	TenantID string
	// ClientID is the application (client) id of the agent's own app registration.
	ClientID string
	// AuthorityHost is the Entra ID sign-in endpoint, for example
	// https://login.microsoftonline.com/. It must be https.
	AuthorityHost string
	// GraphURL is Microsoft Graph's base, for example https://graph.microsoft.com; "/v1.0"
	// is appended, and the token scope is GraphURL's origin + "/.default". It must be https.
	GraphURL string
	// Credential gives the agent's certificate and key; it may change at runtime (renewal).
	Credential CredentialSource
	// RootCAs are the CAs trusted for the token endpoint and Graph; nil means the system's.
	// Set it for a custom cloud, a TLS-inspecting proxy, or the emulator.
	RootCAs *x509.CertPool
	// Timeout bounds each operation, retries included (default DefaultTimeout). It also
	// bounds the wait for each answer's headers.
	Timeout time.Duration
	// Logger receives state changes (credentials replaced, keys added or removed, sign-in
	// certificate changed) and, at debug level, retries. Nil discards.
	Logger *slog.Logger
	// Observe, when set, is called once per HTTP request to Graph or to the token endpoint,
	// retries included, with op "get", "replace", "addKey", "removeKey", "owners" or "token" and
	// outcome "ok", "throttled", "server_error", "network", "timeout", "canceled",
	// "tls_error", "denied", "not_found", "bad_request", "auth_failed", "client_error",
	// "redirect" or "refused" (a request the client would not send). It must be fast and
	// safe for concurrent use.
	Observe func(op, outcome string)
	// Now is the clock for proofs and Retry-After dates (default time.Now).
	Now func() time.Time
}

// Client reads and writes applications' keyCredentials in Microsoft Graph. It is safe for
// concurrent use.
type Client struct {
	tenantID  string
	clientID  string
	authority string
	graphURL  *url.URL
	baseURL   string
	scope     string
	timeout   time.Duration
	source    CredentialSource
	log       *slog.Logger
	observeFn func(op, outcome string)
	now       func() time.Time
	cloud     cloud.Configuration
	transport *http.Transport
	tokenHTTP *http.Client
	cred      *sourceCredential
	graphHTTP *http.Client
	adapter   *core.GraphRequestAdapterBase
	// admin is set for an Admin's client: its errors speak of the administrator, not the agent.
	admin bool
}

// New validates cfg and returns a Client. It does not touch the network: the first
// operation signs in.
func New(cfg Config) (*Client, error) {
	if err := validTenant(cfg.TenantID); err != nil {
		return nil, err
	}
	if !isGUID(cfg.ClientID) {
		return nil, fmt.Errorf("graph client: client id %q is not a GUID", cfg.ClientID)
	}
	c, err := newBase(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Credential == nil {
		return nil, errors.New("graph client: credential is required")
	}
	c.source = cfg.Credential
	c.cred = &sourceCredential{c: c}
	if err := c.buildAdapter(c.cred, []string{c.scope}); err != nil {
		return nil, err
	}
	return c, nil
}

// newBase checks and applies what every client needs (tenant, endpoints, timeout, logger,
// clock) and builds the transports. cfg.ClientID may be empty (an admin client's public
// client is set by its constructor).
func newBase(cfg Config) (*Client, error) {
	if err := validTenant(cfg.TenantID); err != nil {
		return nil, err
	}
	authority, err := httpsURL("authority host", cfg.AuthorityHost)
	if err != nil {
		return nil, err
	}
	graphURL, err := httpsURL("graph URL", cfg.GraphURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("graph client: timeout %s must not be negative", cfg.Timeout)
	}
	c := &Client{
		tenantID:  cfg.TenantID,
		clientID:  strings.ToLower(cfg.ClientID),
		timeout:   cfg.Timeout,
		log:       cfg.Logger,
		observeFn: cfg.Observe,
		now:       cfg.Now,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "graph")
	if c.now == nil {
		c.now = time.Now
	}

	// The authority keeps its path (ADFS-style or proxied authorities have one) and ends in
	// "/", as azidentity joins the tenant to it.
	authority.Path = strings.TrimSuffix(authority.Path, "/") + "/"
	c.authority = authority.String()
	c.cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: c.authority}

	// GraphURL may be given with or without "/v1.0" and a trailing slash.
	graphURL.Path = strings.TrimSuffix(strings.TrimSuffix(graphURL.Path, "/"), "/v1.0")
	c.graphURL = graphURL
	c.baseURL = strings.TrimSuffix(graphURL.String(), "/") + "/v1.0"
	c.scope = graphURL.Scheme + "://" + graphURL.Host + "/.default"

	c.transport = newBaseTransport(cfg.RootCAs, c.timeout)
	c.tokenHTTP = &http.Client{Transport: tokenTransport{c: c, base: c.transport}}
	return c, nil
}

// buildAdapter builds the SDK's request adapter, signing requests with tokens of cred for
// scopes.
func (c *Client) buildAdapter(cred azcore.TokenCredential, scopes []string) error {
	// The valid-hosts list must name the Graph host: for any other host the provider adds
	// no Authorization header, without an error (docs/graph.md).
	auth, err := graphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
		cred, scopes, []string{c.graphURL.Hostname()})
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	// Serializers are registered on the adapter, not in kiota's process-wide registries.
	parsers := absser.NewParseNodeFactoryRegistry()
	parsers.ContentTypeAssociatedFactories["application/json"] = jsonserialization.NewJsonParseNodeFactory()
	writers := absser.NewSerializationWriterFactoryRegistry()
	writers.ContentTypeAssociatedFactories["application/json"] = jsonserialization.NewJsonSerializationWriterFactory()
	c.graphHTTP = c.newGraphHTTPClient(c.transport)
	c.adapter, err = core.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, core.GraphClientOptions{GraphServiceLibraryVersion: sdkVersion()}, parsers, writers, c.graphHTTP)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	c.adapter.SetBaseUrl(c.baseURL)
	return nil
}

// selectProperties are the properties Get asks for. Naming keyCredentials in $select on a
// single-object read is what makes Graph return each credential's key.
var selectProperties = []string{"id", "appId", "displayName", "keyCredentials"}

// Get reads the application whose appId (client id) is appID, with every key credential,
// its key bytes, customKeyIdentifier and dates in UTC, in Graph's order. It sends one
// request (plus the SDK's retries of 429/503/504, and a token request when needed). Right
// after a write Graph may still answer with the previous version (replication lag): a
// caller verifying a write should retry a read that does not show it yet.
func (c *Client) Get(ctx context.Context, appID string) (certs.Application, error) {
	if !isGUID(appID) {
		return certs.Application{}, c.invalid(opGet, appID, "the app id is not a GUID")
	}
	ctx, st, cancel := c.begin(ctx, opGet)
	defer cancel()
	id := appID
	ri, err := applicationswithappid.NewApplicationsWithAppIdRequestBuilderInternal(c.pathParams(), c.adapter, &id).ToGetRequestInformation(ctx,
		&applicationswithappid.ApplicationsWithAppIdRequestBuilderGetRequestConfiguration{
			QueryParameters: &applicationswithappid.ApplicationsWithAppIdRequestBuilderGetQueryParameters{Select: selectProperties},
		})
	if err != nil {
		return certs.Application{}, c.invalid(opGet, appID, err.Error())
	}
	res, err := c.adapter.Send(ctx, ri, createApplication, errorMapping)
	if err != nil {
		return certs.Application{}, c.fail(ctx, opGet, appID, err, st)
	}
	m, _ := res.(*application)
	if m == nil {
		return certs.Application{}, c.invalidAnswer(opGet, appID, st, "Graph answered without an application")
	}
	app := fromModel(m)
	switch {
	case app.ObjectID == "":
		return certs.Application{}, c.invalidAnswer(opGet, appID, st, "Graph's answer has no object id")
	case !strings.EqualFold(app.AppID, appID):
		return certs.Application{}, c.invalidAnswer(opGet, appID, st, "Graph answered with application "+app.AppID)
	}
	for _, k := range app.KeyCredentials {
		if k.Key == nil && k.Type == certs.KeyTypeX509Cert {
			c.log.Warn("graph returned a certificate credential without its key", "app_id", appID, "key_id", k.KeyID)
		}
	}
	return app, nil
}

// Replace sets the keyCredentials of the application with object id objectID to exactly
// creds, in order: PATCH /applications/{objectID} with each entry's keyId, type, usage, key
// (JSON null when Key is nil, which Graph reads as "keep the stored key"), displayName,
// dates and customKeyIdentifier (omitted when empty). Graph replaces the whole collection:
// a credential left out of creds is removed. Every entry needs a distinct KeyID (a GUID); the
// caller makes one up for a new credential. One request (plus the SDK's retries).
func (c *Client) Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error {
	if !isGUID(objectID) {
		return c.invalid(opReplace, objectID, "the object id is not a GUID")
	}
	body, err := replaceBody(creds)
	if err != nil {
		return c.invalid(opReplace, objectID, err.Error())
	}
	ctx, st, cancel := c.begin(ctx, opReplace)
	defer cancel()
	ri, err := write(ctx, c, c.item(objectID).ToGetRequestInformation, abstractions.PATCH, body)
	if err != nil {
		return c.invalid(opReplace, objectID, err.Error())
	}
	if _, err := c.adapter.Send(ctx, ri, createApplication, errorMapping); err != nil {
		return c.fail(ctx, opReplace, objectID, err, st)
	}
	c.log.Info("replaced key credentials", "object_id", objectID, "count", len(creds), "status", lastStatus(st))
	return nil
}

// replaceBody is the PATCH body that sets keyCredentials to creds, in order.
func replaceBody(creds []certs.KeyCredential) (*application, error) {
	list := make([]models.KeyCredentialable, 0, len(creds))
	seen := make(map[string]bool, len(creds))
	for i, k := range creds {
		if !isGUID(k.KeyID) {
			return nil, fmt.Errorf("credential %d: keyId %q is not a GUID", i, k.KeyID)
		}
		id := strings.ToLower(k.KeyID)
		if seen[id] {
			return nil, fmt.Errorf("credential %d: keyId %s appears twice", i, k.KeyID)
		}
		seen[id] = true
		list = append(list, toModel(k))
	}
	body := newApplication()
	body.keyCredentials = list
	return body, nil
}

// AddKey adds cert to the application objectID with Graph's addKey action, proven by a JWT
// signed with the CredentialSource's current key (whose certificate must be valid on that
// same application: this is for the agent's own app). It needs no Graph permission. It
// returns the new credential as Graph reports it, with Key set to cert's DER (Graph answers
// "key": null).
//
// AddKey is not retried on 504, nor should the caller retry it blindly after a transient
// error: the key may have been added. Read the application and look for the certificate's
// thumbprint first, since Graph does not refuse a duplicate.
func (c *Client) AddKey(ctx context.Context, objectID string, cert *x509.Certificate, displayName string) (certs.KeyCredential, error) {
	if !isGUID(objectID) {
		return certs.KeyCredential{}, c.invalid(opAddKey, objectID, "the object id is not a GUID")
	}
	if cert == nil {
		return certs.KeyCredential{}, c.invalid(opAddKey, objectID, "no certificate to add")
	}
	proof, err := c.proof(opAddKey, objectID)
	if err != nil {
		return certs.KeyCredential{}, err
	}
	kc := models.NewKeyCredential()
	kc.SetTypeEscaped(ptr(certs.KeyTypeX509Cert))
	kc.SetUsage(ptr(certs.KeyUsageVerify))
	kc.SetKey(cert.Raw)
	if displayName != "" {
		kc.SetDisplayName(&displayName)
	}
	body := applications.NewItemAddKeyPostRequestBody()
	body.SetKeyCredential(kc)
	body.SetProof(&proof)

	ctx, st, cancel := c.begin(ctx, opAddKey)
	defer cancel()
	st.noRetry = []int{http.StatusGatewayTimeout}
	res, err := c.item(objectID).AddKey().Post(ctx, body, nil)
	if err != nil {
		return certs.KeyCredential{}, c.fail(ctx, opAddKey, objectID, err, st)
	}
	if res == nil {
		return certs.KeyCredential{}, c.invalidAnswer(opAddKey, objectID, st, "Graph answered without the new credential")
	}
	added := keyFromModel(res)
	if added.Key == nil {
		added.Key = append([]byte(nil), cert.Raw...)
	}
	c.log.Info("added key", "object_id", objectID, "key_id", added.KeyID, "thumbprint", certs.ThumbprintSHA1(cert.Raw))
	return added, nil
}

// RemoveKey removes the key credential keyID from the application objectID with Graph's
// removeKey action, proven like AddKey. Removing the certificate that signs the proof is
// allowed; the agent then signs in with the CredentialSource's new certificate. It is not
// retried on 504.
func (c *Client) RemoveKey(ctx context.Context, objectID, keyID string) error {
	if !isGUID(objectID) {
		return c.invalid(opRemoveKey, objectID, "the object id is not a GUID")
	}
	if !isGUID(keyID) {
		return c.invalid(opRemoveKey, objectID, fmt.Sprintf("keyId %q is not a GUID", keyID))
	}
	proof, err := c.proof(opRemoveKey, objectID)
	if err != nil {
		return err
	}
	id := uuid.MustParse(keyID)
	body := applications.NewItemRemoveKeyPostRequestBody()
	body.SetKeyId(&id)
	body.SetProof(&proof)

	ctx, st, cancel := c.begin(ctx, opRemoveKey)
	defer cancel()
	st.noRetry = []int{http.StatusGatewayTimeout}
	if err := c.item(objectID).RemoveKey().Post(ctx, body, nil); err != nil {
		return c.fail(ctx, opRemoveKey, objectID, err, st)
	}
	c.log.Info("removed key", "object_id", objectID, "key_id", keyID)
	return nil
}

// proof signs an addKey/removeKey proof with the current sign-in key.
func (c *Client) proof(op, objectID string) (string, error) {
	cert, key := c.source.Current()
	if cert == nil || key == nil {
		return "", c.invalid(op, objectID, "the agent has no sign-in certificate and key to sign the proof")
	}
	p, err := signProof(cert, key, objectID, c.now())
	if err != nil {
		return "", c.invalid(op, objectID, "signing the proof: "+err.Error())
	}
	return p, nil
}

// write makes the request information of a PATCH or POST of body to the URL of a request
// builder, from the builder's GET request information (without query parameters, its URL is
// the same): the SDK's own ToPatch/ToPostRequestInformation take its entity models.
func write[C any](ctx context.Context, c *Client, get func(context.Context, *C) (*abstractions.RequestInformation, error), method abstractions.HttpMethod, body absser.Parsable) (*abstractions.RequestInformation, error) {
	ri, err := get(ctx, nil)
	if err != nil {
		return nil, err
	}
	ri.Method = method
	if err := ri.SetContentFromParsable(ctx, c.adapter, "application/json", body); err != nil {
		return nil, err
	}
	return ri, nil
}

func (c *Client) item(objectID string) *applications.ApplicationItemRequestBuilder {
	return applications.NewApplicationsRequestBuilderInternal(c.pathParams(), c.adapter).ByApplicationId(objectID)
}

// CloseIdleConnections closes the client's idle connections (a short-lived client, such as
// setup's check of the agent's sign-in, calls it when done).
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

func (c *Client) pathParams() map[string]string { return map[string]string{"baseurl": c.baseURL} }

// begin starts an operation: its deadline and the state the middleware fills in.
func (c *Client) begin(ctx context.Context, op string) (context.Context, *opState, context.CancelFunc) {
	st := &opState{op: op}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return withOp(ctx, st), st, cancel
}

// fail classifies err for op and logs it at debug level (the caller decides what to report).
func (c *Client) fail(ctx context.Context, op, object string, err error, st *opState) error {
	e := c.classify(op, object, err, st.last, ctx.Err())
	c.log.Debug("graph operation failed", "op", op, "object", object, "attempts", st.attempts,
		"status", e.StatusCode, "transient", e.transient, "err", e.Error())
	return e
}

// invalid is a request the client refuses to send: a caller's mistake, not worth retrying.
func (c *Client) invalid(op, object, what string) *Error {
	return &Error{Op: op, Object: object, clientID: c.clientID, reason: certs.GraphError, detail: what}
}

// invalidAnswer is a successful answer the client cannot use.
func (c *Client) invalidAnswer(op, object string, st *opState, what string) *Error {
	e := c.invalid(op, object, what)
	e.StatusCode = lastStatus(st)
	return e
}

func (c *Client) observe(op, outcome string) {
	if c.observeFn != nil {
		c.observeFn(op, outcome)
	}
}

// tokenEndpoint is the v2 token endpoint of the tenant: the audience of client assertions.
func (c *Client) tokenEndpoint() string {
	return c.authority + url.PathEscape(c.tenantID) + "/oauth2/v2.0/token"
}

func lastStatus(st *opState) int {
	if st == nil || st.last == nil {
		return 0
	}
	return st.last.status
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// isGUID reports whether s is a GUID in its 36-character form, as Graph writes ids.
func isGUID(s string) bool { return guidRE.MatchString(s) }

var tenantRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.-]*$`)

func validTenant(t string) error {
	if t == "" {
		return errors.New("graph client: tenant id is required")
	}
	if !tenantRE.MatchString(t) {
		return fmt.Errorf("graph client: tenant id %q is neither a GUID nor a domain name", t)
	}
	return nil
}

// httpsURL parses an https URL with a host and no query or fragment.
func httpsURL(what, s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("graph client: %s is required", what)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("graph client: %s %q: %w", what, s, err)
	case !strings.EqualFold(u.Scheme, "https"):
		return nil, fmt.Errorf("graph client: %s %q must be https", what, s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("graph client: %s %q has no host", what, s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("graph client: %s %q must not have a query, fragment or user", what, s)
	}
	u.Scheme = "https"
	return u, nil
}

// sdkVersion is msgraph-sdk-go's module version, for the SdkVersion telemetry header that
// msgraph-sdk-go's own adapter would send.
var sdkVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/microsoftgraph/msgraph-sdk-go" {
			if d.Replace != nil {
				return strings.TrimPrefix(d.Replace.Version, "v")
			}
			return strings.TrimPrefix(d.Version, "v")
		}
	}
	return ""
})

func ptr[T any](v T) *T { return &v }
