package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	// maxGraphBody is Graph's request size limit (4 MB).
	maxGraphBody = 4 << 20
	// defaultPageSize and maxPageSize bound list pages, as Graph does for applications.
	defaultPageSize = 100
	maxPageSize     = 999
	// maxProofLifetime is the longest an addKey/removeKey proof may be valid.
	maxProofLifetime = 10 * time.Minute
)

var appIDSegment = regexp.MustCompile(`^(?i:applications)\((?i:appId)='([^']*)'\)$`)

// appRef is how a request names an application.
type appRef struct {
	id    string
	byApp bool // applications(appId='...') rather than applications/{id}
}

// serveGraph serves /v1.0: every request needs an access token for Graph from this emulator.
func (e *Emulator) serveGraph(w http.ResponseWriter, r *http.Request) {
	c, msg := e.verifyAccessToken(r)
	if msg == "" && c.kind != resourceGraph {
		msg = "Access token validation failure. Invalid audience."
	}
	if msg != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://`+r.Host+`/common/oauth2/authorize", client_id="`+graphAppID+`"`)
		e.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/"), "/")
	var ge *graphError
	switch {
	case len(segs) == 1 && strings.EqualFold(segs[0], "applications"):
		ge = e.serveAppList(w, r, c)
	case strings.EqualFold(segs[0], "applications") && len(segs) >= 2:
		ref := appRef{id: segs[1]}
		ge = e.serveAppResource(w, r, c, ref, segs[2:])
	case appIDSegment.MatchString(segs[0]):
		ref := appRef{id: appIDSegment.FindStringSubmatch(segs[0])[1], byApp: true}
		ge = e.serveAppResource(w, r, c, ref, segs[1:])
	case strings.EqualFold(segs[0], "servicePrincipals"):
		ge = e.serveServicePrincipals(w, r, c, segs[1:], "")
	case spAppIDSegment.MatchString(segs[0]):
		ge = e.serveServicePrincipals(w, r, c, segs[1:], spAppIDSegment.FindStringSubmatch(segs[0])[1])
	default:
		ge = &graphError{status: http.StatusBadRequest, code: "BadRequest", message: fmt.Sprintf("Resource not found for the segment '%s'.", segs[0])}
	}
	if ge != nil {
		e.writeGraphError(w, r, ge.status, ge.code, ge.message)
	}
}

func methodNotAllowed() *graphError {
	return &graphError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest", message: "Specified HTTP method is not allowed for the request target."}
}

func (e *Emulator) serveAppResource(w http.ResponseWriter, r *http.Request, c caller, ref appRef, rest []string) *graphError {
	if !ref.byApp {
		id, ok := parseGUID(ref.id)
		if !ok {
			return badRequest("Invalid object identifier '%s'.", ref.id)
		}
		ref.id = id
	}
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			return e.serveAppGet(w, r, c, ref)
		case http.MethodPatch:
			return e.serveAppPatch(w, r, c, ref)
		}
		return methodNotAllowed()
	case len(rest) == 1 && rest[0] == "owners":
		return e.serveOwners(w, r, c, ref, false)
	case len(rest) == 2 && rest[0] == "owners" && rest[1] == "$ref":
		return e.serveOwners(w, r, c, ref, true)
	case len(rest) == 1 && (rest[0] == "addKey" || rest[0] == "microsoft.graph.addKey"):
		if r.Method != http.MethodPost {
			return methodNotAllowed()
		}
		return e.serveAddKey(w, r, c, ref)
	case len(rest) == 1 && (rest[0] == "removeKey" || rest[0] == "microsoft.graph.removeKey"):
		if r.Method != http.MethodPost {
			return methodNotAllowed()
		}
		return e.serveRemoveKey(w, r, c, ref)
	}
	return &graphError{status: http.StatusBadRequest, code: "BadRequest", message: fmt.Sprintf("Resource not found for the segment '%s'.", rest[0])}
}

// lookupLocked finds the application a request names, in the caller's tenant. The caller
// holds e.mu.
func (e *Emulator) lookupLocked(st *tenantState, c caller, ref appRef) (*tenant, *app, *graphError) {
	t := st.tenantByName(c.tenantID)
	if t == nil {
		return nil, nil, notFound(ref.id)
	}
	var a *app
	if ref.byApp {
		a = t.appByAppID(ref.id)
	} else {
		a = t.appByObjectID(ref.id)
	}
	if a == nil {
		return nil, nil, notFound(ref.id)
	}
	return t, a, nil
}

// Permissions. App-only tokens: reads need Application.Read.All, Application.ReadWrite.All,
// Directory.Read.All, Directory.ReadWrite.All, or Application.ReadWrite.OwnedBy (every app, or
// owned ones only with WithOwnedByReadsOwnedOnly); writes need Application.ReadWrite.All, or
// Application.ReadWrite.OwnedBy on an app whose owners include the caller. An app has no
// implicit right to read or PATCH itself; addKey and removeKey on itself need no permission.
// Delegated tokens: reads need one of the read or write scopes; writes need
// Application.ReadWrite.All (or Directory.AccessAsUser.All) and a user who owns the app or
// holds an application administrator role (applicationAdminRoles).
func (e *Emulator) canReadAny(c caller) bool {
	if c.delegated() {
		return c.hasScope(ScopeApplicationReadAll, ScopeApplicationReadWriteAll, ScopeDirectoryReadAll,
			ScopeDirectoryReadWriteAll, ScopeDirectoryAccessAsUserAll)
	}
	return c.hasRole(RoleApplicationReadAll, RoleApplicationReadWriteAll, RoleDirectoryReadAll, RoleDirectoryReadWriteAll, RoleApplicationReadWriteOwned)
}

func (e *Emulator) canRead(c caller, a *app) bool {
	if c.delegated() {
		return e.canReadAny(c)
	}
	if c.hasRole(RoleApplicationReadAll, RoleApplicationReadWriteAll, RoleDirectoryReadAll, RoleDirectoryReadWriteAll) {
		return true
	}
	return c.hasRole(RoleApplicationReadWriteOwned) && (!e.cfg.ownedByReadsOwnedOnly || a.isOwner(c.spID))
}

// mayWriteApplications reports whether the caller's token allows writing some application
// (the check Graph makes before it looks at the application).
func mayWriteApplications(c caller) bool {
	return c.hasRole(RoleApplicationReadWriteAll, RoleApplicationReadWriteOwned) ||
		c.hasScope(ScopeApplicationReadWriteAll, ScopeDirectoryAccessAsUserAll)
}

// canWrite reports whether the caller may change a, an application of tenant t.
func canWrite(t *tenant, c caller, a *app) bool {
	if c.delegated() {
		if !c.hasScope(ScopeApplicationReadWriteAll, ScopeDirectoryAccessAsUserAll) {
			return false
		}
		u := t.userByID(c.userID)
		return u != nil && (a.isOwner(u.ID) || u.hasDirectoryRole(applicationAdminRoles...))
	}
	return c.hasRole(RoleApplicationReadWriteAll) || (c.hasRole(RoleApplicationReadWriteOwned) && a.isOwner(c.spID))
}

// readViewLocked returns the version of a that a read sees now: the version before the last
// write while stale reads are pending (WithStaleReads or a stale fault), otherwise what the
// request's replica holds (WithReplicationLag). The caller holds e.mu.
func (e *Emulator) readViewLocked(r *http.Request, a *app) *app {
	if se := e.stale[strings.ToLower(a.ObjectID)]; se != nil && se.prev != nil {
		stale := false
		if se.left > 0 {
			se.left--
			stale = true
		} else {
			stale = e.takeStaleFaultLocked(r)
		}
		if stale {
			infoOf(r).noteStale("stale")
			return se.prev
		}
	}
	v, _ := e.replicaViewLocked(r, a)
	return v
}

// queryOptions are the OData options of a read.
type queryOptions struct {
	selected []string
	filter   *appFilter
	top      int
	skip     int
	// search is $search (applications only), count $count=true; both need the
	// ConsistencyLevel: eventual header.
	search *searchQuery
	count  bool
}

// entityType describes the properties of a Graph entity type for $select and $filter.
type entityType struct {
	name  string // "application", "servicePrincipal"
	title string // "Application", "ServicePrincipal" (in error messages)
	props []string
}

var applicationType = entityType{name: "application", title: "Application", props: appProperties}

// canonical returns the property's spelling in the schema (Graph matches $select and $filter
// names case-insensitively).
func (et entityType) canonical(name string) (string, bool) {
	for _, p := range et.props {
		if strings.EqualFold(p, name) {
			return p, true
		}
	}
	return "", false
}

// parseQuery reads $select (and, for lists, $filter, $top and $skiptoken) of an application
// read; Graph also takes them without the "$".
func parseQuery(r *http.Request, list bool) (queryOptions, *graphError) {
	return parseQueryFor(r, list, applicationType)
}

// parseQueryFor reads the query options of a read of et.
func parseQueryFor(r *http.Request, list bool, et entityType) (queryOptions, *graphError) {
	q := queryOptions{top: defaultPageSize}
	eventual := strings.EqualFold(strings.TrimSpace(r.Header.Get("ConsistencyLevel")), "eventual")
	for name, vals := range r.URL.Query() {
		opt := strings.ToLower(strings.TrimPrefix(name, "$"))
		val := ""
		if len(vals) > 0 {
			val = vals[0]
		}
		switch {
		case opt == "select":
			for _, p := range strings.Split(val, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				canon, ok := et.canonical(p)
				if !ok {
					return q, badRequest("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.%s'.", p, et.name)
				}
				q.selected = append(q.selected, canon)
			}
		case opt == "filter" && list:
			f, ge := parseFilterFor(val, et)
			if ge != nil {
				return q, ge
			}
			q.filter = &f
		case opt == "search" && list && et.name == applicationType.name:
			if !eventual {
				return q, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
					message: "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"}
			}
			sq, ge := parseSearch(val, et)
			if ge != nil {
				return q, ge
			}
			q.search = sq
		case opt == "count" && list && et.name == applicationType.name:
			switch {
			case !eventual:
				// *inferred* wording: Graph refuses $count on directory objects without the header.
				return q, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
					message: "Request with $count query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"}
			case strings.EqualFold(val, "true"):
				q.count = true
			case !strings.EqualFold(val, "false"):
				return q, badRequest("Invalid value '%s' for $count.", val)
			}
		case opt == "top" && list:
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxPageSize {
				return q, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery", message: fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", val, maxPageSize)}
			}
			q.top = n
		case opt == "skiptoken" && list:
			n, ok := decodeSkipToken(val)
			if !ok {
				return q, badRequest("Invalid skip token '%s'.", val)
			}
			q.skip = n
		case strings.HasPrefix(name, "$") && (opt == "expand" || opt == "orderby" || opt == "search" || opt == "count" || opt == "skip" || opt == "format" || opt == "filter" || opt == "top" || opt == "skiptoken"):
			return q, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
				message: fmt.Sprintf("The query option '%s' is not supported by the emulator here.", name)}
		}
	}
	return q, nil
}

func encodeSkipToken(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("emu:" + strconv.Itoa(n)))
}

func decodeSkipToken(s string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "emu:"))
	if err != nil || !strings.HasPrefix(string(b), "emu:") || n < 0 {
		return 0, false
	}
	return n, true
}

// appFilter is one supported $filter clause.
type appFilter struct {
	prop  string // appId, id or displayName
	op    string // "eq" or "startswith"
	value string
}

var (
	filterEq         = regexp.MustCompile(`^\s*([A-Za-z]+)\s+eq\s+'((?:[^']|'')*)'\s*$`)
	filterStartsWith = regexp.MustCompile(`^\s*startswith\(\s*([A-Za-z]+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$`)
	filterWord       = regexp.MustCompile(`^\s*(?:[A-Za-z]+\(\s*)?([A-Za-z]+)`)
)

// parseFilter supports "appId eq '...'", "id eq '...'", "displayName eq '...'" and
// "startswith(displayName,'...')", the clauses Graph documents for applications that the
// agent and azure-cli use.
func parseFilter(s string) (appFilter, *graphError) { return parseFilterFor(s, applicationType) }

// parseFilterFor parses a $filter on et (applications and service principals take the same
// clauses).
func parseFilterFor(s string, et entityType) (appFilter, *graphError) {
	if m := filterEq.FindStringSubmatch(s); m != nil {
		prop, ok := et.canonical(m[1])
		switch {
		case !ok:
			return appFilter{}, badRequest("Could not find a property named '%s' on type 'microsoft.graph.%s'.", m[1], et.name)
		case prop == "appId" || prop == "id" || prop == "displayName":
			return appFilter{prop: prop, op: "eq", value: strings.ReplaceAll(m[2], "''", "'")}, nil
		}
		return appFilter{}, unsupportedFilter(prop, et)
	}
	if m := filterStartsWith.FindStringSubmatch(s); m != nil {
		prop, ok := et.canonical(m[1])
		switch {
		case !ok:
			return appFilter{}, badRequest("Could not find a property named '%s' on type 'microsoft.graph.%s'.", m[1], et.name)
		case prop == "displayName":
			return appFilter{prop: prop, op: "startswith", value: strings.ReplaceAll(m[2], "''", "'")}, nil
		}
		return appFilter{}, unsupportedFilter(prop, et)
	}
	prop := "filter"
	if m := filterWord.FindStringSubmatch(s); m != nil {
		if p, ok := et.canonical(m[1]); ok {
			prop = p
		} else {
			prop = m[1]
		}
	}
	return appFilter{}, unsupportedFilter(prop, et)
}

func unsupportedFilter(prop string, et entityType) *graphError {
	return &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
		message: fmt.Sprintf("Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", prop, et.title)}
}

func (f *appFilter) matches(a *app) bool {
	if f == nil {
		return true
	}
	return f.matchesValues(a.ObjectID, a.AppID, a.DisplayName)
}

// matchesValues applies the filter to an object's id, appId and displayName.
func (f *appFilter) matchesValues(id, appID, displayName string) bool {
	if f == nil {
		return true
	}
	switch f.prop {
	case "appId":
		return strings.EqualFold(appID, f.value)
	case "id":
		return strings.EqualFold(id, f.value)
	}
	v := displayName
	if f.op == "startswith" {
		return len(v) >= len(f.value) && strings.EqualFold(v[:len(f.value)], f.value)
	}
	return v == f.value
}

func odataContext(host, set string, selected []string, entity bool) string {
	s := "https://" + host + "/v1.0/$metadata#" + set
	if len(selected) > 0 {
		s += "(" + strings.Join(selected, ",") + ")"
	}
	if entity {
		s += "/$entity"
	}
	return s
}

// writeGraphJSON writes a Graph answer with Graph's headers.
func (e *Emulator) writeGraphJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	setGraphRequestIDs(w, r)
	w.Header().Set("OData-Version", "4.0")
	b, err := json.Marshal(v)
	if err != nil {
		e.writeGraphError(w, r, http.StatusInternalServerError, "InternalServerError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveAppGet answers a single-object read. key is returned only when $select names
// keyCredentials.
func (e *Emulator) serveAppGet(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	q, ge := parseQuery(r, false)
	if ge != nil {
		return ge
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
	withKey := containsExact(q.selected, "keyCredentials")
	obj := append(jsonObject{{"@odata.context", odataContext(r.Host, "applications", q.selected, true)}}, e.renderApp(t, view, q.selected, withKey)...)
	e.mu.Unlock()
	e.writeGraphJSON(w, r, http.StatusOK, obj)
	return nil
}

// serveAppList answers GET /applications, filtered to what the caller may read; key is
// always null.
func (e *Emulator) serveAppList(w http.ResponseWriter, r *http.Request, c caller) *graphError {
	if r.Method == http.MethodPost {
		return e.serveAppCreate(w, r, c)
	}
	if r.Method != http.MethodGet {
		return methodNotAllowed()
	}
	q, ge := parseQuery(r, true)
	if ge != nil {
		return ge
	}
	if !e.canReadAny(c) {
		return errForbidden
	}
	e.mu.Lock()
	t := e.st.tenantByName(c.tenantID)
	var page []jsonObject
	next := ""
	total := 0
	if t != nil {
		var visible []*app
		for _, a := range t.Apps {
			if e.canRead(c, a) {
				if v := e.readViewLocked(r, a); q.filter.matches(v) && q.search.matches(v) {
					visible = append(visible, v)
				}
			}
		}
		total = len(visible)
		end := min(q.skip+q.top, len(visible))
		for i := min(q.skip, len(visible)); i < end; i++ {
			page = append(page, e.renderApp(t, visible[i], q.selected, false))
		}
		if end < len(visible) {
			vals := url.Values{}
			for k, v := range r.URL.Query() {
				if !strings.EqualFold(strings.TrimPrefix(k, "$"), "skiptoken") {
					vals[k] = v
				}
			}
			vals.Set("$skiptoken", encodeSkipToken(end))
			next = "https://" + r.Host + "/v1.0/applications?" + vals.Encode()
		}
	}
	e.mu.Unlock()
	if page == nil {
		page = []jsonObject{}
	}
	body := jsonObject{{"@odata.context", odataContext(r.Host, "applications", q.selected, false)}}
	if q.count {
		body = append(body, jsonMember{"@odata.count", total})
	}
	if next != "" {
		body = append(body, jsonMember{"@odata.nextLink", next})
	}
	body = append(body, jsonMember{"value", page})
	e.writeGraphJSON(w, r, http.StatusOK, body)
	return nil
}

// readJSONBody reads a request body as Graph does: JSON, possibly gzip-compressed, at most
// 4 MB, an object at the top.
func (e *Emulator) readJSONBody(r *http.Request) (map[string]json.RawMessage, *graphError) {
	var body io.Reader = io.LimitReader(r.Body, maxGraphBody+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		if e.cfg.rejectGzip {
			return nil, &graphError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType", message: "Content-Encoding 'gzip' is not supported."}
		}
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, badRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		}
		body = io.LimitReader(zr, maxGraphBody+1)
	default:
		return nil, &graphError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType", message: fmt.Sprintf("Content-Encoding '%s' is not supported.", enc)}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, badRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	if len(b) > maxGraphBody {
		return nil, &graphError{status: http.StatusRequestEntityTooLarge, code: "Request_EntityTooLarge", message: "The request body is larger than 4 MB."}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, badRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, badRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// serveAppPatch updates an application. keyCredentials and passwordCredentials replace the
// whole collection, keeping each credential by keyId.
func (e *Emulator) serveAppPatch(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	if !mayWriteApplications(c) {
		return errForbidden
	}
	e.mu.Lock()
	t, a, ge := e.lookupLocked(e.st, c, ref)
	if ge == nil && !canWrite(t, c, a) {
		ge = errForbidden
	}
	e.mu.Unlock()
	if ge != nil {
		return ge
	}
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return ge
	}
	for name, raw := range body {
		switch name {
		case "keyCredentials", "passwordCredentials", "displayName":
		case "signInAudience":
			if _, ge := parseAudience(raw); ge != nil {
				return ge
			}
		case "@odata.type":
			var s string
			if json.Unmarshal(raw, &s) != nil || strings.TrimPrefix(s, "#") != "microsoft.graph.application" {
				return badRequest("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", strings.Trim(string(raw), `"#`))
			}
		default:
			if _, ok := canonicalAppProperty(name); ok && name != "id" && name != "appId" {
				return badRequest("The emulator does not support updating property '%s'.", name)
			}
			if name == "id" || name == "appId" {
				return badRequest("Property '%s' is read-only and cannot be set.", name)
			}
			return unknownProperty(name, "microsoft.graph.application")
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.mutate(func(st *tenantState) error {
		t, a, ge := e.lookupLocked(st, c, ref)
		if ge != nil {
			return ge
		}
		if !canWrite(t, c, a) { // owners may have changed while the body was read
			return errForbidden
		}
		if raw, ok := body["displayName"]; ok {
			var s string
			if json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
				return badRequest("Invalid value specified for property 'displayName' of resource 'Application'.")
			}
			a.DisplayName = s
		}
		if raw, ok := body["signInAudience"]; ok {
			a.SignInAudience, _ = parseAudience(raw)
		}
		if raw, ok := body["keyCredentials"]; ok {
			creds, ge := e.replaceKeyCredentials(a, raw)
			if ge != nil {
				return ge
			}
			a.KeyCredentials = creds
		}
		if raw, ok := body["passwordCredentials"]; ok {
			creds, ge := replacePasswordCredentials(a, raw)
			if ge != nil {
				return ge
			}
			a.PasswordCredentials = creds
		}
		if ge := e.checkSizeLocked(a); ge != nil {
			return ge
		}
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

// parseAudience reads a signInAudience value: AzureADMyOrg or AzureADMultipleOrgs, the two the
// emulator models (Graph also takes AzureADandPersonalMicrosoftAccount and
// PersonalMicrosoftAccount).
func parseAudience(raw json.RawMessage) (string, *graphError) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", badRequest("Invalid value specified for property 'signInAudience' of resource 'Application'.")
	}
	aud := canonicalAudience(s)
	if aud == "" {
		return "", badRequest("The emulator supports signInAudience '%s' and '%s' only.", SignInAudienceMyOrg, SignInAudienceMultipleOrgs)
	}
	return aud, nil
}

// asGraphError turns a mutate error into an answer: Graph's own errors pass through, a
// failure to persist is a 500.
func asGraphError(err error) *graphError {
	if err == nil {
		return nil
	}
	var ge *graphError
	if errors.As(err, &ge) {
		return ge
	}
	return &graphError{status: http.StatusInternalServerError, code: "InternalServerError", message: err.Error()}
}

// checkSizeLocked answers Directory_ResourceSizeExceeded when a's credentials have grown past
// Settings.ObjectSizeLimit. The caller holds e.mu.
func (e *Emulator) checkSizeLocked(a *app) *graphError {
	if objectSize(a) > e.settings.ObjectSizeLimit {
		return &graphError{status: e.settings.SizeLimitStatus, code: "Directory_ResourceSizeExceeded", message: sizeExceededMessage}
	}
	return nil
}

// objectSize measures what the size limit counts: the bytes of the JSON of the application's
// key credentials (keys included, base64) and password credentials, as Graph renders them.
// Entra limits the whole object; the credentials are what grows.
func objectSize(a *app) int {
	n := 0
	for _, k := range a.KeyCredentials {
		b, _ := json.Marshal(renderKeyCred(k, true))
		n += len(b) + 1
	}
	for _, p := range a.PasswordCredentials {
		b, _ := json.Marshal(renderPasswordCred(p))
		n += len(b) + 1
	}
	return n
}

// replaceKeyCredentials computes the new keyCredentials collection from a PATCH value: a
// known keyId keeps the stored credential (its key may be sent as null) and may not change
// it; anything else is a new credential.
func (e *Emulator) replaceKeyCredentials(a *app, raw json.RawMessage) ([]keyCred, *graphError) {
	if isNull(raw) {
		return nil, badRequest("A null value was found for the property named 'keyCredentials', which has the expected type 'Collection(microsoft.graph.keyCredential)[Nullable=False]'. The expected type 'Collection(microsoft.graph.keyCredential)[Nullable=False]' does not allow null values.")
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, badRequest("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
	}
	out := []keyCred{}
	seen := map[string]bool{}
	for _, entry := range entries {
		in, ge := parseKeyCredInput(entry, "Application")
		if ge != nil {
			return nil, ge
		}
		keyID, hasID, ge := in.str("keyId")
		if ge != nil {
			return nil, ge
		}
		if hasID {
			id, ok := parseGUID(keyID)
			if !ok {
				return nil, badRequest("Invalid value specified for property 'keyId' of resource 'KeyCredential'.")
			}
			keyID = id
			if seen[keyID] {
				return nil, badRequest("The keyId '%s' appears more than once in keyCredentials.", keyID) // *inferred* wording
			}
			seen[keyID] = true
			if i, ok := a.keyCredByID(keyID); ok {
				stored := a.KeyCredentials[i]
				changed, ge := in.differsFrom(stored)
				switch {
				case ge != nil:
					return nil, ge
				case !changed:
					out = append(out, stored)
				case !e.cfg.applyCredentialUpdate:
					return nil, errUpdateExisting(stored.KeyID)
				default:
					k, ge := e.updateStored(in, stored)
					if ge != nil {
						return nil, ge
					}
					out = append(out, k)
				}
				continue
			}
			if _, isPassword := findPassword(a, keyID); isPassword {
				return nil, badRequest("The keyId '%s' is already used by a password credential.", keyID)
			}
		}
		k, ge := e.newKeyCred(in, keyID)
		if ge != nil {
			return nil, ge
		}
		seen[k.KeyID] = true
		out = append(out, k)
	}
	return out, nil
}

func findPassword(a *app, keyID string) (int, bool) {
	for i, p := range a.PasswordCredentials {
		if strings.EqualFold(p.KeyID, keyID) {
			return i, true
		}
	}
	return -1, false
}

var passwordCredProps = []string{"@odata.type", "customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"}

// replacePasswordCredentials keeps password credentials by keyId; new ones must be made
// with addPassword, as Graph says.
func replacePasswordCredentials(a *app, raw json.RawMessage) ([]passwordCred, *graphError) {
	if isNull(raw) {
		return nil, badRequest("A null value was found for the property named 'passwordCredentials', which has the expected type 'Collection(microsoft.graph.passwordCredential)[Nullable=False]'. The expected type 'Collection(microsoft.graph.passwordCredential)[Nullable=False]' does not allow null values.")
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, badRequest("Invalid value specified for property 'passwordCredentials' of resource 'Application'.")
	}
	out := []passwordCred{}
	for _, m := range entries {
		for name := range m {
			if !containsExact(passwordCredProps, name) {
				return nil, unknownProperty(name, "microsoft.graph.passwordCredential")
			}
		}
		in := keyCredInput{raw: m}
		keyID, ok, ge := in.str("keyId")
		if ge != nil {
			return nil, ge
		}
		secret, hasSecret, _ := in.str("secretText")
		i, known := findPassword(a, keyID)
		if !ok || !known || (hasSecret && secret != "") {
			return nil, badRequest("New password credentials must be generated using service actions.")
		}
		p := a.PasswordCredentials[i]
		if name, ok, _ := in.str("displayName"); ok && truncateDisplayName(name) != p.DisplayName {
			return nil, errUpdateExisting(p.KeyID)
		}
		for _, f := range []struct {
			name   string
			stored time.Time
		}{{"startDateTime", p.StartDateTime}, {"endDateTime", p.EndDateTime}} {
			if t, ok, ge := in.time(f.name); ge != nil {
				return nil, ge
			} else if ok && !t.Equal(f.stored) {
				return nil, errUpdateExisting(p.KeyID)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// actionBody reads the body of addKey or removeKey, allowing only the given properties.
func (e *Emulator) actionBody(r *http.Request, allowed ...string) (map[string]json.RawMessage, *graphError) {
	body, ge := e.readJSONBody(r)
	if ge != nil {
		return nil, ge
	}
	for name := range body {
		if !containsExact(allowed, name) {
			return nil, badRequest("The parameter '%s' in the request payload is not a valid parameter for the operation.", name)
		}
	}
	return body, nil
}

// authorizeAction checks the caller may call addKey/removeKey on the app: itself with no
// permission, any other app as for PATCH.
func (e *Emulator) authorizeAction(c caller, ref appRef) *graphError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, a, ge := e.lookupLocked(e.st, c, ref)
	if ge != nil {
		return ge
	}
	if (!c.delegated() && strings.EqualFold(c.appID, a.AppID)) || canWrite(t, c, a) {
		return nil
	}
	return errForbidden
}

var errBadProof = &graphError{status: http.StatusUnauthorized, code: "Authentication_MissingOrMalformed", message: "Access Token missing or malformed."}

func proofString(body map[string]json.RawMessage) string {
	var s string
	if raw, ok := body["proof"]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// serveAddKey adds a certificate to an application, proven by a JWT signed with a
// certificate already valid on it. It answers 200 with the new keyCredential.
func (e *Emulator) serveAddKey(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	if ge := e.authorizeAction(c, ref); ge != nil {
		return ge
	}
	body, ge := e.actionBody(r, "keyCredential", "passwordCredential", "proof")
	if ge != nil {
		return ge
	}
	raw, ok := body["keyCredential"]
	if !ok || isNull(raw) {
		return badRequest("The parameter 'keyCredential' is required.")
	}
	if pc, ok := body["passwordCredential"]; ok && !isNull(pc) {
		return badRequest("passwordCredential must be null for a key of type AsymmetricX509Cert.")
	}
	in, ge := parseKeyCredInput(raw, "KeyCredential")
	if ge != nil {
		return ge
	}
	var added keyCred
	e.mu.Lock()
	err := e.mutate(func(st *tenantState) error {
		_, a, ge := e.lookupLocked(st, c, ref)
		if ge != nil {
			return ge
		}
		if reason := e.checkProof(proofString(body), a); reason != "" {
			e.log.Debug("addKey proof refused", "app_id", a.AppID, "reason", reason)
			return errBadProof
		}
		keyID := ""
		if s, ok, ge := in.str("keyId"); ge != nil {
			return ge
		} else if ok {
			id, valid := parseGUID(s)
			if !valid {
				return badRequest("Invalid value specified for property 'keyId' of resource 'KeyCredential'.")
			}
			if _, dup := a.keyCredByID(id); dup {
				return errUpdateExisting(id)
			}
			keyID = id
		}
		k, ge := e.newKeyCred(in, keyID)
		if ge != nil {
			return ge
		}
		a.KeyCredentials = append(a.KeyCredentials, k)
		if ge := e.checkSizeLocked(a); ge != nil {
			return ge
		}
		a.Version++
		added = k
		return nil
	})
	e.mu.Unlock()
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	obj := append(jsonObject{{"@odata.context", "https://" + r.Host + "/v1.0/$metadata#microsoft.graph.keyCredential"}}, renderKeyCred(added, false)...)
	e.writeGraphJSON(w, r, http.StatusOK, obj)
	return nil
}

// serveRemoveKey removes a key credential, proven like addKey. It answers 204.
func (e *Emulator) serveRemoveKey(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	if ge := e.authorizeAction(c, ref); ge != nil {
		return ge
	}
	body, ge := e.actionBody(r, "keyId", "proof")
	if ge != nil {
		return ge
	}
	var keyIDText string
	if raw, ok := body["keyId"]; !ok || json.Unmarshal(raw, &keyIDText) != nil {
		return badRequest("The parameter 'keyId' is required.")
	}
	keyID, ok := parseGUID(keyIDText)
	if !ok {
		return badRequest("Invalid value specified for property 'keyId' of resource 'KeyCredential'.")
	}
	e.mu.Lock()
	err := e.mutate(func(st *tenantState) error {
		_, a, ge := e.lookupLocked(st, c, ref)
		if ge != nil {
			return ge
		}
		if reason := e.checkProof(proofString(body), a); reason != "" {
			e.log.Debug("removeKey proof refused", "app_id", a.AppID, "reason", reason)
			return errBadProof
		}
		i, found := a.keyCredByID(keyID)
		if !found {
			// *inferred*: Graph's answer for an unknown keyId is not documented.
			return &graphError{status: http.StatusNotFound, code: "Request_ResourceNotFound",
				message: fmt.Sprintf("No key credential with keyId '%s' was found on the application.", keyID)}
		}
		a.KeyCredentials = append(a.KeyCredentials[:i], a.KeyCredentials[i+1:]...)
		a.Version++
		return nil
	})
	e.mu.Unlock()
	if ge := asGraphError(err); ge != nil {
		return ge
	}
	setGraphRequestIDs(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkProof verifies an addKey/removeKey proof for a: a JWT without '=' padding, signed
// (RS256, or PS256) by a certificate currently valid on a (named by x5t, x5t#S256 or kid, or
// found by trying each), aud 00000002-0000-0000-c000-000000000000 (the id Microsoft's
// "Generate proof of possession tokens for rolling keys" names; Graph's own 00000003-... is
// refused, as users report), iss a's object id,
// nbf and exp at most 10 minutes apart with now inside (5 minutes' skew). It returns why
// the proof is refused, or "".
func (e *Emulator) checkProof(proof string, a *app) string {
	if proof == "" {
		return "no proof"
	}
	jt, err := parseJWT(proof)
	if err != nil {
		return "malformed JWT"
	}
	if jt.padded {
		return "base64 padding in the JWT"
	}
	alg := jt.headerString("alg")
	if alg != "RS256" && alg != "PS256" {
		return "alg " + alg
	}
	auds := jt.audiences()
	if len(auds) != 1 || auds[0] != proofAudience {
		return "aud is not " + proofAudience
	}
	if !strings.EqualFold(jt.claimString("iss"), a.ObjectID) {
		return "iss is not the application's object id"
	}
	nbf, ok1 := jt.claimTime("nbf")
	exp, ok2 := jt.claimTime("exp")
	now := e.cfg.now()
	switch {
	case !ok1 || !ok2:
		return "nbf and exp are required"
	case exp.Sub(nbf) > maxProofLifetime:
		return "nbf and exp are more than 10 minutes apart"
	case now.Before(nbf.Add(-clockSkew)) || now.After(exp.Add(clockSkew)):
		return "now is outside nbf..exp"
	}
	x5t, _ := decodeThumbprintHeader(jt.headerString("x5t"))
	x5tS256, _ := decodeThumbprintHeader(jt.headerString("x5t#S256"))
	kid := jt.headerString("kid")
	named := len(x5t) > 0 || len(x5tS256) > 0 || kid != ""
	for _, k := range a.verifyCerts() {
		if now.Before(k.StartDateTime) || now.After(k.EndDateTime) {
			continue
		}
		s1 := sha1.Sum(k.Key)
		s256 := sha256.Sum256(k.Key)
		if named && !bytes.Equal(x5t, s1[:]) && !bytes.Equal(x5tS256, s256[:]) &&
			!strings.EqualFold(kid, hex.EncodeToString(s1[:])) && kid != base64.RawURLEncoding.EncodeToString(s1[:]) {
			continue
		}
		cert, err := parseCertDER(k.Key)
		if err != nil {
			continue
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			continue
		}
		if jt.verifyRSA(alg, pub) == nil {
			return ""
		}
	}
	return "no certificate currently valid on the application verifies the signature"
}
