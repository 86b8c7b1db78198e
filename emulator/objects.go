package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Creating applications and service principals, owners, and app role assignments: what
// `certagent setup` does as an administrator (docs/graph.md, "Onboarding: creating and
// granting"). Permissions follow the "Permissions" sections of Graph's reference pages;
// delegated calls also need the signed-in user's directory role where Entra asks for one.

// microsoftTenantID is the tenant that owns Microsoft's first-party applications, such as
// Microsoft Graph (its service principal's appOwnerOrganizationId).
const microsoftTenantID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

var spAppIDSegment = regexp.MustCompile(`^(?i:servicePrincipals)\((?i:appId)='([^']*)'\)$`)

// spProperties are structural properties of microsoft.graph.servicePrincipal (v1.0) the
// emulator writes, in Graph's order; those it does not model read as null or [].
var spProperties = []string{
	"id", "deletedDateTime", "accountEnabled", "alternativeNames", "appDescription", "appDisplayName", "appId",
	"applicationTemplateId", "appOwnerOrganizationId", "appRoleAssignmentRequired", "createdDateTime", "description",
	"disabledByMicrosoftStatus", "displayName", "homepage", "loginUrl", "logoutUrl", "notes", "notificationEmailAddresses",
	"preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint", "replyUrls", "servicePrincipalNames",
	"servicePrincipalType", "signInAudience", "tags", "tokenEncryptionKeyId", "info", "samlSingleSignOnSettings",
	"verifiedPublisher", "addIns", "appRoles", "keyCredentials", "oauth2PermissionScopes", "passwordCredentials",
	"resourceSpecificApplicationPermissions",
}

var servicePrincipalType = entityType{name: "servicePrincipal", title: "ServicePrincipal", props: spProperties}

// spView is a service principal as Graph shows it: an application's, or Microsoft Graph's.
type spView struct {
	id, appID, displayName, ownerTenant, audience string
	created                                       time.Time
	graph                                         bool
}

func appSP(t *tenant, a *app) spView {
	return spView{id: a.ServicePrincipalID, appID: a.AppID, displayName: a.DisplayName, ownerTenant: t.ID,
		audience: a.audience(), created: a.CreatedDateTime}
}

// foreignSPView is f as Graph shows it: appOwnerOrganizationId names the application's home
// tenant, signInAudience is the application's.
func foreignSPView(st *tenantState, f *foreignSP) spView {
	v := spView{id: f.ID, appID: f.AppID, displayName: f.DisplayName, audience: SignInAudienceMultipleOrgs, created: f.CreatedDateTime}
	if ht, ha := st.appByAppID(f.AppID); ha != nil {
		v.ownerTenant, v.audience = ht.ID, ha.audience()
	}
	return v
}

func graphSP(t *tenant) spView {
	return spView{id: graphSPID(t), appID: graphAppID, displayName: "Microsoft Graph", ownerTenant: microsoftTenantID,
		audience: "AzureADMultipleOrgs", graph: true}
}

// servicePrincipalsLocked lists the service principals of t, a tenant of st: Microsoft
// Graph's, then those of its applications that have one, then those of other tenants'
// applications consented in t. The caller holds e.mu.
func servicePrincipalsLocked(st *tenantState, t *tenant) []spView {
	out := []spView{graphSP(t)}
	for _, a := range t.Apps {
		if a.ServicePrincipalID != "" {
			out = append(out, appSP(t, a))
		}
	}
	for _, f := range t.ForeignSPs {
		out = append(out, foreignSPView(st, f))
	}
	return out
}

// spByIDLocked finds a service principal of t by id.
func spByIDLocked(st *tenantState, t *tenant, id string) (spView, bool) {
	for _, sp := range servicePrincipalsLocked(st, t) {
		if strings.EqualFold(sp.id, id) {
			return sp, true
		}
	}
	return spView{}, false
}

func spByAppIDLocked(st *tenantState, t *tenant, appID string) (spView, bool) {
	for _, sp := range servicePrincipalsLocked(st, t) {
		if strings.EqualFold(sp.appID, appID) {
			return sp, true
		}
	}
	return spView{}, false
}

// renderSP writes a service principal as Graph does.
func renderSP(sp spView, selected []string) jsonObject {
	props := spProperties
	if len(selected) > 0 {
		props = nil
		for _, p := range spProperties {
			if containsFold(selected, p) {
				props = append(props, p)
			}
		}
	}
	obj := jsonObject{}
	for _, p := range props {
		var v any
		switch p {
		case "id":
			v = sp.id
		case "accountEnabled":
			v = true
		case "appDisplayName", "displayName":
			v = sp.displayName
		case "appId":
			v = sp.appID
		case "appOwnerOrganizationId":
			v = sp.ownerTenant
		case "appRoleAssignmentRequired":
			v = false
		case "createdDateTime":
			if !sp.created.IsZero() {
				v = graphTime(sp.created)
			}
		case "servicePrincipalNames":
			names := []string{sp.appID}
			if sp.graph {
				names = append(names, "https://graph.microsoft.com", "https://graph.microsoft.com/", "https://canary.graph.microsoft.com")
			}
			v = names
		case "servicePrincipalType":
			v = "Application"
		case "signInAudience":
			v = sp.audience
		case "alternativeNames", "notificationEmailAddresses", "replyUrls", "tags", "addIns", "keyCredentials",
			"passwordCredentials", "resourceSpecificApplicationPermissions":
			v = []any{}
		case "appRoles":
			roles := []jsonObject{}
			if sp.graph {
				for _, r := range graphAppRoles {
					roles = append(roles, jsonObject{
						{"allowedMemberTypes", []string{"Application"}},
						{"description", "Allows the app to " + strings.ToLower(r.DisplayName[:1]) + r.DisplayName[1:] + " without a signed-in user."},
						{"displayName", r.DisplayName},
						{"id", r.ID},
						{"isEnabled", true},
						{"origin", "Application"},
						{"value", r.Value},
					})
				}
			}
			v = roles
		case "oauth2PermissionScopes":
			scopes := []jsonObject{}
			if sp.graph {
				for _, name := range slices.Sorted(maps.Keys(graphScopes)) {
					scopes = append(scopes, jsonObject{
						{"adminConsentDescription", "Allows the app to use " + name + " on behalf of the signed-in user."},
						{"adminConsentDisplayName", name},
						{"id", graphScopes[name]},
						{"isEnabled", true},
						{"type", "Admin"},
						{"userConsentDescription", nil},
						{"userConsentDisplayName", nil},
						{"value", name},
					})
				}
			}
			v = scopes
		}
		obj = append(obj, jsonMember{p, v})
	}
	return obj
}

// serveServicePrincipals serves /v1.0/servicePrincipals[/...] and
// /v1.0/servicePrincipals(appId='...')[/...]. byAppID holds the app id of the second form.
func (e *Emulator) serveServicePrincipals(w http.ResponseWriter, r *http.Request, c caller, rest []string, byAppID string) *graphError {
	if byAppID == "" && len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			return e.serveSPList(w, r, c)
		case http.MethodPost:
			return e.serveSPCreate(w, r, c)
		}
		return methodNotAllowed()
	}
	ref := byAppID
	if byAppID == "" {
		id, ok := parseGUID(rest[0])
		if !ok {
			return badRequest("Invalid object identifier '%s'.", rest[0])
		}
		ref, rest = id, rest[1:]
	}
	e.mu.Lock()
	t := e.st.tenantByName(c.tenantID)
	var sp spView
	found := false
	if t != nil {
		if byAppID != "" {
			sp, found = spByAppIDLocked(e.st, t, ref)
		} else {
			sp, found = spByIDLocked(e.st, t, ref)
		}
	}
	e.mu.Unlock()
	if !found {
		return notFound(ref)
	}
	switch {
	case len(rest) == 0:
		if r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		q, ge := parseQueryFor(r, false, servicePrincipalType)
		if ge != nil {
			return ge
		}
		if !e.canReadAny(c) {
			return errForbidden
		}
		obj := append(jsonObject{{"@odata.context", odataContext(r.Host, "servicePrincipals", q.selected, true)}}, renderSP(sp, q.selected)...)
		e.writeGraphJSON(w, r, http.StatusOK, obj)
		return nil
	case len(rest) == 1 && (rest[0] == "appRoleAssignments" || rest[0] == "appRoleAssignedTo"):
		switch r.Method {
		case http.MethodGet:
			return e.serveAssignmentList(w, r, c, sp, rest[0])
		case http.MethodPost:
			return e.serveAssignmentCreate(w, r, c, sp, rest[0])
		}
		return methodNotAllowed()
	}
	return &graphError{status: http.StatusBadRequest, code: "BadRequest", message: fmt.Sprintf("Resource not found for the segment '%s'.", rest[0])}
}

// serveSPList answers GET /servicePrincipals ($filter, $select, $top, paging).
func (e *Emulator) serveSPList(w http.ResponseWriter, r *http.Request, c caller) *graphError {
	q, ge := parseQueryFor(r, true, servicePrincipalType)
	if ge != nil {
		return ge
	}
	if !e.canReadAny(c) {
		return errForbidden
	}
	e.mu.Lock()
	var visible []spView
	if t := e.st.tenantByName(c.tenantID); t != nil {
		for _, sp := range servicePrincipalsLocked(e.st, t) {
			if q.filter.matchesValues(sp.id, sp.appID, sp.displayName) {
				visible = append(visible, sp)
			}
		}
	}
	e.mu.Unlock()
	page := []jsonObject{}
	end := min(q.skip+q.top, len(visible))
	for i := min(q.skip, len(visible)); i < end; i++ {
		page = append(page, renderSP(visible[i], q.selected))
	}
	body := jsonObject{{"@odata.context", odataContext(r.Host, "servicePrincipals", q.selected, false)}}
	if end < len(visible) {
		vals := url.Values{}
		for k, v := range r.URL.Query() {
			if !strings.EqualFold(strings.TrimPrefix(k, "$"), "skiptoken") {
				vals[k] = v
			}
		}
		vals.Set("$skiptoken", encodeSkipToken(end))
		body = append(body, jsonMember{"@odata.nextLink", "https://" + r.Host + "/v1.0/servicePrincipals?" + vals.Encode()})
	}
	e.writeGraphJSON(w, r, http.StatusOK, append(body, jsonMember{"value", page}))
	return nil
}

// serveSPCreate answers POST /servicePrincipals {"appId"}: the application's service
// principal in the tenant, 201. An application created through Graph has none until then.
func (e *Emulator) serveSPCreate(w http.ResponseWriter, r *http.Request, c caller) *graphError {
	if !mayWriteApplications(c) {
		return errForbidden
	}
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return ge
	}
	var appID string
	for name, raw := range body {
		switch name {
		case "appId":
			if json.Unmarshal(raw, &appID) != nil {
				return badRequest("Invalid value specified for property 'appId' of resource 'ServicePrincipal'.")
			}
		case "accountEnabled", "@odata.type":
		default:
			if _, ok := servicePrincipalType.canonical(name); ok {
				return badRequest("The emulator does not support setting property '%s'.", name)
			}
			return unknownProperty(name, "microsoft.graph.servicePrincipal")
		}
	}
	if appID == "" {
		return badRequest("Property 'appId' is required for a service principal.") // *inferred* wording
	}
	var sp spView
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.mutate(func(st *tenantState) error {
		t := st.tenantByName(c.tenantID)
		if t == nil {
			return notFound(appID)
		}
		if existing, ok := spByAppIDLocked(st, t, appID); ok {
			return &graphError{status: http.StatusConflict, code: "Request_MultipleObjectsWithSameKeyValue",
				message: fmt.Sprintf("The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", existing.appID)}
		}
		a := t.appByAppID(appID)
		if a == nil {
			// A multitenant application of another tenant: its service principal here is what
			// an administrator's consent makes ("Create an enterprise application from a
			// multitenant application"), with no permission yet.
			f, ge := e.consentLocked(st, t, c, appID)
			if ge != nil {
				return ge
			}
			sp = foreignSPView(st, f)
			return nil
		}
		if !canWrite(t, c, a) {
			return errForbidden
		}
		a.ServicePrincipalID = newGUID()
		a.Version++
		sp = appSP(t, a)
		return nil
	})
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	obj := append(jsonObject{{"@odata.context", odataContext(r.Host, "servicePrincipals", nil, true)}}, renderSP(sp, nil)...)
	e.writeGraphJSON(w, r, http.StatusCreated, obj)
	return nil
}

// consentLocked makes the service principal, in t, of appID, a multitenant application of
// another tenant of st, for the caller c: an application with Application.ReadWrite.All, or
// a user with Application.ReadWrite.All who is a Global, Application or Cloud Application
// Administrator (the roles "Create an enterprise application from a multitenant
// application" names). The caller holds e.mu, inside mutate.
func (e *Emulator) consentLocked(st *tenantState, t *tenant, c caller, appID string) (*foreignSP, *graphError) {
	ht, home := st.appByAppID(appID)
	if home == nil {
		// *inferred* wording for an appId that names no application.
		return nil, badRequest("The appId '%s' of the service principal does not reference a valid application object.", appID)
	}
	if c.delegated() {
		u := t.userByID(c.userID)
		if !c.hasScope(ScopeApplicationReadWriteAll, ScopeDirectoryAccessAsUserAll) || u == nil || !u.hasDirectoryRole(applicationAdminRoles...) {
			return nil, errForbidden
		}
	} else if !c.hasRole(RoleApplicationReadWriteAll) {
		return nil, errForbidden
	}
	if !home.multiTenant() {
		// *inferred* wording: a single-tenant application cannot be used outside its home
		// tenant.
		return nil, badRequest("The application '%s' is not configured as a multitenant application (signInAudience %s) and cannot be added to tenant %s.", appID, home.audience(), t.ID)
	}
	f := &foreignSP{ID: newGUID(), AppID: home.AppID, DisplayName: home.DisplayName,
		CreatedDateTime: e.cfg.now().UTC().Truncate(time.Second), Roles: []string{}}
	t.ForeignSPs = append(t.ForeignSPs, f)
	e.log.Info("service principal of a multitenant application created", "app_id", home.AppID, "home_tenant_id", ht.ID, "tenant_id", t.ID, "service_principal_id", f.ID)
	return f, nil
}

// serveAppCreate answers POST /applications: a new application (no service principal), 201.
// The caller becomes its owner: the calling service principal for an app-only token (as
// users report), the signed-in user for a delegated one (*inferred*: what the portal does).
func (e *Emulator) serveAppCreate(w http.ResponseWriter, r *http.Request, c caller) *graphError {
	if !mayWriteApplications(c) {
		return errForbidden
	}
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return ge
	}
	var name string
	audience := SignInAudienceMyOrg
	for prop, raw := range body {
		switch prop {
		case "displayName":
			if json.Unmarshal(raw, &name) != nil || strings.TrimSpace(name) == "" {
				return badRequest("Invalid value specified for property 'displayName' of resource 'Application'.")
			}
		case "signInAudience":
			var ge *graphError
			if audience, ge = parseAudience(raw); ge != nil {
				return ge
			}
		case "@odata.type":
			var s string
			if json.Unmarshal(raw, &s) != nil || strings.TrimPrefix(s, "#") != "microsoft.graph.application" {
				return badRequest("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", strings.Trim(string(raw), `"#`))
			}
		case "passwordCredentials":
			return badRequest("New password credentials must be generated using service actions.")
		default:
			if _, ok := canonicalAppProperty(prop); ok {
				return badRequest("The emulator does not support setting property '%s'.", prop)
			}
			return unknownProperty(prop, "microsoft.graph.application")
		}
	}
	if name == "" {
		// *inferred* wording: "The request body must contain displayName".
		return badRequest("Property 'displayName' is required when creating an application.")
	}
	var created *app
	var view jsonObject
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.mutate(func(st *tenantState) error {
		t := st.tenantByName(c.tenantID)
		if t == nil {
			return errForbidden
		}
		if c.delegated() && t.userByID(c.userID) == nil {
			return errForbidden
		}
		a := &app{
			ObjectID: newGUID(), AppID: newGUID(), DisplayName: name,
			CreatedDateTime: e.cfg.now().UTC().Truncate(time.Second), Version: 1, SignInAudience: audience,
			Owners: []string{}, Roles: []string{}, KeyCredentials: []keyCred{}, PasswordCredentials: []passwordCred{},
		}
		if owner := c.ownerID(); owner != "" {
			a.Owners = append(a.Owners, owner)
		}
		t.Apps = append(t.Apps, a)
		created = a
		view = e.renderApp(t, a, nil, false)
		return nil
	})
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	e.log.Info("application created", "app_id", created.AppID, "display_name", created.DisplayName)
	obj := append(jsonObject{{"@odata.context", odataContext(r.Host, "applications", nil, true)}}, view...)
	e.writeGraphJSON(w, r, http.StatusCreated, obj)
	return nil
}

// serveOwners answers GET /applications/{id}/owners and POST /applications/{id}/owners/$ref.
func (e *Emulator) serveOwners(w http.ResponseWriter, r *http.Request, c caller, ref appRef, isRef bool) *graphError {
	switch {
	case !isRef && r.Method == http.MethodGet:
		for name := range r.URL.Query() {
			if opt := strings.ToLower(strings.TrimPrefix(name, "$")); opt != "top" && opt != "select" {
				return &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
					message: fmt.Sprintf("The query option '%s' is not supported by the emulator here.", name)}
			}
		}
		if !e.canReadAny(c) {
			return errForbidden
		}
		e.mu.Lock()
		t, a, ge := e.lookupLocked(e.st, c, ref)
		if ge != nil {
			e.mu.Unlock()
			return ge
		}
		if !e.canRead(c, a) {
			e.mu.Unlock()
			return errForbidden
		}
		view := e.readViewLocked(r, a)
		owners := []jsonObject{}
		for _, o := range view.Owners {
			if oa := t.appBySPID(o); oa != nil {
				owners = append(owners, append(jsonObject{{"@odata.type", "#microsoft.graph.servicePrincipal"}}, renderSP(appSP(t, oa), nil)...))
			} else if f := t.foreignSPByID(o); f != nil {
				owners = append(owners, append(jsonObject{{"@odata.type", "#microsoft.graph.servicePrincipal"}}, renderSP(foreignSPView(e.st, f), nil)...))
			} else if u := t.userByID(o); u != nil {
				owners = append(owners, renderUser(u))
			}
		}
		e.mu.Unlock()
		e.writeGraphJSON(w, r, http.StatusOK, jsonObject{
			{"@odata.context", "https://" + r.Host + "/v1.0/$metadata#directoryObjects"},
			{"value", owners},
		})
		return nil
	case isRef && r.Method == http.MethodPost:
		return e.serveOwnerAdd(w, r, c, ref)
	}
	return methodNotAllowed()
}

func renderUser(u *user) jsonObject {
	return jsonObject{
		{"@odata.type", "#microsoft.graph.user"},
		{"id", u.ID},
		{"businessPhones", []any{}},
		{"displayName", u.DisplayName},
		{"givenName", nil},
		{"jobTitle", nil},
		{"mail", nil},
		{"mobilePhone", nil},
		{"officeLocation", nil},
		{"preferredLanguage", nil},
		{"surname", nil},
		{"userPrincipalName", u.UserPrincipalName},
	}
}

var odataIDPath = regexp.MustCompile(`^/(?:v1\.0|beta)/(?i:directoryObjects|servicePrincipals|users)/([^/]+)$`)

// serveOwnerAdd answers POST /applications/{id}/owners/$ref {"@odata.id": ".../directoryObjects/{id}"}:
// 204, or 400 when the object is already an owner (Graph is not idempotent here).
func (e *Emulator) serveOwnerAdd(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	if !mayWriteApplications(c) {
		return errForbidden
	}
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return ge
	}
	var odataID string
	for name, raw := range body {
		if name != "@odata.id" {
			return badRequest("The property '%s' does not exist on type 'microsoft.graph.directoryObject'. Make sure to only use property names that are defined by the type or mark the type as open type.", name)
		}
		if json.Unmarshal(raw, &odataID) != nil {
			return badRequest("Invalid value specified for property '@odata.id'.")
		}
	}
	u, err := url.Parse(odataID)
	var m []string
	if err == nil {
		m = odataIDPath.FindStringSubmatch(u.Path)
	}
	if odataID == "" || err != nil || m == nil || u.Scheme != "https" ||
		(!strings.EqualFold(u.Host, "graph.microsoft.com") && !isSelfHost(u.Host, r.Host)) {
		// *inferred* wording for a reference that is not a Graph URL.
		return badRequest("Invalid URL format specified in @odata.id: '%s'.", odataID)
	}
	ownerID, ok := parseGUID(m[1])
	if !ok {
		return badRequest("Invalid object identifier '%s'.", m[1])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	err = e.mutate(func(st *tenantState) error {
		t, a, ge := e.lookupLocked(st, c, ref)
		if ge != nil {
			return ge
		}
		if !canWrite(t, c, a) {
			return errForbidden
		}
		if !t.isServicePrincipal(ownerID) && t.userByID(ownerID) == nil {
			return notFound(ownerID)
		}
		if a.isOwner(ownerID) {
			return badRequest("One or more added object references already exist for the following modified properties: 'owners'.")
		}
		a.Owners = append(a.Owners, ownerID)
		a.Version++
		return nil
	})
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	setGraphRequestIDs(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// assignmentID builds an appRoleAssignment id as Graph's look: base64url of the principal's
// object id (in Microsoft's byte order), then 16 bytes that tell the assignment apart.
func assignmentID(principalID, resourceID, appRoleID string) string {
	b := guidBytes(principalID)
	sum := sha256.Sum256([]byte(strings.ToLower(resourceID + "/" + appRoleID)))
	return base64.RawURLEncoding.EncodeToString(append(b, sum[:16]...))
}

// guidBytes returns a GUID's 16 bytes in Microsoft's order (the first three fields little
// endian).
func guidBytes(g string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(g, "-", ""))
	if err != nil || len(b) != 16 {
		return make([]byte, 16)
	}
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b
}

// grantee is a service principal of a tenant that Graph's app roles are granted to: an
// application's own, or that of another tenant's multitenant application (foreignSP). Its
// pointers lead into the state it was found in.
type grantee struct {
	id, displayName string
	created         time.Time
	roles           *[]string
	roleTimes       *map[string]time.Time
	// changed notes a change of roles (an application's version counts it).
	changed func()
}

// grantees lists the service principals of t that can hold app roles.
func (t *tenant) grantees() []grantee {
	var out []grantee
	for _, a := range t.Apps {
		if a.ServicePrincipalID == "" {
			continue
		}
		out = append(out, grantee{id: a.ServicePrincipalID, displayName: a.DisplayName, created: a.CreatedDateTime,
			roles: &a.Roles, roleTimes: &a.RoleTimes, changed: func() { a.Version++ }})
	}
	for _, f := range t.ForeignSPs {
		out = append(out, grantee{id: f.ID, displayName: f.DisplayName, created: f.CreatedDateTime,
			roles: &f.Roles, roleTimes: &f.RoleTimes, changed: func() {}})
	}
	return out
}

// granteeByID finds the service principal id of t among its grantees.
func (t *tenant) granteeByID(id string) (grantee, bool) {
	for _, g := range t.grantees() {
		if strings.EqualFold(g.id, id) {
			return g, true
		}
	}
	return grantee{}, false
}

// renderAssignment writes an appRoleAssignment of the Graph app role role to g.
func renderAssignment(t *tenant, g grantee, role graphAppRole) jsonObject {
	created := graphTime(g.created)
	if at, ok := (*g.roleTimes)[role.Value]; ok {
		created = graphTime(at)
	}
	gsp := graphSPID(t)
	return jsonObject{
		{"id", assignmentID(g.id, gsp, role.ID)},
		{"deletedDateTime", nil},
		{"appRoleId", role.ID},
		{"createdDateTime", created},
		{"principalDisplayName", g.displayName},
		{"principalId", g.id},
		{"principalType", "ServicePrincipal"},
		{"resourceDisplayName", "Microsoft Graph"},
		{"resourceId", gsp},
	}
}

// serveAssignmentList answers GET /servicePrincipals/{id}/appRoleAssignments (the roles
// granted to sp) and .../appRoleAssignedTo (the roles of sp granted to others: Graph's).
func (e *Emulator) serveAssignmentList(w http.ResponseWriter, r *http.Request, c caller, sp spView, rel string) *graphError {
	if !e.canReadAny(c) {
		return errForbidden
	}
	e.mu.Lock()
	list := []jsonObject{}
	if t := e.st.tenantByName(c.tenantID); t != nil {
		for _, g := range t.grantees() {
			if (rel == "appRoleAssignments" && !strings.EqualFold(g.id, sp.id)) || (rel == "appRoleAssignedTo" && !sp.graph) {
				continue
			}
			for _, v := range *g.roles {
				if role, ok := graphAppRoleByValue(v); ok {
					list = append(list, renderAssignment(t, g, role))
				}
			}
		}
	}
	e.mu.Unlock()
	e.writeGraphJSON(w, r, http.StatusOK, jsonObject{
		{"@odata.context", fmt.Sprintf("https://%s/v1.0/$metadata#servicePrincipals('%s')/%s", r.Host, sp.id, rel)},
		{"value", list},
	})
	return nil
}

// serveAssignmentCreate answers POST /servicePrincipals/{resource}/appRoleAssignedTo and POST
// /servicePrincipals/{principal}/appRoleAssignments {principalId, resourceId, appRoleId}: the
// app role granted (for Graph's app roles, an application permission with admin consent),
// 201. A role granted twice is refused with 400.
func (e *Emulator) serveAssignmentCreate(w http.ResponseWriter, r *http.Request, c caller, sp spView, rel string) *graphError {
	if !mayAssignAppRoles(c) {
		return errForbidden
	}
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return ge
	}
	ids := map[string]string{}
	for name, raw := range body {
		switch name {
		case "principalId", "resourceId", "appRoleId":
			var s string
			g, ok := "", false
			if json.Unmarshal(raw, &s) == nil {
				g, ok = parseGUID(s)
			}
			if !ok {
				return badRequest("Invalid value specified for property '%s' of resource 'AppRoleAssignment'.", name)
			}
			ids[name] = g
		case "@odata.type", "principalType", "principalDisplayName", "resourceDisplayName":
		default:
			return unknownProperty(name, "microsoft.graph.appRoleAssignment")
		}
	}
	for _, name := range []string{"principalId", "resourceId", "appRoleId"} {
		if ids[name] == "" {
			return badRequest("One or more properties are invalid.")
		}
	}
	// *inferred*: the path's service principal must be the resource (appRoleAssignedTo) or
	// the principal (appRoleAssignments) named in the body.
	if (rel == "appRoleAssignedTo" && !strings.EqualFold(sp.id, ids["resourceId"])) ||
		(rel == "appRoleAssignments" && !strings.EqualFold(sp.id, ids["principalId"])) {
		return badRequest("One or more properties are invalid.")
	}
	var out jsonObject
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.mutate(func(st *tenantState) error {
		t := st.tenantByName(c.tenantID)
		if t == nil {
			return notFound(ids["resourceId"])
		}
		resource, ok := spByIDLocked(st, t, ids["resourceId"])
		if !ok {
			return notFound(ids["resourceId"])
		}
		role, ok := graphAppRoleByID(ids["appRoleId"])
		if !resource.graph || !ok {
			// *inferred* wording: the emulator knows Graph's app roles only.
			return badRequest("Permission being assigned was not found on application '%s'.", resource.appID)
		}
		if c.delegated() {
			u := t.userByID(c.userID)
			if u == nil || !u.hasDirectoryRole(graphAppRoleAdminRoles...) {
				return errForbidden
			}
		}
		g, ok := t.granteeByID(ids["principalId"])
		if !ok {
			return notFound(ids["principalId"])
		}
		if containsFold(*g.roles, role.Value) {
			return badRequest("Permission being assigned already exists on the object")
		}
		*g.roles = append(*g.roles, role.Value)
		if *g.roleTimes == nil {
			*g.roleTimes = map[string]time.Time{}
		}
		(*g.roleTimes)[role.Value] = e.cfg.now().UTC()
		g.changed()
		out = renderAssignment(t, g, role)
		return nil
	})
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	obj := append(jsonObject{{"@odata.context", fmt.Sprintf("https://%s/v1.0/$metadata#servicePrincipals('%s')/%s/$entity", r.Host, sp.id, rel)}}, out...)
	e.writeGraphJSON(w, r, http.StatusCreated, obj)
	return nil
}

// mayAssignAppRoles reports whether the token allows granting app roles: AppRoleAssignment.ReadWrite.All
// with Application.Read.All or Directory.Read.All (or more) for an app; for a user, the
// delegated AppRoleAssignment.ReadWrite.All (or Directory.AccessAsUser.All) with a read scope.
func mayAssignAppRoles(c caller) bool {
	if c.delegated() {
		return c.hasScope(ScopeDirectoryAccessAsUserAll) ||
			(c.hasScope(ScopeAppRoleAssignmentReadWrite) &&
				c.hasScope(ScopeApplicationReadAll, ScopeApplicationReadWriteAll, ScopeDirectoryReadAll, ScopeDirectoryReadWriteAll))
	}
	return c.hasRole(RoleAppRoleAssignmentReadWriteAll) &&
		c.hasRole(RoleApplicationReadAll, RoleApplicationReadWriteAll, RoleDirectoryReadAll, RoleDirectoryReadWriteAll)
}
