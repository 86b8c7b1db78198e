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

// Sign-in audiences of an application (its signInAudience property): who may use it.
const (
	// SignInAudienceMyOrg is a single-tenant application: only its home tenant (the tenant
	// that holds the application object) may use it.
	SignInAudienceMyOrg = "AzureADMyOrg"
	// SignInAudienceMultipleOrgs is a multitenant application: any Microsoft Entra tenant
	// where it has a service principal (made by an administrator's consent) may use it.
	SignInAudienceMultipleOrgs = "AzureADMultipleOrgs"
)

// stateVersion is the schema version of state.json. Version 2 added an application's
// signInAudience and a tenant's foreignServicePrincipals; a version 1 file has neither (every
// application single-tenant) and loads as it is.
const stateVersion = 2

// minStateVersion is the oldest state.json New still reads.
const minStateVersion = 1

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
	// ForeignSPs are the service principals of multitenant applications registered in other
	// tenants that an administrator of this tenant consented to.
	ForeignSPs []*foreignSP `json:"foreignServicePrincipals,omitempty"`
}

// foreignSP is the service principal, in a tenant, of an application registered in another
// tenant (its home tenant): what admin consent makes. It holds what the application may do
// in this tenant (the Graph application permissions granted here) and may own this tenant's
// applications. It has no credentials: the application signs in here with the credentials
// of its application object, in its home tenant.
type foreignSP struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
	// DisplayName is the application's name when the service principal was made: a later
	// change of the application object reaches only its home tenant's service principal.
	DisplayName     string    `json:"displayName"`
	CreatedDateTime time.Time `json:"createdDateTime"`
	// Roles are the Graph application permissions granted in this tenant; RoleTimes when
	// each was granted through Graph.
	Roles     []string             `json:"roles"`
	RoleTimes map[string]time.Time `json:"roleTimes,omitempty"`
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
	// SignInAudience is SignInAudienceMyOrg or SignInAudienceMultipleOrgs; "" (state files
	// of version 1) means SignInAudienceMyOrg.
	SignInAudience string `json:"signInAudience,omitempty"`
}

// audience returns the app's signInAudience.
func (a *app) audience() string {
	if a.SignInAudience == "" {
		return SignInAudienceMyOrg
	}
	return a.SignInAudience
}

// multiTenant reports whether other tenants may use the app.
func (a *app) multiTenant() bool { return a.audience() == SignInAudienceMultipleOrgs }

// canonicalAudience returns the spelling of a signInAudience the emulator models, matched
// case-insensitively ("" for none of them).
func canonicalAudience(s string) string {
	for _, v := range []string{SignInAudienceMyOrg, SignInAudienceMultipleOrgs} {
		if strings.EqualFold(v, s) {
			return v
		}
	}
	return ""
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
		for _, f := range t.ForeignSPs {
			nf := *f
			nf.Roles = slices.Clone(f.Roles)
			nf.RoleTimes = maps.Clone(f.RoleTimes)
			nt.ForeignSPs = append(nt.ForeignSPs, &nf)
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

// foreignSPByID finds the service principal id of an application registered in another
// tenant.
func (t *tenant) foreignSPByID(id string) *foreignSP {
	if id == "" {
		return nil
	}
	for _, f := range t.ForeignSPs {
		if strings.EqualFold(f.ID, id) {
			return f
		}
	}
	return nil
}

// foreignSPByAppID finds the service principal of appID, an application registered in
// another tenant.
func (t *tenant) foreignSPByAppID(appID string) *foreignSP {
	for _, f := range t.ForeignSPs {
		if strings.EqualFold(f.AppID, appID) {
			return f
		}
	}
	return nil
}

// isServicePrincipal reports whether id is a service principal of t: an application's of t,
// or a foreign one.
func (t *tenant) isServicePrincipal(id string) bool {
	return t.appBySPID(id) != nil || t.foreignSPByID(id) != nil
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
			if a.SignInAudience != "" && canonicalAudience(a.SignInAudience) != a.SignInAudience {
				return fmt.Errorf("application %q: signInAudience %q is not %s or %s", a.DisplayName, a.SignInAudience, SignInAudienceMyOrg, SignInAudienceMultipleOrgs)
			}
			for _, o := range a.Owners {
				if !t.isServicePrincipal(o) && t.userByID(o) == nil {
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
	// A foreign service principal stands for an application of another tenant, once per
	// tenant. (Whether the application is still multitenant is checked at sign-in: Entra keeps
	// the service principal of an application made single-tenant again.)
	for _, t := range s.Tenants {
		apps := map[string]bool{}
		for _, f := range t.ForeignSPs {
			if err := unique("servicePrincipalId", f.ID); err != nil {
				return fmt.Errorf("tenant %s: service principal of application %s: %w", t.ID, f.AppID, err)
			}
			ht, _ := s.appByAppID(f.AppID)
			switch {
			case ht == nil:
				return fmt.Errorf("tenant %s: service principal %s: application %s is in no tenant", t.ID, f.ID, f.AppID)
			case ht == t:
				return fmt.Errorf("tenant %s: service principal %s: application %s is registered in this tenant, not in another", t.ID, f.ID, f.AppID)
			case apps[strings.ToLower(f.AppID)]:
				return fmt.Errorf("tenant %s: application %s has two service principals", t.ID, f.AppID)
			}
			apps[strings.ToLower(f.AppID)] = true
			for _, r := range f.Roles {
				if !slices.Contains(knownRoles, r) {
					return fmt.Errorf("tenant %s: service principal of application %s: unknown Graph role %q (known: %s)", t.ID, f.AppID, r, strings.Join(knownRoles, ", "))
				}
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
	if s.Version < minStateVersion || s.Version > stateVersion {
		return nil, fmt.Errorf("reading emulator state %s: version %d, want %d to %d", path, s.Version, minStateVersion, stateVersion)
	}
	s.Version = stateVersion // written back in the current version at the next write
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
	// application of the tenant that has one, then those of multitenant applications of other
	// tenants consented here), with what they last did there.
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
	// SignInAudience is SignInAudienceMyOrg (single tenant) or SignInAudienceMultipleOrgs.
	SignInAudience string `json:"signInAudience"`
	// Owners are the service principals and users that own the app.
	Owners []OwnerView `json:"owners"`
	// Roles are the Graph application permissions granted to the app's service principal.
	Roles               []string                 `json:"roles"`
	KeyCredentials      []KeyCredentialView      `json:"keyCredentials"`
	PasswordCredentials []PasswordCredentialView `json:"passwordCredentials"`
	// Version counts the writes to the app.
	Version int64 `json:"version"`
}

// OwnerView names an owner: a service principal (Type "servicePrincipal", with its app's
// AppID, and HomeTenantID when that app is registered in another tenant) or a user (Type
// "user", with UserPrincipalName; ServicePrincipalID then holds the user's id).
type OwnerView struct {
	Type               string `json:"type"`
	AppID              string `json:"appId,omitempty"`
	HomeTenantID       string `json:"homeTenantId,omitempty"`
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
	AppID              string `json:"appId"`
	ServicePrincipalID string `json:"servicePrincipalId"`
	// HomeTenantID is the tenant of the application object when it is not this one (a
	// multitenant application consented here), whose credentials sign in.
	HomeTenantID string   `json:"homeTenantId,omitempty"`
	DisplayName  string   `json:"displayName"`
	Roles        []string `json:"roles"`
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
		SignInAudience:      a.audience(),
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
		} else if f := t.foreignSPByID(o); f != nil {
			ov.AppID, ov.DisplayName = f.AppID, f.DisplayName
			if ht, _ := e.st.appByAppID(f.AppID); ht != nil {
				ov.HomeTenantID = ht.ID
			}
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
			tv.Clients = append(tv.Clients, e.clientViewLocked(t, ClientView{
				AppID: a.AppID, ServicePrincipalID: a.ServicePrincipalID, DisplayName: a.DisplayName,
				Roles: append([]string{}, a.Roles...),
			}))
		}
		for _, f := range t.ForeignSPs {
			cv := ClientView{AppID: f.AppID, ServicePrincipalID: f.ID, DisplayName: f.DisplayName, Roles: append([]string{}, f.Roles...)}
			if ht, _ := e.st.appByAppID(f.AppID); ht != nil {
				cv.HomeTenantID = ht.ID
			}
			tv.Clients = append(tv.Clients, e.clientViewLocked(t, cv))
		}
		sv.Tenants = append(sv.Tenants, tv)
	}
	return sv
}

// clientViewLocked adds to cv what the client did at t's token endpoint. The caller holds
// e.mu.
func (e *Emulator) clientViewLocked(t *tenant, cv ClientView) ClientView {
	if st, ok := e.signIns[signInKey(t.ID, cv.AppID)]; ok {
		cv.TokensIssued = st.count
		last := st.last
		cv.LastSignIn = &last
	}
	return cv
}

// signInKey names the sign-ins of client appID to tenant tenantID.
func signInKey(tenantID, appID string) string {
	return strings.ToLower(tenantID) + "/" + strings.ToLower(appID)
}

// parseCertDER parses a DER certificate.
func parseCertDER(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return c, nil
}
