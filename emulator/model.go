package emulator

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Graph application permissions (app roles of Microsoft Graph) the emulator knows.
const (
	RoleApplicationReadAll        = "Application.Read.All"
	RoleApplicationReadWriteAll   = "Application.ReadWrite.All"
	RoleApplicationReadWriteOwned = "Application.ReadWrite.OwnedBy"
	RoleDirectoryReadAll          = "Directory.Read.All"
	RoleDirectoryReadWriteAll     = "Directory.ReadWrite.All"
	// RoleAppRoleAssignmentReadWriteAll grants app roles (with a read permission besides).
	RoleAppRoleAssignmentReadWriteAll = "AppRoleAssignment.ReadWrite.All"
)

// knownRoles lists the Graph roles a seed may grant. Anything else is a typo.
var knownRoles = []string{
	RoleApplicationReadAll, RoleApplicationReadWriteAll, RoleApplicationReadWriteOwned,
	RoleDirectoryReadAll, RoleDirectoryReadWriteAll, RoleAppRoleAssignmentReadWriteAll,
}

// stateVersion is the schema version of state.json.
const stateVersion = 1

// tenantState is everything state.json holds. Handlers change it only through
// Emulator.mutate, which works on a clone and swaps it in once it is on disk.
type tenantState struct {
	Version int       `json:"version"`
	Tenants []*tenant `json:"tenants"`
}

type tenant struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
	Apps   []*app `json:"applications"`
	// Users are the tenant's member users, who sign in with the device code flow.
	Users []*user `json:"users,omitempty"`
}

// user is a member user of a tenant.
type user struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	// DirectoryRoles are the Microsoft Entra built-in roles the user holds, by display name
	// (knownDirectoryRoles).
	DirectoryRoles []string `json:"directoryRoles"`
}

type app struct {
	ObjectID    string `json:"objectId"`
	AppID       string `json:"appId"`
	DisplayName string `json:"displayName"`
	// ServicePrincipalID is the id of the app's service principal in the tenant; "" while it
	// has none (an application created through Graph gets one only from POST
	// /servicePrincipals).
	ServicePrincipalID string    `json:"servicePrincipalId"`
	CreatedDateTime    time.Time `json:"createdDateTime"`
	// Owners holds the ids of the owners: service principals of the tenant's apps, or users.
	Owners []string `json:"owners"`
	// Roles are the Graph application permissions granted to the app's service principal
	// (app role assignments on Microsoft Graph's service principal).
	Roles []string `json:"roles"`
	// RoleTimes holds when each role was assigned through Graph (createdDateTime of the
	// assignment); roles from a seed have none.
	RoleTimes           map[string]time.Time `json:"roleTimes,omitempty"`
	KeyCredentials      []keyCred            `json:"keyCredentials"`
	PasswordCredentials []passwordCred       `json:"passwordCredentials"`
	// Version counts the writes to the app (starting at 1).
	Version int64 `json:"version"`
}

type keyCred struct {
	KeyID               string    `json:"keyId"`
	Type                string    `json:"type"`
	Usage               string    `json:"usage"`
	Key                 []byte    `json:"key"`
	DisplayName         string    `json:"displayName"`
	StartDateTime       time.Time `json:"startDateTime"`
	EndDateTime         time.Time `json:"endDateTime"`
	CustomKeyIdentifier []byte    `json:"customKeyIdentifier"`
}

type passwordCred struct {
	KeyID               string    `json:"keyId"`
	DisplayName         string    `json:"displayName"`
	Hint                string    `json:"hint"`
	SecretSHA256        []byte    `json:"secretSha256"`
	StartDateTime       time.Time `json:"startDateTime"`
	EndDateTime         time.Time `json:"endDateTime"`
	CustomKeyIdentifier []byte    `json:"customKeyIdentifier"`
}

func (s *tenantState) clone() *tenantState {
	out := &tenantState{Version: s.Version}
	for _, t := range s.Tenants {
		nt := &tenant{ID: t.ID, Domain: t.Domain}
		for _, a := range t.Apps {
			nt.Apps = append(nt.Apps, a.clone())
		}
		for _, u := range t.Users {
			nu := *u
			nu.DirectoryRoles = slices.Clone(u.DirectoryRoles)
			nt.Users = append(nt.Users, &nu)
		}
		out.Tenants = append(out.Tenants, nt)
	}
	return out
}

func (a *app) clone() *app {
	b := *a
	b.Owners = slices.Clone(a.Owners)
	b.Roles = slices.Clone(a.Roles)
	b.RoleTimes = maps.Clone(a.RoleTimes)
	b.KeyCredentials = make([]keyCred, len(a.KeyCredentials))
	for i, k := range a.KeyCredentials {
		k.Key = bytes.Clone(k.Key)
		k.CustomKeyIdentifier = bytes.Clone(k.CustomKeyIdentifier)
		b.KeyCredentials[i] = k
	}
	b.PasswordCredentials = make([]passwordCred, len(a.PasswordCredentials))
	for i, p := range a.PasswordCredentials {
		p.SecretSHA256 = bytes.Clone(p.SecretSHA256)
		p.CustomKeyIdentifier = bytes.Clone(p.CustomKeyIdentifier)
		b.PasswordCredentials[i] = p
	}
	return &b
}

// tenantByName finds a tenant by id or domain name (case-insensitive).
func (s *tenantState) tenantByName(name string) *tenant {
	for _, t := range s.Tenants {
		if strings.EqualFold(t.ID, name) || (t.Domain != "" && strings.EqualFold(t.Domain, name)) {
			return t
		}
	}
	return nil
}

// appByAppID finds an application by client id in any tenant (app ids are globally unique,
// as in Entra).
func (s *tenantState) appByAppID(appID string) (*tenant, *app) {
	for _, t := range s.Tenants {
		if a := t.appByAppID(appID); a != nil {
			return t, a
		}
	}
	return nil, nil
}

func (t *tenant) appByAppID(appID string) *app {
	for _, a := range t.Apps {
		if strings.EqualFold(a.AppID, appID) {
			return a
		}
	}
	return nil
}

func (t *tenant) appByObjectID(id string) *app {
	for _, a := range t.Apps {
		if strings.EqualFold(a.ObjectID, id) {
			return a
		}
	}
	return nil
}

func (t *tenant) appBySPID(id string) *app {
	if id == "" {
		return nil
	}
	for _, a := range t.Apps {
		if strings.EqualFold(a.ServicePrincipalID, id) {
			return a
		}
	}
	return nil
}

// userByID finds a user by object id.
func (t *tenant) userByID(id string) *user {
	for _, u := range t.Users {
		if strings.EqualFold(u.ID, id) {
			return u
		}
	}
	return nil
}

// userByName finds a user by object id or userPrincipalName (case-insensitive); a name
// without "@" may name the part of a userPrincipalName before it, when only one user has it.
func (t *tenant) userByName(name string) *user {
	if u := t.userByID(name); u != nil {
		return u
	}
	var local *user
	n := 0
	for _, u := range t.Users {
		if strings.EqualFold(u.UserPrincipalName, name) {
			return u
		}
		if before, _, _ := strings.Cut(u.UserPrincipalName, "@"); !strings.Contains(name, "@") && strings.EqualFold(before, name) {
			local, n = u, n+1
		}
	}
	if n == 1 {
		return local
	}
	return nil
}

// hasDirectoryRole reports whether u holds one of roles.
func (u *user) hasDirectoryRole(roles ...string) bool {
	for _, r := range roles {
		if containsFold(u.DirectoryRoles, r) {
			return true
		}
	}
	return false
}

// isOwner reports whether the service principal spID owns a.
func (a *app) isOwner(spID string) bool {
	return slices.ContainsFunc(a.Owners, func(o string) bool { return strings.EqualFold(o, spID) })
}

func (a *app) keyCredByID(keyID string) (int, bool) {
	for i, k := range a.KeyCredentials {
		if strings.EqualFold(k.KeyID, keyID) {
			return i, true
		}
	}
	return -1, false
}

// verifyCerts returns the app's certificate credentials usable to verify sign-ins
// (AsymmetricX509Cert with usage Verify), whatever their validity window.
func (a *app) verifyCerts() []keyCred {
	var out []keyCred
	for _, k := range a.KeyCredentials {
		if k.Type == certs.KeyTypeX509Cert && k.Usage == certs.KeyUsageVerify && len(k.Key) > 0 {
			out = append(out, k)
		}
	}
	return out
}

// checkSecret compares secret with the app's password credentials. It reports whether one
// matches, and whether that one is inside its validity window at now.
func (a *app) checkSecret(secret string, now time.Time) (matched, valid bool) {
	sum := sha256.Sum256([]byte(secret))
	for _, p := range a.PasswordCredentials {
		if subtle.ConstantTimeCompare(sum[:], p.SecretSHA256) == 1 {
			matched = true
			if !now.Before(p.StartDateTime) && now.Before(p.EndDateTime) {
				return true, true
			}
		}
	}
	return matched, false
}

// validate checks the invariants New and the helpers rely on: GUIDs, unique ids, owners
// that exist in the same tenant, known roles.
func (s *tenantState) validate() error {
	if len(s.Tenants) == 0 {
		return errors.New("no tenant")
	}
	seen := map[string]string{}
	unique := func(kind, id string) error {
		id = strings.ToLower(id)
		if _, ok := parseGUID(id); !ok {
			return fmt.Errorf("%s %q is not a GUID", kind, id)
		}
		if prev, ok := seen[id]; ok {
			return fmt.Errorf("%s %s is already used as %s", kind, id, prev)
		}
		seen[id] = kind
		return nil
	}
	for _, t := range s.Tenants {
		if err := unique("tenant id", t.ID); err != nil {
			return err
		}
		upns := map[string]bool{}
		for _, u := range t.Users {
			if err := unique("user id", u.ID); err != nil {
				return fmt.Errorf("user %q: %w", u.UserPrincipalName, err)
			}
			if u.UserPrincipalName == "" || upns[strings.ToLower(u.UserPrincipalName)] {
				return fmt.Errorf("user %s: userPrincipalName %q is empty or used twice", u.ID, u.UserPrincipalName)
			}
			upns[strings.ToLower(u.UserPrincipalName)] = true
			for _, r := range u.DirectoryRoles {
				if !slices.Contains(knownDirectoryRoles, r) {
					return fmt.Errorf("user %q: unknown directory role %q (known: %s)", u.UserPrincipalName, r, strings.Join(knownDirectoryRoles, ", "))
				}
			}
		}
		for _, a := range t.Apps {
			for _, id := range []struct{ kind, v string }{
				{"appId", a.AppID}, {"objectId", a.ObjectID}, {"servicePrincipalId", a.ServicePrincipalID},
			} {
				if id.kind == "servicePrincipalId" && id.v == "" {
					continue // no service principal yet
				}
				if err := unique(id.kind, id.v); err != nil {
					return fmt.Errorf("application %q: %w", a.DisplayName, err)
				}
			}
			for _, o := range a.Owners {
				if t.appBySPID(o) == nil && t.userByID(o) == nil {
					return fmt.Errorf("application %q: owner %s is neither a service principal nor a user of tenant %s", a.DisplayName, o, t.ID)
				}
			}
			for _, r := range a.Roles {
				if !slices.Contains(knownRoles, r) {
					return fmt.Errorf("application %q: unknown Graph role %q (known: %s)", a.DisplayName, r, strings.Join(knownRoles, ", "))
				}
			}
			keyIDs := map[string]bool{}
			for _, k := range a.KeyCredentials {
				if keyIDs[strings.ToLower(k.KeyID)] {
					return fmt.Errorf("application %q: keyId %s appears twice", a.DisplayName, k.KeyID)
				}
				keyIDs[strings.ToLower(k.KeyID)] = true
			}
			for _, p := range a.PasswordCredentials {
				if keyIDs[strings.ToLower(p.KeyID)] {
					return fmt.Errorf("application %q: keyId %s appears twice", a.DisplayName, p.KeyID)
				}
				keyIDs[strings.ToLower(p.KeyID)] = true
			}
		}
	}
	return nil
}

// loadState reads state.json. It returns (nil, nil) when the file does not exist.
func loadState(path string) (*tenantState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading emulator state %s: %w", path, err)
	}
	var s tenantState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("reading emulator state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("reading emulator state %s: version %d, want %d", path, s.Version, stateVersion)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("reading emulator state %s: %w", path, err)
	}
	return &s, nil
}

// saveState writes state.json atomically (temp file, fsync, rename).
func saveState(path string, s *tenantState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding emulator state: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

// StateView is what GET /_emulator/state returns: every tenant with its applications and
// registered clients. It is a copy: changing it changes nothing.
type StateView struct {
	Tenants []TenantView `json:"tenants"`
}

// TenantView describes one tenant.
type TenantView struct {
	ID           string            `json:"id"`
	Domain       string            `json:"domain,omitempty"`
	Applications []ApplicationView `json:"applications"`
	// Clients are the service principals that can sign in to the token endpoint (every
	// application that has one), with what they last did there.
	Clients []ClientView `json:"clients"`
	// Users are the member users (administrators who sign in with the device code flow).
	Users []UserView `json:"users"`
	// GraphServicePrincipalID is the id of Microsoft Graph's service principal in the tenant,
	// the resource of Graph's app role assignments.
	GraphServicePrincipalID string `json:"graphServicePrincipalId"`
}

// UserView describes a member user.
type UserView struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	DirectoryRoles    []string `json:"directoryRoles"`
}

// ApplicationView describes one app registration.
type ApplicationView struct {
	AppID              string `json:"appId"`
	ObjectID           string `json:"objectId"`
	DisplayName        string `json:"displayName"`
	ServicePrincipalID string `json:"servicePrincipalId"`
	// Owners are the service principals that own the app.
	Owners []OwnerView `json:"owners"`
	// Roles are the Graph application permissions granted to the app's service principal.
	Roles               []string                 `json:"roles"`
	KeyCredentials      []KeyCredentialView      `json:"keyCredentials"`
	PasswordCredentials []PasswordCredentialView `json:"passwordCredentials"`
	// Version counts the writes to the app.
	Version int64 `json:"version"`
}

// OwnerView names an owner: a service principal (Type "servicePrincipal", with its app's
// AppID) or a user (Type "user", with UserPrincipalName; ServicePrincipalID then holds the
// user's id).
type OwnerView struct {
	Type               string `json:"type"`
	AppID              string `json:"appId,omitempty"`
	ServicePrincipalID string `json:"servicePrincipalId"`
	DisplayName        string `json:"displayName"`
	UserPrincipalName  string `json:"userPrincipalName,omitempty"`
}

// KeyCredentialView describes one key credential, key included.
type KeyCredentialView struct {
	KeyID       string `json:"keyId"`
	DisplayName string `json:"displayName"`
	// Thumbprint is the SHA-1 of the certificate, upper-case hex.
	Thumbprint    string    `json:"thumbprint"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	// CustomKeyIdentifier is rendered as Graph renders it (see WithCustomKeyIdentifierFormat).
	CustomKeyIdentifier string `json:"customKeyIdentifier"`
	Type                string `json:"type"`
	Usage               string `json:"usage"`
	// Key is the certificate's DER (base64 in JSON).
	Key []byte `json:"key"`
	// SignInFrom is when the token endpoint starts accepting the credential, while it does
	// not yet (sign-in propagation); absent once it does.
	SignInFrom *time.Time `json:"signInFrom,omitempty"`
}

// PasswordCredentialView describes one password credential (never its secret).
type PasswordCredentialView struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName"`
	Hint          string    `json:"hint"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	// SignInFrom is when the token endpoint starts accepting the secret, while it does not
	// yet; absent once it does.
	SignInFrom *time.Time `json:"signInFrom,omitempty"`
}

// ClientView describes a service principal as a client of the token endpoint.
type ClientView struct {
	AppID              string   `json:"appId"`
	ServicePrincipalID string   `json:"servicePrincipalId"`
	DisplayName        string   `json:"displayName"`
	Roles              []string `json:"roles"`
	// TokensIssued counts the access tokens issued to the client since the emulator started.
	TokensIssued int `json:"tokensIssued"`
	// LastSignIn is the last successful token request, if any since the emulator started.
	LastSignIn *SignInView `json:"lastSignIn,omitempty"`
}

// SignInView is one successful token request.
type SignInView struct {
	Time time.Time `json:"time"`
	// Method is "certificate" or "secret".
	Method string `json:"method"`
	// Thumbprint is the SHA-1 of the certificate that signed the client assertion.
	Thumbprint string `json:"thumbprint,omitempty"`
	Resource   string `json:"resource"`
}

// signInStats is the in-memory record behind ClientView.
type signInStats struct {
	count int
	last  SignInView
}

func (e *Emulator) appView(t *tenant, a *app) ApplicationView {
	v := ApplicationView{
		AppID:               a.AppID,
		ObjectID:            a.ObjectID,
		DisplayName:         a.DisplayName,
		ServicePrincipalID:  a.ServicePrincipalID,
		Owners:              []OwnerView{},
		Roles:               append([]string{}, a.Roles...),
		KeyCredentials:      []KeyCredentialView{},
		PasswordCredentials: []PasswordCredentialView{},
		Version:             a.Version,
	}
	for _, o := range a.Owners {
		ov := OwnerView{Type: "servicePrincipal", ServicePrincipalID: o}
		if oa := t.appBySPID(o); oa != nil {
			ov.AppID, ov.DisplayName = oa.AppID, oa.DisplayName
		} else if u := t.userByID(o); u != nil {
			ov.Type, ov.DisplayName, ov.UserPrincipalName = "user", u.DisplayName, u.UserPrincipalName
		}
		v.Owners = append(v.Owners, ov)
	}
	for _, k := range a.KeyCredentials {
		kv := e.keyCredView(k)
		kv.SignInFrom = e.signInFromLocked(a, k.KeyID)
		v.KeyCredentials = append(v.KeyCredentials, kv)
	}
	for _, p := range a.PasswordCredentials {
		v.PasswordCredentials = append(v.PasswordCredentials, PasswordCredentialView{
			KeyID: p.KeyID, DisplayName: p.DisplayName, Hint: p.Hint,
			StartDateTime: p.StartDateTime, EndDateTime: p.EndDateTime,
			SignInFrom: e.signInFromLocked(a, p.KeyID),
		})
	}
	return v
}

func (e *Emulator) keyCredView(k keyCred) KeyCredentialView {
	v := KeyCredentialView{
		KeyID:         k.KeyID,
		DisplayName:   k.DisplayName,
		StartDateTime: k.StartDateTime,
		EndDateTime:   k.EndDateTime,
		Type:          k.Type,
		Usage:         k.Usage,
		Key:           bytes.Clone(k.Key),
	}
	if len(k.Key) > 0 {
		v.Thumbprint = certs.ThumbprintSHA1(k.Key)
	}
	if k.CustomKeyIdentifier != nil {
		v.CustomKeyIdentifier = encodeBinary(k.CustomKeyIdentifier)
	}
	return v
}

// stateViewLocked builds the StateView. The caller holds e.mu.
func (e *Emulator) stateViewLocked() StateView {
	sv := StateView{Tenants: []TenantView{}}
	for _, t := range e.st.Tenants {
		tv := TenantView{ID: t.ID, Domain: t.Domain, Applications: []ApplicationView{}, Clients: []ClientView{},
			Users: []UserView{}, GraphServicePrincipalID: graphSPID(t)}
		for _, u := range t.Users {
			tv.Users = append(tv.Users, UserView{ID: u.ID, UserPrincipalName: u.UserPrincipalName,
				DisplayName: u.DisplayName, DirectoryRoles: append([]string{}, u.DirectoryRoles...)})
		}
		for _, a := range t.Apps {
			tv.Applications = append(tv.Applications, e.appView(t, a))
			if a.ServicePrincipalID == "" {
				continue // no service principal: not a client of the token endpoint
			}
			cv := ClientView{
				AppID: a.AppID, ServicePrincipalID: a.ServicePrincipalID, DisplayName: a.DisplayName,
				Roles: append([]string{}, a.Roles...),
			}
			if st, ok := e.signIns[strings.ToLower(a.AppID)]; ok {
				cv.TokensIssued = st.count
				last := st.last
				cv.LastSignIn = &last
			}
			tv.Clients = append(tv.Clients, cv)
		}
		sv.Tenants = append(sv.Tenants, tv)
	}
	return sv
}

// parseCertDER parses a DER certificate.
func parseCertDER(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return c, nil
}
