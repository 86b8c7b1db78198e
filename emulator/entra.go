package emulator

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aucloud/certagent/emulator/provider"
)

// Well-known ids and values.
const (
	graphAppID          = "00000003-0000-0000-c000-000000000000"
	proofAudience       = "00000002-0000-0000-c000-000000000000" // addKey/removeKey proofs (docs/graph.md)
	armAppID            = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
	assertionTypeJWT    = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantClientCreds    = "client_credentials"
	certDocsURL         = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
	oldCertDocsURL      = "https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials"
	maxTokenRequestBody = 1 << 20
)

// route sends a (non-control) request to the service its path belongs to.
func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case e.cfg.provider != nil && strings.HasPrefix(p, provider.Prefix):
		e.cfg.provider.Handler().ServeHTTP(w, r)
	case p == "/v1.0" || strings.HasPrefix(p, "/v1.0/"):
		e.serveGraph(w, r)
	case p == "/beta" || strings.HasPrefix(p, "/beta/"):
		e.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "The emulator serves Microsoft Graph v1.0 only.")
	case p == "/subscriptions" || p == "/tenants":
		e.serveARM(w, r)
	case p == "/adfs" || strings.HasPrefix(p, "/adfs/"):
		e.serveADFS(w, r)
	default:
		e.serveEntra(w, r)
	}
}

// isEntraPath reports whether a path belongs to the token service (and so answers errors in
// Entra's shape).
func isEntraPath(p string) bool {
	for _, prefix := range []string{"/v1.0", "/beta", "/subscriptions", "/tenants"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return false
		}
	}
	return true
}

// entraError is an error answer of the token service.
type entraError struct {
	status int
	err    string // OAuth error: invalid_request, invalid_client...
	code   int    // AADSTS code
	desc   string // the message after "AADSTS<code>: "
}

func invalidRequest(code int, format string, args ...any) *entraError {
	return &entraError{status: http.StatusBadRequest, err: "invalid_request", code: code, desc: fmt.Sprintf(format, args...)}
}

func invalidClient(code int, format string, args ...any) *entraError {
	return &entraError{status: http.StatusUnauthorized, err: "invalid_client", code: code, desc: fmt.Sprintf(format, args...)}
}

func missingParam(name string) *entraError {
	return invalidRequest(900144, "The request body must contain the following parameter: '%s'.", name)
}

// writeEntraError answers in Entra's shape: error, error_description ending with trace id,
// correlation id and timestamp, error_codes, timestamp, trace_id, correlation_id, error_uri.
func (e *Emulator) writeEntraError(w http.ResponseWriter, r *http.Request, ee entraError) {
	ri := infoOf(r)
	ri.errorCode = fmt.Sprintf("AADSTS%d", ee.code)
	ts := e.cfg.now().UTC().Format("2006-01-02 15:04:05Z")
	trace := ri.requestID
	if trace == "" {
		trace = newGUID()
	}
	corr := ri.clientRequestID
	if corr == "" {
		corr = newGUID()
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("x-ms-request-id", trace)
	if ri.clientRequestID != "" {
		w.Header().Set("client-request-id", ri.clientRequestID)
	}
	writeJSON(w, ee.status, map[string]any{
		"error":             ee.err,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", ee.code, ee.desc, trace, corr, ts),
		"error_codes":       []int{ee.code},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("https://%s/error?code=%d", r.Host, ee.code),
	})
}

// serveEntra serves /{tenant}/...: OpenID configuration, keys and the token endpoint.
func (e *Emulator) serveEntra(w http.ResponseWriter, r *http.Request) {
	seg, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	rest = "/" + rest
	switch rest {
	case "/v2.0/.well-known/openid-configuration", "/.well-known/openid-configuration",
		"/discovery/v2.0/keys", "/discovery/keys", "/oauth2/v2.0/token", "/oauth2/token", "/oauth2/v2.0/devicecode":
	default:
		e.notFound(w, r)
		return
	}
	e.mu.Lock()
	t := e.st.tenantByName(seg)
	var tid string
	if t != nil {
		tid = t.ID
	}
	e.mu.Unlock()
	if t == nil {
		ee := invalidRequest(90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", seg)
		if strings.Contains(rest, ".well-known") {
			ee.err = "invalid_tenant"
		}
		e.writeEntraError(w, r, *ee)
		return
	}
	switch rest {
	case "/v2.0/.well-known/openid-configuration", "/.well-known/openid-configuration":
		if r.Method != http.MethodGet {
			e.writeEntraError(w, r, *invalidRequest(900561, "The endpoint only accepts GET requests. Received a %s request.", r.Method))
			return
		}
		writeJSON(w, http.StatusOK, e.openIDConfig(r.Host, tid, rest == "/v2.0/.well-known/openid-configuration"))
	case "/discovery/v2.0/keys", "/discovery/keys":
		writeJSON(w, http.StatusOK, e.jwks())
	case "/oauth2/v2.0/token":
		e.serveToken(w, r, tokenRequestTarget{tenantSeg: seg, v2: true})
	case "/oauth2/token":
		e.serveToken(w, r, tokenRequestTarget{tenantSeg: seg})
	case "/oauth2/v2.0/devicecode":
		e.serveDeviceCode(w, r, seg)
	}
}

// serveADFS serves the /adfs authority azure-cli uses to skip instance discovery
// (docs/graph.md). ADFS has no tenant in its URLs: a token request belongs to the tenant that
// holds the client id (app ids are unique across the emulator).
func (e *Emulator) serveADFS(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/adfs/.well-known/openid-configuration":
		if r.Method != http.MethodGet {
			e.writeEntraError(w, r, *invalidRequest(900561, "The endpoint only accepts GET requests. Received a %s request.", r.Method))
			return
		}
		base := "https://" + r.Host + "/adfs"
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                base,
			"authorization_endpoint":                base + "/oauth2/authorize",
			"token_endpoint":                        base + "/oauth2/token",
			"jwks_uri":                              base + "/discovery/keys",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token"},
			"grant_types_supported":                 []string{grantClientCreds},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"access_token_issuer":                   "http://" + r.Host + "/adfs/services/trust",
		})
	case "/adfs/discovery/keys":
		writeJSON(w, http.StatusOK, e.jwks())
	case "/adfs/oauth2/token":
		e.serveToken(w, r, tokenRequestTarget{adfs: true})
	default:
		e.notFound(w, r)
	}
}

// notFound answers a path the login service does not have as it does: a bare 404, with no
// AADSTS code (those describe requests to real endpoints).
func (e *Emulator) notFound(w http.ResponseWriter, r *http.Request) {
	infoOf(r).errorCode = "404"
	http.Error(w, "404 Not Found: the emulator does not serve "+r.URL.Path, http.StatusNotFound)
}

func (e *Emulator) openIDConfig(host, tid string, v2 bool) map[string]any {
	base := "https://" + host + "/" + tid
	cfg := map[string]any{
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"},
		"request_uri_parameter_supported":       false,
		"tenant_region_scope":                   "OC",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	}
	if v2 {
		cfg["issuer"] = base + "/v2.0"
		cfg["authorization_endpoint"] = base + "/oauth2/v2.0/authorize"
		cfg["token_endpoint"] = base + "/oauth2/v2.0/token"
		cfg["device_authorization_endpoint"] = base + "/oauth2/v2.0/devicecode"
		cfg["end_session_endpoint"] = base + "/oauth2/v2.0/logout"
		cfg["jwks_uri"] = base + "/discovery/v2.0/keys"
	} else {
		cfg["issuer"] = base + "/"
		cfg["authorization_endpoint"] = base + "/oauth2/authorize"
		cfg["token_endpoint"] = base + "/oauth2/token"
		cfg["end_session_endpoint"] = base + "/oauth2/logout"
		cfg["jwks_uri"] = base + "/discovery/keys"
	}
	return cfg
}

// jwks is the key set that verifies the emulator's access tokens.
func (e *Emulator) jwks() map[string]any {
	pub := &e.pki.signingKey.PublicKey
	return map[string]any{"keys": []map[string]any{{
		"kty": "RSA",
		"use": "sig",
		"kid": e.pki.signingKID,
		"x5t": e.pki.signingKID,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"x5c": []string{base64.StdEncoding.EncodeToString(e.pki.signingCert.Raw)},
	}}}
}

// tokenRequestTarget says which token endpoint was called.
type tokenRequestTarget struct {
	tenantSeg string // the tenant as named in the URL ("" for ADFS)
	v2        bool   // /oauth2/v2.0/token (else /oauth2/token or ADFS)
	adfs      bool
}

// resource kinds an access token can be for.
const (
	resourceGraph = "graph"
	resourceARM   = "arm"
)

// resourceKind says what resource names: Microsoft Graph (by URL or app id, or this
// emulator's own base URL, which azure-cli's custom cloud uses as Graph's resource id), or
// Azure Resource Manager; "" for anything else.
func resourceKind(resource, host string) string {
	switch strings.ToLower(strings.TrimSuffix(resource, "/")) {
	case "https://graph.microsoft.com", graphAppID:
		return resourceGraph
	case "https://management.core.windows.net", "https://management.azure.com", armAppID:
		return resourceARM
	}
	u, err := url.Parse(resource)
	if err != nil || u.Scheme != "https" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return ""
	}
	if isSelfHost(u.Host, host) {
		return resourceGraph
	}
	return ""
}

// isSelfHost reports whether h names this emulator, as seen by a request to host: the same
// host, or a loopback name on the same port.
func isSelfHost(h, host string) bool {
	if strings.EqualFold(h, host) {
		return true
	}
	hh, hp, err1 := net.SplitHostPort(h)
	_, port, err2 := net.SplitHostPort(host)
	if err1 != nil || err2 != nil || hp != port {
		return false
	}
	if strings.EqualFold(hh, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(hh, "[]"))
	return ip != nil && ip.IsLoopback()
}

// scopeResource extracts the resource of a client-credentials scope
// ("<resource>/.default", possibly with openid, profile, offline_access).
func scopeResource(scope string) (string, *entraError) {
	var resources []string
	for _, s := range strings.Fields(scope) {
		switch strings.ToLower(s) {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		res, ok := strings.CutSuffix(s, "/.default")
		if !ok {
			return "", &entraError{status: http.StatusBadRequest, err: "invalid_scope", code: 1002012,
				desc: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
		}
		resources = append(resources, res)
	}
	switch len(resources) {
	case 0:
		return "", &entraError{status: http.StatusBadRequest, err: "invalid_scope", code: 1002012,
			desc: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
	case 1:
		return resources[0], nil
	}
	return "", &entraError{status: http.StatusBadRequest, err: "invalid_scope", code: 28000,
		desc: fmt.Sprintf("Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)}
}

// serveToken is the token endpoint: client credentials with a certificate (client
// assertion) or, when the app has password credentials, a secret.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request, target tokenRequestTarget) {
	if r.Method != http.MethodPost {
		e.writeEntraError(w, r, *invalidRequest(900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method))
		return
	}
	form := readForm(r)
	ri := infoOf(r)
	ri.appID = form.Get("client_id")
	tok, ee := e.issueToken(r, form, target)
	if ee != nil {
		e.writeEntraError(w, r, *ee)
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	if ri.clientRequestID != "" {
		w.Header().Set("client-request-id", ri.clientRequestID)
	}
	w.Header().Set("x-ms-request-id", ri.requestID)
	writeJSON(w, http.StatusOK, tok)
}

// readForm reads a form-encoded request body (at most maxTokenRequestBody); anything else
// reads as an empty form.
func readForm(r *http.Request) url.Values {
	form := url.Values{}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBody))
		if err == nil {
			form, _ = url.ParseQuery(string(body))
		}
	}
	return form
}

// issueToken checks a token request the way Entra does and returns the answer body.
func (e *Emulator) issueToken(r *http.Request, form url.Values, target tokenRequestTarget) (map[string]any, *entraError) {
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		return nil, missingParam("grant_type")
	case grant == grantDeviceCode || grant == grantDeviceCodeShort:
		return e.issueDeviceCodeToken(r, form, target)
	case grant == grantRefresh:
		return e.issueRefreshToken(r, form, target)
	case grant != grantClientCreds:
		return nil, &entraError{status: http.StatusBadRequest, err: "unsupported_grant_type", code: 70003,
			desc: fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant)}
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	scope := form.Get("scope")
	var resource string
	switch {
	case scope != "":
		var ee *entraError
		if resource, ee = scopeResource(scope); ee != nil {
			return nil, ee
		}
	case !target.v2 && !target.adfs && form.Get("resource") != "":
		resource = form.Get("resource")
	case !target.v2 && !target.adfs:
		return nil, missingParam("resource")
	default:
		return nil, missingParam("scope")
	}
	assertion, secret := form.Get("client_assertion"), form.Get("client_secret")
	if assertion == "" && secret == "" {
		return nil, invalidClient(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.now().UTC()
	t, a, p, ee := e.signInClientLocked(target, clientID)
	if ee != nil {
		return nil, ee
	}

	method, acr, thumbprint := "certificate", "2", ""
	if assertion != "" {
		var ee *entraError
		if thumbprint, ee = e.checkClientAssertion(r, form, target, t, e.signInViewLocked(a, now), now); ee != nil {
			return nil, ee
		}
	} else {
		method, acr = "secret", "1"
		matched, valid := e.signInViewLocked(a, now).checkSecret(secret, now)
		switch {
		case !matched:
			return nil, invalidClient(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", a.AppID)
		case !valid:
			return nil, invalidClient(7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", a.AppID)
		}
	}

	hosts := r.Host
	if resourceKind(resource, hosts) == "" {
		return nil, &entraError{status: http.StatusBadRequest, err: "invalid_resource", code: 500011,
			desc: fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, t.ID)}
	}
	tok, exp, err := e.mintAccessTokenFor(t, a, p, resource, hosts, acr)
	if err != nil {
		return nil, &entraError{status: http.StatusInternalServerError, err: "server_error", code: 90000, desc: "Signing the access token failed."}
	}
	st := e.signIns[signInKey(t.ID, a.AppID)]
	if st == nil {
		st = &signInStats{}
		e.signIns[signInKey(t.ID, a.AppID)] = st
	}
	st.count++
	st.last = SignInView{Time: now, Method: method, Thumbprint: thumbprint, Resource: resource}
	e.log.Debug("token issued", "app_id", a.AppID, "tenant_id", t.ID, "service_principal_id", p.spID, "method", method, "thumbprint", thumbprint, "resource", resource)

	lifetime := int(exp.Sub(now).Seconds())
	body := map[string]any{
		"token_type":     "Bearer",
		"expires_in":     lifetime,
		"ext_expires_in": lifetime,
		"access_token":   tok,
	}
	if !target.v2 {
		body["expires_on"] = fmt.Sprint(exp.Unix())
		body["not_before"] = fmt.Sprint(now.Unix())
		body["resource"] = resource
	}
	return body, nil
}

// clientPrincipal is who an app-only token names: the client application's service principal
// in the tenant that issues the token, with the Graph application permissions granted there.
type clientPrincipal struct {
	spID        string
	displayName string
	roles       []string
}

// homePrincipal is a's own service principal in its home tenant.
func homePrincipal(a *app) clientPrincipal {
	return clientPrincipal{spID: a.ServicePrincipalID, displayName: a.DisplayName, roles: a.Roles}
}

// principal is f as the client of its tenant's token endpoint.
func (f *foreignSP) principal() clientPrincipal {
	return clientPrincipal{spID: f.ID, displayName: f.DisplayName, roles: f.Roles}
}

// signInClientLocked finds who signs in with client_id at the token endpoint target: the
// tenant that issues the token, the application whose credentials are checked, and its
// service principal in that tenant. An application signs in to its home tenant through its
// own service principal (AADSTS7000229 while it has none); to another tenant only when it is
// multitenant (AADSTS700016 otherwise, as for an unknown client) and that tenant holds its
// service principal, made by admin consent (Settings.UnconsentedErrorCode otherwise). Either
// way its credentials are those of its application object, in its home tenant. The caller
// holds e.mu.
func (e *Emulator) signInClientLocked(target tokenRequestTarget, clientID string) (*tenant, *app, clientPrincipal, *entraError) {
	var t *tenant
	var a *app
	directory := target.tenantSeg
	if target.adfs {
		directory = "adfs"
		t, a = e.st.appByAppID(clientID)
	} else if t = e.st.tenantByName(target.tenantSeg); t != nil {
		a = t.appByAppID(clientID)
	}
	notFound := &entraError{status: http.StatusBadRequest, err: "unauthorized_client", code: 700016,
		desc: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, directory)}
	switch {
	case a != nil && a.ServicePrincipalID == "":
		// An application created through Graph has no service principal until one is made
		// (POST /servicePrincipals): Entra refuses its sign-ins.
		return nil, nil, clientPrincipal{}, missingServicePrincipal(a.AppID, t.ID)
	case a != nil:
		return t, a, homePrincipal(a), nil
	case t == nil:
		return nil, nil, clientPrincipal{}, notFound
	}
	// Not registered in t: an application registered in another tenant.
	_, home := e.st.appByAppID(clientID)
	if home == nil || !home.multiTenant() {
		// A single-tenant application is not available outside its home tenant, even if it
		// had been consented here while it was multitenant.
		return nil, nil, clientPrincipal{}, notFound
	}
	f := t.foreignSPByAppID(clientID)
	if f == nil {
		if e.settings.unconsentedErrorCode() == UnconsentedError700016 {
			return nil, nil, clientPrincipal{}, notFound
		}
		return nil, nil, clientPrincipal{}, missingServicePrincipal(home.AppID, t.ID)
	}
	return t, home, f.principal(), nil
}

// missingServicePrincipal is AADSTS7000229: the client has no service principal in the tenant.
func missingServicePrincipal(appID, tenantID string) *entraError {
	return invalidClient(7000229, "The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", appID, tenantID)
}

// tokenEndpointAudiences lists the aud values a client assertion may carry for this
// request: the token endpoint it was posted to, in both v1 and v2 forms, naming the tenant
// by id or domain, plus the v2.0 issuer (*inferred*: newer Entra docs allow it); for ADFS,
// its token endpoint.
func tokenEndpointAudiences(host string, t *tenant, adfs bool) []string {
	if adfs {
		return []string{"https://" + host + "/adfs/oauth2/token"}
	}
	var out []string
	for _, name := range []string{t.ID, t.Domain} {
		if name == "" {
			continue
		}
		base := "https://" + host + "/" + name
		out = append(out, base+"/oauth2/v2.0/token", base+"/oauth2/token", base+"/v2.0")
	}
	return out
}

func audienceMatches(aud string, allowed []string, host string) bool {
	u, err := url.Parse(aud)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		au, _ := url.Parse(a)
		if strings.EqualFold(u.Scheme, au.Scheme) && isSelfHost(u.Host, host) &&
			strings.EqualFold(strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(au.Path, "/")) {
			return true
		}
	}
	return false
}

// checkClientAssertion verifies a client assertion the way Entra does. It returns the SHA-1
// thumbprint of the certificate that signed it. The caller holds e.mu.
func (e *Emulator) checkClientAssertion(r *http.Request, form url.Values, target tokenRequestTarget, t *tenant, a *app, now time.Time) (string, *entraError) {
	switch at := form.Get("client_assertion_type"); {
	case at == "":
		return "", missingParam("client_assertion_type")
	case at != assertionTypeJWT:
		// *inferred*: the code Entra uses for an unknown assertion type is not documented.
		return "", invalidRequest(50027, "Invalid JWT token. The client_assertion_type '%s' is not supported.", at)
	}
	jt, err := parseJWT(form.Get("client_assertion"))
	if err != nil {
		return "", invalidRequest(50027, "JWT token is invalid or malformed.")
	}
	alg := jt.headerString("alg")
	if alg != "RS256" && alg != "PS256" {
		return "", invalidRequest(5002730, "Invalid JWT token. Unsupported key for the signing algorithm.")
	}
	// The certificate is named by x5t#S256 (SHA-256, PS256 clients) or x5t (SHA-1).
	var tp []byte
	var sha256tp bool
	if s := jt.headerString("x5t#S256"); s != "" {
		b, ok := decodeThumbprintHeader(s)
		if !ok || len(b) != sha256.Size {
			return "", invalidRequest(50027, "Invalid JWT token. The certificate thumbprint in the token header is malformed.")
		}
		tp, sha256tp = b, true
	} else if s := jt.headerString("x5t"); s != "" {
		b, ok := decodeThumbprintHeader(s)
		if !ok || len(b) != sha1.Size {
			return "", invalidRequest(50027, "Invalid JWT token. The certificate thumbprint in the token header is malformed.")
		}
		tp = b
	} else {
		return "", invalidRequest(50027, "Invalid JWT token. No certificate thumbprint specified in token header.")
	}
	tpHex := strings.ToUpper(hex.EncodeToString(tp))

	auds := jt.audiences()
	switch {
	case len(auds) > 1:
		return "", invalidRequest(5002741, "Number of audience values in the provided client credential exceed maximum allowed. %d audience values provided, maximum allowed is 1.", len(auds))
	case len(auds) == 0 || !audienceMatches(auds[0], tokenEndpointAudiences(r.Host, t, target.adfs), r.Host):
		// *inferred*: AADSTS50012 is what older Entra answered for a wrong audience.
		return "", invalidClient(50012, "Client assertion audience claim does not match Realm issuer.")
	}
	iss, sub := jt.claimString("iss"), jt.claimString("sub")
	if !strings.EqualFold(iss, sub) {
		return "", invalidClient(50048, "Subject must match the issuer claim in the client assertion.")
	}
	if !strings.EqualFold(iss, form.Get("client_id")) {
		return "", invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at %s .", oldCertDocsURL)
	}
	exp, ok := jt.claimTime("exp")
	if !ok {
		return "", invalidRequest(50027, "JWT token is invalid or malformed.")
	}
	nbf, hasNBF := jt.claimTime("nbf")
	if _, present := jt.claims["nbf"]; present && !hasNBF {
		return "", invalidRequest(50027, "JWT token is invalid or malformed.")
	}
	if now.After(exp.Add(clockSkew)) || (hasNBF && nbf.After(now.Add(clockSkew))) {
		from := time.Unix(0, 0).UTC()
		if hasNBF {
			from = nbf
		}
		return "", invalidClient(700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at %s .",
			entraTime(now), entraTime(from), entraTime(exp), certDocsURL)
	}

	var matches []keyCred
	for _, k := range a.verifyCerts() {
		var sum []byte
		if sha256tp {
			s := sha256.Sum256(k.Key)
			sum = s[:]
		} else {
			s := sha1.Sum(k.Key)
			sum = s[:]
		}
		if bytes.Equal(sum, tp) {
			matches = append(matches, k)
		}
	}
	see := fmt.Sprintf("Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/%s'", a.AppID, a.AppID)
	if len(matches) == 0 {
		return "", invalidClient(700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s', %s].", tpHex, see)
	}
	var k keyCred
	found := false
	for _, m := range matches {
		if start, end := keyWindow(m); !now.Before(start) && !now.After(end) {
			k, found = m, true
			break
		}
	}
	if !found {
		return "", e.validityError(matches[0], tpHex, see, now)
	}
	cert, err := parseCertDER(k.Key)
	if err != nil {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', %s].", tpHex, see)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "", invalidRequest(5002730, "Invalid JWT token. Unsupported key for the signing algorithm.")
	}
	if err := jt.verifyRSA(alg, pub); err != nil {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s', %s].",
			tpHex, foundKeyTime(k.StartDateTime), foundKeyTime(k.EndDateTime), see)
	}
	s1 := sha1.Sum(k.Key)
	return strings.ToUpper(hex.EncodeToString(s1[:])), nil
}

// keyWindow returns when a key credential can sign in: inside both its own dates and its
// certificate's validity (they differ only with WithAnyCredentialDates).
func keyWindow(k keyCred) (start, end time.Time) {
	start, end = k.StartDateTime, k.EndDateTime
	if c, err := parseCertDER(k.Key); err == nil {
		if c.NotBefore.After(start) {
			start = c.NotBefore
		}
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	return start, end
}

// validityError is the token endpoint's answer for a registered certificate outside its
// validity window, with the code of Settings.ValidityErrorCode. AADSTS700027 with "The key
// used is expired." is what Entra has long answered; AADSTS1000502 and AADSTS7000274 are
// newer codes Microsoft's own client library (microsoft-identity-web) handles as a certificate
// outside its validity window, whose messages are not published: their wording here is
// *unconfirmed*, in Entra's shape.
func (e *Emulator) validityError(k keyCred, tpHex, see string, now time.Time) *entraError {
	start, end := keyWindow(k)
	switch e.settings.ValidityErrorCode {
	case ValidityError1000502:
		return invalidClient(ValidityError1000502, "The certificate with thumbprint '%s' used to sign the client assertion is not within its validity window. [Found key 'Start=%s, End=%s', Current time: %s]. Review the documentation at %s .",
			tpHex, foundKeyTime(start), foundKeyTime(end), entraTime(now), certDocsURL)
	case ValidityError7000274:
		return invalidClient(ValidityError7000274, "Client assertion contains an invalid signature. [Reason - The certificate used to sign the client assertion is not within its validity period., Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s', %s].",
			tpHex, foundKeyTime(start), foundKeyTime(end), see)
	}
	reason := "The key used is expired."
	if now.Before(start) {
		reason = "The key used is not yet valid." // *inferred*
	}
	return invalidClient(700027, "Client assertion contains an invalid signature. [Reason - %s, Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s', %s].",
		reason, tpHex, foundKeyTime(start), foundKeyTime(end), see)
}

// entraTime formats a time as Entra's messages do: 2024-10-02T22:05:03.6755165Z.
func entraTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// foundKeyTime formats a key's dates as Entra's 700027 messages do: 02/07/2021 17:00:39.
func foundKeyTime(t time.Time) string { return t.UTC().Format("01/02/2006 15:04:05") }

// mintAccessToken makes an access token as the token endpoint does for a resource named the
// standard way. The caller holds e.mu.
func (e *Emulator) mintAccessToken(t *tenant, a *app, resource, acr string) (string, time.Time, error) {
	host := ""
	if e.url != "" {
		host = strings.TrimPrefix(e.url, "https://")
	}
	if resourceKind(resource, host) == "" {
		return "", time.Time{}, fmt.Errorf("unknown resource %q", resource)
	}
	return e.mintAccessTokenFor(t, a, homePrincipal(a), resource, host, acr)
}

// mintAccessTokenFor signs an access token for application a in tenant t, naming its service
// principal p there: a v1.0 app-only token with p's Graph roles when the resource is Graph.
// The caller holds e.mu.
func (e *Emulator) mintAccessTokenFor(t *tenant, a *app, p clientPrincipal, resource, host, acr string) (string, time.Time, error) {
	now := e.cfg.now().UTC().Truncate(time.Second)
	exp := now.Add(e.cfg.tokenLifetime)
	iss := "https://sts.windows.net/" + t.ID + "/"
	claims := map[string]any{
		"aud":             resource,
		"iss":             iss,
		"iat":             now.Unix(),
		"nbf":             now.Unix(),
		"exp":             exp.Unix(),
		"aio":             base64.RawURLEncoding.EncodeToString([]byte(newGUID())),
		"app_displayname": p.displayName,
		"appid":           a.AppID,
		"appidacr":        acr,
		"azp":             a.AppID,
		"idp":             iss,
		"idtyp":           "app",
		"oid":             p.spID,
		"rh":              "0.emulated.",
		"sub":             p.spID,
		"tid":             t.ID,
		"uti":             base64.RawURLEncoding.EncodeToString([]byte(newGUID()))[:22],
		"ver":             "1.0",
	}
	if resourceKind(resource, host) == resourceGraph && len(p.roles) > 0 {
		claims["roles"] = append([]string{}, p.roles...)
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": e.pki.signingKID, "kid": e.pki.signingKID}
	tok, err := signRS256(e.pki.signingKey, header, claims)
	return tok, exp, err
}

// caller is who an access token says is calling: an application on its own (an app-only
// token: spID and roles), or a user through a client application (a delegated token: userID
// and scopes).
type caller struct {
	tenantID string
	appID    string
	// spID is the calling service principal of an app-only token ("" for a user).
	spID string
	// roles are the app roles (application permissions) of an app-only token.
	roles []string
	// userID is the signed-in user of a delegated token ("" for an app).
	userID string
	// scopes are the delegated permissions (scp) of a delegated token.
	scopes []string
	kind   string // resourceGraph or resourceARM
}

// delegated reports whether the token is a user's.
func (c caller) delegated() bool { return c.userID != "" }

// hasRole reports whether an app-only token holds one of roles.
func (c caller) hasRole(roles ...string) bool {
	if c.delegated() {
		return false
	}
	for _, r := range roles {
		if containsFold(c.roles, r) {
			return true
		}
	}
	return false
}

// hasScope reports whether a delegated token holds one of scopes.
func (c caller) hasScope(scopes ...string) bool {
	if !c.delegated() {
		return false
	}
	for _, s := range scopes {
		if containsFold(c.scopes, s) {
			return true
		}
	}
	return false
}

// ownerID is the id the caller appears as among an application's owners.
func (c caller) ownerID() string {
	if c.delegated() {
		return c.userID
	}
	return c.spID
}

// verifyAccessToken checks the bearer token of a request to Graph or ARM. It returns
// Graph's 401 message on failure.
func (e *Emulator) verifyAccessToken(r *http.Request) (caller, string) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return caller{}, "Access token is empty."
	}
	jt, err := parseJWT(tok)
	if err != nil {
		return caller{}, "CompactToken parsing failed with error code: 80049217"
	}
	if jt.headerString("alg") != "RS256" || jt.verifyRSA("RS256", &e.pki.signingKey.PublicKey) != nil {
		return caller{}, "Invalid signature"
	}
	c := caller{
		tenantID: jt.claimString("tid"),
		appID:    jt.claimString("appid"),
		spID:     jt.claimString("oid"),
	}
	if jt.claimString("idtyp") == "user" {
		c.userID, c.spID = c.spID, ""
		c.scopes = strings.Fields(jt.claimString("scp"))
	}
	if rs, ok := jt.claims["roles"].([]any); ok && !c.delegated() {
		for _, v := range rs {
			if s, ok := v.(string); ok {
				c.roles = append(c.roles, s)
			}
		}
	}
	e.mu.Lock()
	known := e.st.tenantByName(c.tenantID) != nil && jt.claimString("iss") == "https://sts.windows.net/"+strings.ToLower(c.tenantID)+"/"
	e.mu.Unlock()
	if !known {
		return caller{}, "Access token validation failure. Invalid issuer."
	}
	auds := jt.audiences()
	if len(auds) == 1 {
		c.kind = resourceKind(auds[0], r.Host)
	}
	now := e.cfg.now()
	exp, okExp := jt.claimTime("exp")
	nbf, okNBF := jt.claimTime("nbf")
	switch {
	case !okExp || now.After(exp.Add(clockSkew)):
		return caller{}, "Lifetime validation failed, the token is expired."
	case okNBF && nbf.After(now.Add(clockSkew)):
		return caller{}, "Lifetime validation failed, the token is not yet valid."
	}
	infoOf(r).appID = c.appID
	return c, ""
}

// serveARM answers the Azure Resource Manager calls az login makes: no subscriptions, and
// the tenant.
func (e *Emulator) serveARM(w http.ResponseWriter, r *http.Request) {
	c, msg := e.verifyAccessToken(r)
	if msg == "" && c.kind != resourceARM && c.kind != resourceGraph {
		msg = "Access token validation failure. Invalid audience."
	}
	if msg != "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://`+r.Host+`/common/oauth2/authorize", error="invalid_token", error_description="`+msg+`"`)
		e.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return
	}
	if r.Method != http.MethodGet {
		e.writeGraphError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The emulator serves GET only here.")
		return
	}
	if r.URL.Path == "/tenants" {
		writeJSON(w, http.StatusOK, map[string]any{"value": []map[string]any{{
			"id": "/tenants/" + c.tenantID, "tenantId": c.tenantID, "tenantCategory": "Home",
		}}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
}
