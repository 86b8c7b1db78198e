package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The device code flow (docs/graph.md, "The device code flow"): a public client asks
// /{tenant}/oauth2/v2.0/devicecode for a user code, a person approves it (in the emulator:
// POST /_emulator/devicecode/approve, the page at /_emulator/devicelogin, ApproveDeviceCode, or
// WithDeviceCodeAutoApprove), and the client polls the token endpoint with
// grant_type=urn:ietf:params:oauth:grant-type:device_code until it gets a delegated token.
// The flows, the refresh tokens and the consents live in memory: a restarted emulator has
// none.

const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// grantDeviceCodeShort is the form MSAL-Go sends (observed on the wire; Entra takes both).
	grantDeviceCodeShort = "device_code"
	grantRefresh         = "refresh_token"
	// DefaultDeviceCodeLifetime is expires_in of a device code (Entra: 15 minutes).
	DefaultDeviceCodeLifetime = 15 * time.Minute
	// deviceCodeInterval is the polling interval Entra asks for, in seconds.
	deviceCodeInterval = 5
	// userCodeAlphabet are the characters of user codes (upper-case letters and digits, as
	// Entra's nine-character codes).
	userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	userCodeLength   = 9
)

// Device code states.
const (
	deviceCodePending  = "pending"
	deviceCodeApproved = "approved"
	deviceCodeDeclined = "declined"
	deviceCodeRedeemed = "redeemed"
)

// WithDeviceCodeAutoApprove approves every device code as soon as a client asks for it, as if
// user (a userPrincipalName or object id; "" for the tenant's first Global Administrator)
// signed in at once and consented to what the client asked. `certagent dev` and tests that
// are not about signing in use it.
func WithDeviceCodeAutoApprove(user string) Option {
	return func(c *config) { c.autoApprove, c.autoApproveUser = true, user }
}

// WithDeviceCodeLifetime sets expires_in of device codes (default DefaultDeviceCodeLifetime).
func WithDeviceCodeLifetime(d time.Duration) Option {
	return func(c *config) { c.deviceCodeLifetime = d }
}

// deviceAuth is one device code flow.
type deviceAuth struct {
	deviceCode string
	userCode   string
	tenantID   string
	clientID   string
	clientName string
	req        delegatedRequest
	expires    time.Time
	state      string
	userID     string
	// granted are the resource scopes the user consented to (short names).
	granted []string
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	tenantID string
	userID   string
	clientID string
}

// delegatedRequest is the scope parameter of a public client's request.
type delegatedRequest struct {
	// resource names the resource as the client did ("https://graph.microsoft.com", this
	// emulator's base URL, an app id...); kind is resourceGraph or resourceARM.
	resource string
	kind     string
	// names are the resource scopes by short name (".default" as is), in the order asked.
	names []string
	// asked are the resource scopes exactly as the client wrote them, by short name.
	asked map[string]string
	// oidc are the OpenID Connect scopes asked for (openid, profile, email, offline_access).
	oidc []string
}

func (d delegatedRequest) wants(oidcScope string) bool { return containsFold(d.oidc, oidcScope) }

// parseDelegatedScopes reads the scope parameter of a device code or refresh token request.
// Scopes name their resource ("https://graph.microsoft.com/Application.ReadWrite.All", or
// this emulator's base URL instead of Graph's); a bare scope is Graph's, as in Entra.
func parseDelegatedScopes(scope, host string) (delegatedRequest, *entraError) {
	d := delegatedRequest{asked: map[string]string{}}
	invalid := func(s string) *entraError {
		return &entraError{status: http.StatusBadRequest, err: "invalid_scope", code: 70011,
			desc: fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope '%s' is not valid.", s)}
	}
	for _, s := range strings.Fields(scope) {
		switch strings.ToLower(s) {
		case "openid", "profile", "offline_access", "email":
			if !containsFold(d.oidc, s) {
				d.oidc = append(d.oidc, strings.ToLower(s))
			}
			continue
		}
		resource, name := "https://graph.microsoft.com", s
		if i := strings.LastIndex(s, "/"); i >= 0 {
			resource, name = s[:i], s[i+1:]
			if strings.HasSuffix(resource, "/") { // "https://management.core.windows.net//.default"
				resource = strings.TrimSuffix(resource, "/")
			}
		}
		kind := resourceKind(resource, host)
		if kind == "" {
			return d, &entraError{status: http.StatusBadRequest, err: "invalid_resource", code: 500011,
				desc: fmt.Sprintf("The resource principal named %s was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource)}
		}
		switch {
		case d.resource == "":
			d.resource, d.kind = resource, kind
		case d.kind != kind || !strings.EqualFold(strings.TrimSuffix(d.resource, "/"), strings.TrimSuffix(resource, "/")):
			return d, &entraError{status: http.StatusBadRequest, err: "invalid_scope", code: 28000,
				desc: fmt.Sprintf("Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)}
		}
		if name != ".default" {
			canon, ok := canonicalScope(name)
			if !ok || kind != resourceGraph {
				return d, invalid(s)
			}
			name = canon
		}
		if !slices.Contains(d.names, name) {
			d.names = append(d.names, name)
			d.asked[name] = s
		}
	}
	if d.resource == "" {
		return d, invalid(scope)
	}
	return d, nil
}

// consentKey names the consents given to a client in a tenant.
func consentKey(tenantID, clientID string) string {
	return strings.ToLower(tenantID) + "/" + strings.ToLower(clientID)
}

// grantableLocked returns the Graph scopes a request for d may get for clientID in tenantID
// without asking the user: for ".default", what the client is preauthorized for and what was
// consented before; for named scopes, those of them consented before or preauthorized. The
// caller holds e.mu.
func (e *Emulator) grantableLocked(tenantID, clientID string, d delegatedRequest) (granted, missing []string) {
	if d.kind != resourceGraph {
		return nil, nil // ARM: user_impersonation, always
	}
	have := slices.Clone(e.consents[consentKey(tenantID, clientID)])
	if pc, ok := publicClientByID(clientID); ok {
		for _, s := range pc.preauthorized {
			if !slices.Contains(have, s) {
				have = append(have, s)
			}
		}
	}
	for _, n := range d.names {
		switch {
		case n == ".default":
			for _, h := range have {
				if !slices.Contains(granted, h) {
					granted = append(granted, h)
				}
			}
		case slices.Contains(have, n):
			if !slices.Contains(granted, n) {
				granted = append(granted, n)
			}
		default:
			missing = append(missing, n)
		}
	}
	return granted, missing
}

// serveDeviceCode is POST /{tenant}/oauth2/v2.0/devicecode.
func (e *Emulator) serveDeviceCode(w http.ResponseWriter, r *http.Request, tenantSeg string) {
	if r.Method != http.MethodPost {
		e.writeEntraError(w, r, *invalidRequest(900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method))
		return
	}
	form := readForm(r)
	infoOf(r).appID = form.Get("client_id")
	body, ee := e.startDeviceCode(r, form, tenantSeg)
	if ee != nil {
		e.writeEntraError(w, r, *ee)
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) startDeviceCode(r *http.Request, form url.Values, tenantSeg string) (map[string]any, *entraError) {
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	scope := form.Get("scope")
	if scope == "" {
		return nil, missingParam("scope")
	}
	d, ee := parseDelegatedScopes(scope, r.Host)
	if ee != nil {
		return nil, ee
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.st.tenantByName(tenantSeg)
	if t == nil {
		return nil, invalidRequest(90002, "Tenant '%s' not found.", tenantSeg)
	}
	name, ok := e.clientNameLocked(t, clientID)
	if !ok {
		return nil, &entraError{status: http.StatusBadRequest, err: "unauthorized_client", code: 700016,
			desc: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenantSeg)}
	}
	now := e.cfg.now()
	e.pruneDeviceCodesLocked(now)
	da := &deviceAuth{
		deviceCode: randomToken(96),
		userCode:   newUserCode(),
		tenantID:   t.ID,
		clientID:   strings.ToLower(clientID),
		clientName: name,
		req:        d,
		expires:    now.Add(e.cfg.deviceCodeLifetime),
		state:      deviceCodePending,
	}
	e.deviceCodes[da.deviceCode] = da
	verification := "https://" + r.Host + "/_emulator/devicelogin"
	e.log.Info("device code issued", "user_code", da.userCode, "client_id", clientID, "scope", scope)
	if e.cfg.autoApprove {
		if err := e.approveLocked(da, e.cfg.autoApproveUser, nil, false); err != nil {
			e.log.Warn("device code auto-approval failed", "err", err)
		}
	}
	return map[string]any{
		"user_code":        da.userCode,
		"device_code":      da.deviceCode,
		"verification_uri": verification,
		"expires_in":       int(e.cfg.deviceCodeLifetime / time.Second),
		"interval":         deviceCodeInterval,
		"message":          fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", verification, da.userCode),
	}, nil
}

// clientNameLocked returns the display name of a client that may use the device code flow
// in t: a first-party public client, an application of the tenant, or a multitenant
// application of another tenant consented in t. The caller holds e.mu.
func (e *Emulator) clientNameLocked(t *tenant, clientID string) (string, bool) {
	if pc, ok := publicClientByID(clientID); ok {
		return pc.displayName, true
	}
	if a := t.appByAppID(clientID); a != nil {
		return a.DisplayName, true
	}
	if f := t.foreignSPByAppID(clientID); f != nil {
		if _, home := e.st.appByAppID(clientID); home != nil && home.multiTenant() {
			return f.DisplayName, true
		}
	}
	return "", false
}

func (e *Emulator) pruneDeviceCodesLocked(now time.Time) {
	for k, da := range e.deviceCodes {
		if now.Sub(da.expires) > time.Hour {
			delete(e.deviceCodes, k)
		}
	}
}

// approveLocked approves (or declines) da as user, consenting to scopes (nil: all asked
// for). The caller holds e.mu.
func (e *Emulator) approveLocked(da *deviceAuth, userName string, scopes []string, decline bool) error {
	if da.state != deviceCodePending {
		return fmt.Errorf("device code %s is %s, not pending", da.userCode, da.state)
	}
	if e.cfg.now().After(da.expires) {
		return fmt.Errorf("device code %s has expired", da.userCode)
	}
	t := e.st.tenantByName(da.tenantID)
	if t == nil {
		return fmt.Errorf("tenant %s: %w", da.tenantID, ErrNotFound)
	}
	var u *user
	if userName == "" {
		for _, cand := range t.Users {
			if cand.hasDirectoryRole(DirectoryRoleGlobalAdmin) {
				u = cand
				break
			}
		}
		if u == nil {
			return fmt.Errorf("tenant %s has no Global Administrator to approve device code %s: name the user", t.ID, da.userCode)
		}
	} else if u = t.userByName(userName); u == nil {
		return fmt.Errorf("user %q of tenant %s: %w", userName, t.ID, ErrNotFound)
	}
	da.userID = u.ID
	if decline {
		da.state = deviceCodeDeclined
		return nil
	}
	// The person consents to what the client asked for (or to the scopes named), on top of
	// what was consented before.
	if da.req.kind == resourceGraph {
		consent := []string{}
		for _, n := range da.req.names {
			if n == ".default" {
				continue
			}
			if scopes == nil || containsFold(scopes, n) {
				consent = append(consent, n)
			}
		}
		key := consentKey(da.tenantID, da.clientID)
		for _, n := range consent {
			if !slices.Contains(e.consents[key], n) {
				e.consents[key] = append(e.consents[key], n)
			}
		}
		da.granted, _ = e.grantableLocked(da.tenantID, da.clientID, da.req)
	}
	da.state = deviceCodeApproved
	e.log.Info("device code approved", "user_code", da.userCode, "user", u.UserPrincipalName, "scopes", strings.Join(da.granted, " "))
	return nil
}

// ApproveDeviceCode approves the device code flow with userCode as user (userPrincipalName or
// object id; "" for the tenant's first Global Administrator), who consents to scopes (nil:
// everything the client asked for). POST /_emulator/devicecode/approve calls it.
func (e *Emulator) ApproveDeviceCode(userCode, user string, scopes []string) error {
	return e.decideDeviceCode(userCode, user, scopes, false)
}

// DeclineDeviceCode declines the device code flow with userCode: the client's next poll gets
// authorization_declined.
func (e *Emulator) DeclineDeviceCode(userCode, user string) error {
	return e.decideDeviceCode(userCode, user, nil, true)
}

func (e *Emulator) decideDeviceCode(userCode, user string, scopes []string, decline bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	code := strings.ToUpper(strings.Join(strings.Fields(strings.ReplaceAll(userCode, "-", "")), ""))
	for _, da := range e.deviceCodes {
		if da.userCode == code {
			return e.approveLocked(da, user, scopes, decline)
		}
	}
	return fmt.Errorf("device code %q: %w", userCode, ErrNotFound)
}

// DeviceCodeView describes a device code flow (GET /_emulator/devicecode).
type DeviceCodeView struct {
	UserCode   string    `json:"userCode"`
	TenantID   string    `json:"tenantId"`
	ClientID   string    `json:"clientId"`
	ClientName string    `json:"clientName"`
	Resource   string    `json:"resource"`
	Scopes     []string  `json:"scopes"`
	State      string    `json:"state"`
	ExpiresAt  time.Time `json:"expiresAt"`
	// User is the userPrincipalName of who approved or declined it.
	User    string   `json:"user,omitempty"`
	Granted []string `json:"granted,omitempty"`
}

// DeviceCodes returns the device code flows, newest first.
func (e *Emulator) DeviceCodes() []DeviceCodeView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []DeviceCodeView{}
	for _, da := range e.deviceCodes {
		v := DeviceCodeView{UserCode: da.userCode, TenantID: da.tenantID, ClientID: da.clientID, ClientName: da.clientName,
			Resource: da.req.resource, Scopes: slices.Clone(da.req.names), State: da.state, ExpiresAt: da.expires.UTC(),
			Granted: slices.Clone(da.granted)}
		if e.cfg.now().After(da.expires) && da.state == deviceCodePending {
			v.State = "expired"
		}
		if t := e.st.tenantByName(da.tenantID); t != nil && da.userID != "" {
			if u := t.userByID(da.userID); u != nil {
				v.User = u.UserPrincipalName
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b DeviceCodeView) int { return b.ExpiresAt.Compare(a.ExpiresAt) })
	return out
}

// issueDeviceCodeToken answers the token endpoint's device_code grant.
func (e *Emulator) issueDeviceCodeToken(r *http.Request, form url.Values, target tokenRequestTarget) (map[string]any, *entraError) {
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	code := form.Get("device_code")
	if code == "" {
		return nil, missingParam("device_code")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.now()
	da := e.deviceCodes[code]
	badCode := &entraError{status: http.StatusBadRequest, err: "bad_verification_code", code: 70018,
		desc: "Invalid verification code due to an invalid or already redeemed device code."}
	if da == nil || !strings.EqualFold(da.clientID, clientID) {
		return nil, badCode
	}
	t := e.st.tenantByName(da.tenantID)
	if t == nil || (!target.adfs && e.st.tenantByName(target.tenantSeg) != t) {
		return nil, badCode
	}
	switch {
	case da.state == deviceCodeRedeemed:
		return nil, badCode
	case now.After(da.expires):
		return nil, &entraError{status: http.StatusBadRequest, err: "expired_token", code: 70020,
			desc: "The provided value for the input parameter 'device_code' is not valid. This device code has expired."}
	case da.state == deviceCodePending:
		return nil, &entraError{status: http.StatusBadRequest, err: "authorization_pending", code: 70016,
			desc: "The provided request has not yet been authorized by the user. The user must input their code."}
	case da.state == deviceCodeDeclined:
		// *inferred*: Entra documents authorization_declined, not its AADSTS code.
		return nil, &entraError{status: http.StatusBadRequest, err: "authorization_declined", code: 65004,
			desc: "User declined to consent to access the app."}
	}
	if _, public := publicClientByID(clientID); !public {
		// An app registration that is not a public client cannot redeem without a credential.
		return nil, invalidClient(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	u := t.userByID(da.userID)
	if u == nil {
		return nil, badCode
	}
	da.state = deviceCodeRedeemed
	return e.userTokenResponseLocked(r, form, target, t, u, da.clientID, da.req, da.granted)
}

// issueRefreshToken answers the token endpoint's refresh_token grant for a public client.
func (e *Emulator) issueRefreshToken(r *http.Request, form url.Values, target tokenRequestTarget) (map[string]any, *entraError) {
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, missingParam("refresh_token")
	}
	scope := form.Get("scope")
	if scope == "" {
		return nil, missingParam("scope")
	}
	d, ee := parseDelegatedScopes(scope, r.Host)
	if ee != nil {
		return nil, ee
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.refreshTokens[rt]
	// *inferred*: the code Entra answers for an unknown refresh token.
	bad := &entraError{status: http.StatusBadRequest, err: "invalid_grant", code: 9002313, desc: "Invalid request. Request is malformed or invalid."}
	if g == nil || !strings.EqualFold(g.clientID, clientID) {
		return nil, bad
	}
	t := e.st.tenantByName(g.tenantID)
	if t == nil || (!target.adfs && e.st.tenantByName(target.tenantSeg) != t) {
		return nil, bad
	}
	u := t.userByID(g.userID)
	if u == nil {
		return nil, bad
	}
	granted, missing := e.grantableLocked(t.ID, g.clientID, d)
	if len(missing) > 0 {
		name, _ := e.clientNameLocked(t, clientID)
		return nil, &entraError{status: http.StatusBadRequest, err: "invalid_grant", code: 65001,
			desc: fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", clientID, name)}
	}
	return e.userTokenResponseLocked(r, form, target, t, u, g.clientID, d, granted)
}

// userTokenResponseLocked builds the token endpoint's answer for a user: an access token for
// d's resource with granted as scp, and, as asked for, a refresh token (offline_access), an
// id token (openid) and client_info. The caller holds e.mu.
func (e *Emulator) userTokenResponseLocked(r *http.Request, form url.Values, target tokenRequestTarget, t *tenant, u *user, clientID string, d delegatedRequest, granted []string) (map[string]any, *entraError) {
	scp := granted
	if d.kind == resourceARM {
		scp = []string{"user_impersonation"}
	}
	tok, exp, err := e.mintUserToken(t, u, clientID, d.resource, scp)
	if err != nil {
		return nil, &entraError{status: http.StatusInternalServerError, err: "server_error", code: 90000, desc: "Signing the access token failed."}
	}
	// The scopes the token is good for, spelled as the client asked for them (MSAL matches
	// them to its request to find the token in its cache).
	var answered []string
	for _, n := range d.names {
		if n == ".default" || slices.Contains(granted, n) || d.kind == resourceARM {
			answered = append(answered, d.asked[n])
		}
	}
	answered = append(answered, d.oidc...)
	now := e.cfg.now().UTC().Truncate(time.Second)
	lifetime := int(exp.Sub(now).Seconds())
	body := map[string]any{
		"token_type":     "Bearer",
		"scope":          strings.Join(answered, " "),
		"expires_in":     lifetime,
		"ext_expires_in": lifetime,
		"access_token":   tok,
	}
	if !target.v2 {
		body["expires_on"] = fmt.Sprint(exp.Unix())
		body["not_before"] = fmt.Sprint(now.Unix())
		body["resource"] = d.resource
	}
	if d.wants("offline_access") {
		rt := randomToken(128)
		e.refreshTokens[rt] = &refreshGrant{tenantID: t.ID, userID: u.ID, clientID: strings.ToLower(clientID)}
		body["refresh_token"] = rt
	}
	if d.wants("openid") {
		idt, err := e.mintIDToken(t, u, clientID, r.Host, target)
		if err != nil {
			return nil, &entraError{status: http.StatusInternalServerError, err: "server_error", code: 90000, desc: "Signing the id token failed."}
		}
		body["id_token"] = idt
	}
	if form.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": u.ID, "utid": t.ID})
		body["client_info"] = base64.RawURLEncoding.EncodeToString(ci)
	}
	e.log.Debug("user token issued", "user", u.UserPrincipalName, "client_id", clientID, "resource", d.resource, "scp", strings.Join(scp, " "))
	return body, nil
}

// mintUserToken signs a delegated access token (v1.0) for user u through clientID, for
// resource, with the scopes scp. The caller holds e.mu.
func (e *Emulator) mintUserToken(t *tenant, u *user, clientID, resource string, scp []string) (string, time.Time, error) {
	now := e.cfg.now().UTC().Truncate(time.Second)
	exp := now.Add(e.cfg.tokenLifetime)
	iss := "https://sts.windows.net/" + t.ID + "/"
	name, _ := e.clientNameLocked(t, clientID)
	wids := []string{}
	for _, r := range u.DirectoryRoles {
		if id := directoryRoleTemplateIDs[r]; id != "" {
			wids = append(wids, id)
		}
	}
	claims := map[string]any{
		"aud":             resource,
		"iss":             iss,
		"iat":             now.Unix(),
		"nbf":             now.Unix(),
		"exp":             exp.Unix(),
		"acr":             "1",
		"aio":             base64.RawURLEncoding.EncodeToString([]byte(newGUID())),
		"amr":             []string{"pwd", "mfa"},
		"app_displayname": name,
		"appid":           strings.ToLower(clientID),
		"appidacr":        "0",
		"idtyp":           "user",
		"name":            u.DisplayName,
		"oid":             u.ID,
		"rh":              "0.emulated.",
		"scp":             strings.Join(scp, " "),
		"sub":             derivedGUID("sub:" + u.ID + ":" + strings.ToLower(clientID)),
		"tid":             t.ID,
		"unique_name":     u.UserPrincipalName,
		"upn":             u.UserPrincipalName,
		"uti":             base64.RawURLEncoding.EncodeToString([]byte(newGUID()))[:22],
		"ver":             "1.0",
		"wids":            wids,
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": e.pki.signingKID, "kid": e.pki.signingKID}
	tok, err := signRS256(e.pki.signingKey, header, claims)
	return tok, exp, err
}

// mintIDToken signs an id token (v2.0) for u, for clientID. The caller holds e.mu.
func (e *Emulator) mintIDToken(t *tenant, u *user, clientID, host string, target tokenRequestTarget) (string, error) {
	now := e.cfg.now().UTC().Truncate(time.Second)
	iss := "https://" + host + "/" + t.ID + "/v2.0"
	if target.adfs {
		iss = "https://" + host + "/adfs"
	}
	claims := map[string]any{
		"aud":                strings.ToLower(clientID),
		"iss":                iss,
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"name":               u.DisplayName,
		"oid":                u.ID,
		"preferred_username": u.UserPrincipalName,
		"upn":                u.UserPrincipalName,
		"sub":                derivedGUID("sub:" + u.ID + ":" + strings.ToLower(clientID)),
		"tid":                t.ID,
		"ver":                "2.0",
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "kid": e.pki.signingKID}
	return signRS256(e.pki.signingKey, header, claims)
}

// UserAccessToken mints a delegated access token for user (userPrincipalName or object id)
// through clientID, for resource (for example "https://graph.microsoft.com"), with the Graph
// scopes given, exactly as the token endpoint would after a device code sign-in, for tests
// that are not about signing in (a fake `az account get-access-token`, say).
func (e *Emulator) UserAccessToken(userName, clientID, resource string, scopes []string) (string, time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.st.Tenants {
		if u := t.userByName(userName); u != nil {
			host := strings.TrimPrefix(e.url, "https://")
			if resourceKind(resource, host) == "" {
				return "", time.Time{}, fmt.Errorf("minting user token: unknown resource %q", resource)
			}
			return e.mintUserToken(t, u, clientID, resource, scopes)
		}
	}
	return "", time.Time{}, fmt.Errorf("minting user token: user %q: %w", userName, ErrNotFound)
}

// newUserCode returns a user code of userCodeLength characters.
func newUserCode() string {
	b := make([]byte, userCodeLength)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// randomToken returns n random bytes in base64url: an opaque device code or refresh token.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// approveRequest is the body of POST /_emulator/devicecode/approve.
type approveRequest struct {
	UserCode  string   `json:"userCode"`
	UserCode2 string   `json:"user_code"`
	User      string   `json:"user"`
	Scopes    []string `json:"scopes"`
	Decline   bool     `json:"decline"`
}

// serveControlDeviceCode serves GET /_emulator/devicecode and POST
// /_emulator/devicecode/approve.
func (e *Emulator) serveControlDeviceCode(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_emulator/devicecode":
		if r.Method != http.MethodGet {
			writeControlError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": e.DeviceCodes()})
	case "/_emulator/devicecode/approve":
		if r.Method != http.MethodPost {
			writeControlError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		var in approveRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeControlError(w, http.StatusBadRequest, "decoding approval: "+err.Error())
			return
		}
		code := in.UserCode
		if code == "" {
			code = in.UserCode2
		}
		if code == "" {
			writeControlError(w, http.StatusBadRequest, "userCode is required")
			return
		}
		var err error
		if in.Decline {
			err = e.DeclineDeviceCode(code, in.User)
		} else {
			err = e.ApproveDeviceCode(code, in.User, in.Scopes)
		}
		if err != nil {
			status := http.StatusConflict
			if errors.Is(err, ErrNotFound) {
				status = http.StatusNotFound
			}
			writeControlError(w, status, err.Error())
			return
		}
		for _, v := range e.DeviceCodes() {
			if v.UserCode == strings.ToUpper(code) {
				writeJSON(w, http.StatusOK, v)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeControlError(w, http.StatusNotFound, "no control route "+r.URL.Path+" (try /_emulator/devicecode, /_emulator/devicecode/approve)")
	}
}

// serveDeviceLogin is the page a person opens to approve a code (the verification_uri the
// emulator hands out): a form for the code and the user, approving as POST
// /_emulator/devicecode/approve does.
func (e *Emulator) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	msg := ""
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			if err := e.ApproveDeviceCode(r.PostForm.Get("code"), r.PostForm.Get("user"), nil); err != nil {
				msg = "Not approved: " + err.Error()
			} else {
				msg = "Approved. You can close this page; the program that asked goes on by itself."
			}
		}
	} else if r.Method != http.MethodGet {
		writeControlError(w, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `<!doctype html><html><head><title>Emulated Entra ID: device sign-in</title></head><body>
<h1>Emulated Entra ID: enter code</h1>
<p>%s</p>
<form method="post">
<p><label>Code <input name="code" autofocus></label></p>
<p><label>User (empty: the tenant's first Global Administrator) <input name="user"></label></p>
<p><button type="submit">Sign in and consent</button></p>
</form></body></html>`, htmlEscape(msg))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
