package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// graphError is an error answer of Graph.
type graphError struct {
	status  int
	code    string
	message string
}

func (g *graphError) Error() string { return g.code + ": " + g.message }

func badRequest(format string, args ...any) *graphError {
	return &graphError{status: http.StatusBadRequest, code: "Request_BadRequest", message: fmt.Sprintf(format, args...)}
}

var errForbidden = &graphError{status: http.StatusForbidden, code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation."}

func notFound(id string) *graphError {
	return &graphError{status: http.StatusNotFound, code: "Request_ResourceNotFound",
		message: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

// writeGraphError answers in Graph's shape. innerError always carries date, request-id and
// client-request-id: the client's, or the request id when the client sent none, as Graph does.
func (e *Emulator) writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	ri := infoOf(r)
	ri.errorCode = code
	setGraphRequestIDs(w, r)
	inner := map[string]any{
		"date":              e.cfg.now().UTC().Format("2006-01-02T15:04:05"),
		"request-id":        ri.requestID,
		"client-request-id": ri.graphClientRequestID(),
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "innerError": inner}})
}

// setGraphRequestIDs sets the request-id and client-request-id headers every Graph answer
// carries.
func setGraphRequestIDs(w http.ResponseWriter, r *http.Request) {
	ri := infoOf(r)
	w.Header().Set("request-id", ri.requestID)
	w.Header().Set("client-request-id", ri.graphClientRequestID())
}

// jsonObject is a JSON object that keeps its members in order.
type jsonObject []jsonMember

type jsonMember struct {
	name  string
	value any
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// graphTime formats a time as Graph does: UTC, seconds, a fraction only when there is one.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

// appProperties lists the structural properties of microsoft.graph.application (v1.0), in
// the order Graph writes them. Those the emulator does not model read as null or [].
var appProperties = []string{
	"id", "deletedDateTime", "appId", "applicationTemplateId", "disabledByMicrosoftStatus",
	"createdDateTime", "displayName", "description", "groupMembershipClaims", "identifierUris",
	"isDeviceOnlyAuthSupported", "isFallbackPublicClient", "nativeAuthenticationApisEnabled",
	"notes", "publisherDomain", "serviceManagementReference", "signInAudience", "tags",
	"tokenEncryptionKeyId", "uniqueName", "samlMetadataUrl", "defaultRedirectUri", "certification",
	"optionalClaims", "requestSignatureVerification", "servicePrincipalLockConfiguration",
	"addIns", "api", "appRoles", "info", "keyCredentials", "parentalControlSettings",
	"passwordCredentials", "publicClient", "requiredResourceAccess", "verifiedPublisher", "web",
	"spa", "authenticationBehaviors",
}

// canonicalAppProperty returns the property's spelling in the schema (Graph matches $select
// names case-insensitively).
func canonicalAppProperty(name string) (string, bool) {
	for _, p := range appProperties {
		if strings.EqualFold(p, name) {
			return p, true
		}
	}
	return "", false
}

// renderApp writes an application as Graph does: every property, or only those selected.
// withKey says whether credentials carry their key (a single-object read that selects
// keyCredentials); everywhere else key is null.
func (e *Emulator) renderApp(t *tenant, a *app, selected []string, withKey bool) jsonObject {
	props := appProperties
	if len(selected) > 0 {
		props = nil
		for _, p := range appProperties {
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
			v = a.ObjectID
		case "appId":
			v = a.AppID
		case "displayName":
			v = a.DisplayName
		case "createdDateTime":
			v = graphTime(a.CreatedDateTime)
		case "publisherDomain":
			v = t.Domain
		case "signInAudience":
			v = a.audience()
		case "isDeviceOnlyAuthSupported", "isFallbackPublicClient", "nativeAuthenticationApisEnabled":
			v = nil
		case "identifierUris", "tags", "addIns", "appRoles", "requiredResourceAccess":
			v = []any{}
		case "keyCredentials":
			list := []jsonObject{}
			for _, k := range a.KeyCredentials {
				list = append(list, renderKeyCred(k, withKey))
			}
			v = list
		case "passwordCredentials":
			list := []jsonObject{}
			for _, pc := range a.PasswordCredentials {
				list = append(list, renderPasswordCred(pc))
			}
			v = list
		}
		obj = append(obj, jsonMember{p, v})
	}
	return obj
}

func renderKeyCred(k keyCred, withKey bool) jsonObject {
	var cki, key, name any
	if k.CustomKeyIdentifier != nil {
		cki = encodeBinary(k.CustomKeyIdentifier)
	}
	if withKey && len(k.Key) > 0 {
		key = encodeBinary(k.Key)
	}
	if k.DisplayName != "" {
		name = k.DisplayName
	}
	return jsonObject{
		{"customKeyIdentifier", cki},
		{"displayName", name},
		{"endDateTime", graphTime(k.EndDateTime)},
		{"key", key},
		{"keyId", k.KeyID},
		{"startDateTime", graphTime(k.StartDateTime)},
		{"type", k.Type},
		{"usage", k.Usage},
	}
}

func renderPasswordCred(p passwordCred) jsonObject {
	var cki, name any
	if p.CustomKeyIdentifier != nil {
		cki = encodeBinary(p.CustomKeyIdentifier)
	}
	if p.DisplayName != "" {
		name = p.DisplayName
	}
	return jsonObject{
		{"customKeyIdentifier", cki},
		{"displayName", name},
		{"endDateTime", graphTime(p.EndDateTime)},
		{"hint", p.Hint},
		{"keyId", p.KeyID},
		{"secretText", nil},
		{"startDateTime", graphTime(p.StartDateTime)},
	}
}

// keyCredInput is a keyCredential object of a request body: each property absent, null, or
// a value.
type keyCredInput struct {
	raw map[string]json.RawMessage
}

var keyCredProps = []string{"@odata.type", "customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"}

func parseKeyCredInput(raw json.RawMessage, resource string) (keyCredInput, *graphError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return keyCredInput{}, badRequest("Invalid value specified for property 'keyCredentials' of resource '%s'.", resource)
	}
	for name := range m {
		if !containsExact(keyCredProps, name) {
			return keyCredInput{}, unknownProperty(name, "microsoft.graph.keyCredential")
		}
	}
	in := keyCredInput{raw: m}
	if t, ok, ge := in.str("@odata.type"); ge != nil {
		return keyCredInput{}, ge
	} else if ok && strings.TrimPrefix(t, "#") != "microsoft.graph.keyCredential" {
		return keyCredInput{}, badRequest("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", strings.TrimPrefix(t, "#"))
	}
	return in, nil
}

func unknownProperty(name, typ string) *graphError {
	return &graphError{status: http.StatusBadRequest, code: "Request_BadRequest",
		message: fmt.Sprintf("The property '%s' does not exist on type '%s'. Make sure to only use property names that are defined by the type or mark the type as open type.", name, typ)}
}

func containsExact(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// str returns a string property: ok is false when it is absent or null.
func (in keyCredInput) str(name string) (string, bool, *graphError) {
	raw, present := in.raw[name]
	if !present || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, badRequest("Invalid value specified for property '%s' of resource 'KeyCredential'.", name)
	}
	return s, true, nil
}

func (in keyCredInput) time(name string) (time.Time, bool, *graphError) {
	s, ok, ge := in.str(name)
	if ge != nil || !ok {
		return time.Time{}, false, ge
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, badRequest("Invalid value specified for property '%s' of resource 'KeyCredential'.", name)
	}
	return t.UTC(), true, nil
}

func (in keyCredInput) binary(name string) ([]byte, bool, *graphError) {
	s, ok, ge := in.str(name)
	if ge != nil || !ok {
		return nil, false, ge
	}
	b, err := decodeBase64Loose(s)
	if err != nil {
		return nil, false, badRequest("Cannot convert the literal '%s' to the expected type 'Edm.Binary'.", truncateForMessage(s))
	}
	return b, true, nil
}

func truncateForMessage(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// errUpdateExisting is the directory's refusal to change an existing credential
// (*inferred* to hold on Graph: docs/graph.md).
func errUpdateExisting(keyID string) *graphError {
	return badRequest("Update to existing credential with KeyId '%s' is not allowed.", keyID)
}

// differsFrom reports whether a property present and non-null in in differs from the stored
// credential k. The error is for a malformed value.
func (in keyCredInput) differsFrom(k keyCred) (bool, *graphError) {
	for _, name := range []string{"type", "usage"} {
		s, ok, ge := in.str(name)
		if ge != nil {
			return false, ge
		}
		stored := k.Type
		if name == "usage" {
			stored = k.Usage
		}
		if ok && !strings.EqualFold(s, stored) {
			return true, nil
		}
	}
	if s, ok, ge := in.str("displayName"); ge != nil {
		return false, ge
	} else if ok && truncateDisplayName(s) != k.DisplayName {
		return true, nil
	}
	for _, name := range []string{"startDateTime", "endDateTime"} {
		t, ok, ge := in.time(name)
		if ge != nil {
			return false, ge
		}
		stored := k.StartDateTime
		if name == "endDateTime" {
			stored = k.EndDateTime
		}
		if ok && !t.Equal(stored) {
			return true, nil
		}
	}
	for _, name := range []string{"customKeyIdentifier", "key"} {
		b, ok, ge := in.binary(name)
		if ge != nil {
			return false, ge
		}
		stored := k.CustomKeyIdentifier
		if name == "key" {
			stored = k.Key
		}
		if ok && !bytes.Equal(b, stored) {
			return true, nil
		}
	}
	return false, nil
}

// updateStored applies the properties present and non-null in in to the stored credential k
// (WithExistingCredentialUpdates), validating them as for a new credential.
func (e *Emulator) updateStored(in keyCredInput, k keyCred) (keyCred, *graphError) {
	merged := keyCredInput{raw: map[string]json.RawMessage{}}
	stored := renderKeyCred(k, true)
	for _, m := range stored {
		b, err := json.Marshal(m.value)
		if err != nil {
			return keyCred{}, badRequest("%s", err.Error())
		}
		merged.raw[m.name] = b
	}
	for name, raw := range in.raw {
		if !isNull(raw) && name != "@odata.type" {
			merged.raw[name] = raw
		}
	}
	// A changed certificate gets its own identifier and, unless given, its own dates.
	if _, changed := in.raw["key"]; changed {
		if b, ok, _ := in.binary("key"); ok && !bytes.Equal(b, k.Key) {
			for _, f := range []string{"customKeyIdentifier", "startDateTime", "endDateTime"} {
				if raw, given := in.raw[f]; !given || isNull(raw) {
					delete(merged.raw, f)
				}
			}
		}
	}
	return e.newKeyCred(merged, k.KeyID)
}

// newKeyCred validates a credential Graph has not seen and returns what it stores. keyID
// is the entry's keyId ("" to generate one).
func (e *Emulator) newKeyCred(in keyCredInput, keyID string) (keyCred, *graphError) {
	typ, ok, ge := in.str("type")
	if ge != nil {
		return keyCred{}, ge
	}
	if !ok || !strings.EqualFold(typ, certs.KeyTypeX509Cert) {
		// The message mirrors Graph's observed one for usage (*inferred* for type).
		return keyCred{}, badRequest(`The value for the property "type" in one of your credentials is invalid. Acceptable values are AsymmetricX509Cert.`)
	}
	usage, ok, ge := in.str("usage")
	if ge != nil {
		return keyCred{}, ge
	}
	switch {
	case ok && strings.EqualFold(usage, "Verify"):
		usage = certs.KeyUsageVerify
	case ok && strings.EqualFold(usage, "Sign"):
		usage = "Sign"
	default:
		return keyCred{}, badRequest(`The value for the property "usage" in one of your credentials is invalid. Acceptable values are Sign, Verify.`)
	}
	keyText, ok, ge := in.str("key")
	if ge != nil {
		return keyCred{}, ge
	}
	if !ok || strings.TrimSpace(keyText) == "" {
		return keyCred{}, badRequest("KeyValue cannot be null or empty.") // *inferred* wording
	}
	der, err := decodeBase64Loose(keyText)
	if err != nil {
		return keyCred{}, badRequest("Invalid certificate: Key value is invalid certificate")
	}
	cert, err := parseCertDER(der)
	if err != nil {
		return keyCred{}, badRequest("Invalid certificate: Key value is invalid certificate")
	}
	k := keyCred{KeyID: keyID, Type: certs.KeyTypeX509Cert, Usage: usage, Key: der}
	if k.KeyID == "" {
		k.KeyID = newGUID()
	}
	if name, ok, ge := in.str("displayName"); ge != nil {
		return keyCred{}, ge
	} else if ok {
		k.DisplayName = truncateDisplayName(name)
	}
	start, okStart, ge := in.time("startDateTime")
	if ge != nil {
		return keyCred{}, ge
	}
	end, okEnd, ge := in.time("endDateTime")
	if ge != nil {
		return keyCred{}, ge
	}
	if !okStart {
		start = cert.NotBefore.UTC()
	}
	if !okEnd {
		end = cert.NotAfter.UTC()
	}
	if msg := checkCredentialDates(cert, start, end); msg != "" && (!e.cfg.anyCredentialDates || !end.After(start)) {
		return keyCred{}, badRequest("%s", msg)
	}
	k.StartDateTime, k.EndDateTime = start, end
	cki, ok, ge := in.binary("customKeyIdentifier")
	if ge != nil {
		return keyCred{}, ge
	}
	if ok {
		k.CustomKeyIdentifier = cki
	} else {
		k.CustomKeyIdentifier = computeCKI(der, e.cfg.cki)
	}
	return k, nil
}
