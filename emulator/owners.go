package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ownerProperties are the directoryObject properties an owner is rendered with. The
// emulator's owners are always the service principals of its applications.
var ownerProperties = []string{"id", "appId", "displayName"}

// serveAppOwners answers GET /applications/{id}/owners and
// /applications(appId='{appId}')/owners: the app's owners as directoryObjects (docs/graph.md,
// "List owners"). Reading needs what reading the app needs. The owners' own properties need
// a right to read service principals (Application.Read.All, Application.ReadWrite.All or
// Directory.*); with Application.ReadWrite.OwnedBy alone each owner is returned with its
// @odata.type and id and every other property null, as Graph does for objects the caller may
// not read (unconfirmed for OwnedBy): a client must compare owners by id.
func (e *Emulator) serveAppOwners(w http.ResponseWriter, r *http.Request, c caller, ref appRef) *graphError {
	if r.Method != http.MethodGet {
		return methodNotAllowed()
	}
	selected, top, ge := parseOwnersQuery(r)
	if ge != nil {
		return ge
	}
	if !e.canReadAny(c) {
		return errForbidden
	}
	full := c.hasRole(RoleApplicationReadAll, RoleApplicationReadWriteAll, RoleDirectoryReadAll, RoleDirectoryReadWriteAll)
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
	props := ownerProperties
	if len(selected) > 0 {
		props = selected
	}
	owners := []jsonObject{}
	for i, id := range view.Owners {
		if i == top {
			break
		}
		o := jsonObject{{"@odata.type", "#microsoft.graph.servicePrincipal"}}
		sp := t.appBySPID(id)
		for _, p := range props {
			var v any
			switch {
			case p == "id":
				v = id
			case !full || sp == nil:
				v = nil
			case p == "appId":
				v = sp.AppID
			case p == "displayName":
				v = sp.DisplayName
			}
			o = append(o, jsonMember{p, v})
		}
		owners = append(owners, o)
	}
	e.mu.Unlock()
	e.writeGraphJSON(w, r, http.StatusOK, jsonObject{
		{"@odata.context", "https://" + r.Host + "/v1.0/$metadata#directoryObjects"},
		{"value", owners},
	})
	return nil
}

// parseOwnersQuery reads $select (id, appId, displayName) and $top; other options are
// refused as the emulator does not implement them.
func parseOwnersQuery(r *http.Request) (selected []string, top int, ge *graphError) {
	top = maxPageSize
	for name, vals := range r.URL.Query() {
		val := ""
		if len(vals) > 0 {
			val = vals[0]
		}
		switch opt := strings.ToLower(strings.TrimPrefix(name, "$")); {
		case opt == "select":
			for _, p := range strings.Split(val, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				canon := ""
				for _, known := range ownerProperties {
					if strings.EqualFold(known, p) {
						canon = known
					}
				}
				if canon == "" {
					return nil, 0, badRequest("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", p)
				}
				selected = append(selected, canon)
			}
		case opt == "top":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxPageSize {
				return nil, 0, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery", message: fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", val, maxPageSize)}
			}
			top = n
		case strings.HasPrefix(name, "$"):
			return nil, 0, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
				message: fmt.Sprintf("The query option '%s' is not supported by the emulator here.", name)}
		}
	}
	return selected, top, nil
}
