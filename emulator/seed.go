package emulator

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/aucloud/certagent/agent/certs"
)

// Seed describes one tenant to create when the emulator's directory holds no state yet.
// Empty ids are generated.
type Seed struct {
	// TenantID is the tenant's GUID.
	TenantID string
	// Domain is the tenant's initial domain name (for example "contoso.onmicrosoft.com"),
	// accepted wherever a tenant id is. Default "emulated-<first 8 of the tenant id>.onmicrosoft.com".
	Domain       string
	Applications []SeedApplication
	// Users are member users, such as the administrator who runs `certagent setup`.
	Users []SeedUser
}

// SeedUser describes a member user. Users sign in with the device code flow (approved
// through POST /_emulator/devicecode/approve or WithDeviceCodeAutoApprove); they have no
// password.
type SeedUser struct {
	// UserPrincipalName is the sign-in name; without "@", the tenant's domain is appended.
	UserPrincipalName string
	// DisplayName defaults to the part of the name before "@".
	DisplayName string
	// ID is the user's object id (generated when empty).
	ID string
	// DirectoryRoles are Microsoft Entra built-in roles by display name: DirectoryRoleGlobalAdmin,
	// DirectoryRolePrivilegedRoleAdmin, DirectoryRoleApplicationAdmin,
	// DirectoryRoleCloudApplicationAdmin, DirectoryRoleApplicationDeveloper.
	DirectoryRoles []string
}

// SeedApplication describes an app registration and its service principal.
type SeedApplication struct {
	DisplayName string
	// AppID is the client id, ObjectID the application object's id, ServicePrincipalID the
	// id of its service principal (the "oid" of its tokens).
	AppID              string
	ObjectID           string
	ServicePrincipalID string
	// SignInAudience is SignInAudienceMyOrg (default: a single-tenant app) or
	// SignInAudienceMultipleOrgs (a multitenant app, which other tenants may consent to:
	// Emulator.ConsentApplication).
	SignInAudience string
	// Owners names the service principals that own this app, each by the appId or
	// displayName of an application of the same tenant or, for AddApplication and SetOwners,
	// by the appId of a multitenant application of another tenant consented in this one.
	Owners []string
	// GraphRoles are the Microsoft Graph application permissions granted to the service
	// principal, for example RoleApplicationReadWriteOwned.
	GraphRoles          []string
	KeyCredentials      []SeedKeyCredential
	PasswordCredentials []SeedPasswordCredential
}

// SeedKeyCredential is a certificate credential.
type SeedKeyCredential struct {
	// Certificate is the certificate as DER or PEM (other PEM blocks, such as a private key,
	// are ignored).
	Certificate []byte
	DisplayName string
	KeyID       string
	// StartDateTime and EndDateTime default to the certificate's validity and must lie
	// within it.
	StartDateTime time.Time
	EndDateTime   time.Time
	// Usage is "Verify" (default) or "Sign".
	Usage string
	// CustomKeyIdentifier defaults to the thumbprint in the emulator's format.
	CustomKeyIdentifier []byte
}

// SeedPasswordCredential is a client secret.
type SeedPasswordCredential struct {
	Secret      string
	DisplayName string
	KeyID       string
	// StartDateTime defaults to now, EndDateTime to two years later.
	StartDateTime time.Time
	EndDateTime   time.Time
}

// CustomKeyIdentifierFormat says what Graph stores as customKeyIdentifier when a client
// leaves it out (*inferred*, docs/graph.md; docs examples show the hex thumbprint).
type CustomKeyIdentifierFormat int

const (
	// CKIThumbprintHex stores the bytes that make customKeyIdentifier read back as the
	// 40-character upper-case hex thumbprint (what the docs and azure-cli show). Clients that
	// base64-decode it, as Edm.Binary demands, get 30 bytes.
	CKIThumbprintHex CustomKeyIdentifierFormat = iota
	// CKIThumbprintRaw stores the 20 raw SHA-1 bytes, read back as their base64.
	CKIThumbprintRaw
)

// computeCKI returns the customKeyIdentifier Graph stores for a certificate.
func computeCKI(der []byte, f CustomKeyIdentifierFormat) []byte {
	if f == CKIThumbprintRaw {
		sum := sha1.Sum(der)
		return sum[:]
	}
	b, err := base64.StdEncoding.DecodeString(certs.ThumbprintSHA1(der))
	if err != nil {
		panic(err) // 40 hex characters are always valid base64
	}
	return b
}

// encodeBinary renders an Edm.Binary value.
func encodeBinary(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// parseCertificateInput reads a certificate given as DER, PEM or bare base64 of the DER.
func parseCertificateInput(b []byte) ([]byte, error) {
	if bytes.Contains(b, []byte("-----BEGIN")) {
		var der []byte
		rest := b
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			if der != nil {
				return nil, errors.New("more than one certificate")
			}
			der = block.Bytes
		}
		if der == nil {
			return nil, errors.New("no PEM certificate")
		}
		if _, err := parseCertDER(der); err != nil {
			return nil, err
		}
		return der, nil
	}
	if _, err := parseCertDER(b); err == nil {
		return b, nil
	}
	if der, err := decodeBase64Loose(string(b)); err == nil {
		if _, err := parseCertDER(der); err == nil {
			return der, nil
		}
	}
	return nil, errors.New("not a certificate (want DER, PEM or base64 of the DER)")
}

// build turns the seed into a tenant. now dates password credentials without dates.
func (s Seed) build(now time.Time, f CustomKeyIdentifierFormat) (*tenant, error) {
	t := &tenant{ID: s.TenantID, Domain: s.Domain}
	if t.ID == "" {
		t.ID = newGUID()
	} else if id, ok := parseGUID(t.ID); ok {
		t.ID = id
	} else {
		return nil, fmt.Errorf("tenantId: %q is not a GUID", s.TenantID)
	}
	if t.Domain == "" {
		t.Domain = "emulated-" + t.ID[:8] + ".onmicrosoft.com"
	}
	if strings.ContainsAny(t.Domain, "/ ") {
		return nil, fmt.Errorf("domain: %q is not a domain name", t.Domain)
	}
	for i, sa := range s.Applications {
		a, err := sa.build(now, f)
		if err != nil {
			return nil, fmt.Errorf("applications[%d].%w", i, err)
		}
		t.Apps = append(t.Apps, a)
	}
	for i, su := range s.Users {
		u, err := su.build(t.Domain)
		if err != nil {
			return nil, fmt.Errorf("users[%d].%w", i, err)
		}
		t.Users = append(t.Users, u)
	}
	for i, sa := range s.Applications {
		for j, ref := range sa.Owners {
			o, err := t.resolveApp(ref)
			if err != nil {
				return nil, fmt.Errorf("applications[%d].owners[%d]: %w", i, j, err)
			}
			if !t.Apps[i].isOwner(o.ServicePrincipalID) {
				t.Apps[i].Owners = append(t.Apps[i].Owners, o.ServicePrincipalID)
			}
		}
	}
	st := &tenantState{Version: stateVersion, Tenants: []*tenant{t}}
	if err := st.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

func (su SeedUser) build(domain string) (*user, error) {
	u := &user{UserPrincipalName: su.UserPrincipalName, DisplayName: su.DisplayName, DirectoryRoles: []string{}}
	if strings.TrimSpace(u.UserPrincipalName) == "" || strings.ContainsAny(u.UserPrincipalName, " /") {
		return nil, fmt.Errorf("userPrincipalName: %q is not a user name", su.UserPrincipalName)
	}
	if !strings.Contains(u.UserPrincipalName, "@") {
		u.UserPrincipalName += "@" + domain
	}
	if u.DisplayName == "" {
		u.DisplayName, _, _ = strings.Cut(u.UserPrincipalName, "@")
	}
	if su.ID == "" {
		u.ID = newGUID()
	} else if g, ok := parseGUID(su.ID); ok {
		u.ID = g
	} else {
		return nil, fmt.Errorf("id: %q is not a GUID", su.ID)
	}
	for _, r := range su.DirectoryRoles {
		i := slices.IndexFunc(knownDirectoryRoles, func(k string) bool { return strings.EqualFold(k, r) })
		if i < 0 {
			return nil, fmt.Errorf("directoryRoles: unknown role %q (known: %s)", r, strings.Join(knownDirectoryRoles, ", "))
		}
		if !slices.Contains(u.DirectoryRoles, knownDirectoryRoles[i]) {
			u.DirectoryRoles = append(u.DirectoryRoles, knownDirectoryRoles[i])
		}
	}
	return u, nil
}

// resolveOwner finds the service principal a helper's owner reference names: an application
// of t (resolveApp), or else the service principal in t of another tenant's application, by
// appId.
func (t *tenant) resolveOwner(ref string) (string, error) {
	a, err := t.resolveApp(ref)
	if err == nil {
		if a.ServicePrincipalID == "" {
			return "", fmt.Errorf("application %q has no service principal", ref)
		}
		return a.ServicePrincipalID, nil
	}
	if f := t.foreignSPByAppID(ref); f != nil {
		return f.ID, nil
	}
	return "", fmt.Errorf("%w, nor a service principal of another tenant's application with appId %q (see ConsentApplication)", err, ref)
}

// resolveApp finds an app by appId, else by displayName (which must then be unique).
func (t *tenant) resolveApp(ref string) (*app, error) {
	if a := t.appByAppID(ref); a != nil {
		return a, nil
	}
	var found *app
	for _, a := range t.Apps {
		if a.DisplayName == ref {
			if found != nil {
				return nil, fmt.Errorf("more than one application is called %q: name it by appId", ref)
			}
			found = a
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no application with appId or displayName %q", ref)
	}
	return found, nil
}

func (sa SeedApplication) build(now time.Time, f CustomKeyIdentifierFormat) (*app, error) {
	a := &app{DisplayName: sa.DisplayName, CreatedDateTime: now.UTC().Truncate(time.Second), Version: 1}
	if strings.TrimSpace(a.DisplayName) == "" {
		return nil, errors.New("displayName: required")
	}
	for _, id := range []struct {
		name string
		in   string
		out  *string
	}{
		{"appId", sa.AppID, &a.AppID}, {"objectId", sa.ObjectID, &a.ObjectID}, {"servicePrincipalId", sa.ServicePrincipalID, &a.ServicePrincipalID},
	} {
		if id.in == "" {
			*id.out = newGUID()
			continue
		}
		g, ok := parseGUID(id.in)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a GUID", id.name, id.in)
		}
		*id.out = g
	}
	switch a.SignInAudience = canonicalAudience(sa.SignInAudience); {
	case sa.SignInAudience == "":
		a.SignInAudience = SignInAudienceMyOrg
	case a.SignInAudience == "":
		return nil, fmt.Errorf("signInAudience: %q is not %s or %s", sa.SignInAudience, SignInAudienceMyOrg, SignInAudienceMultipleOrgs)
	}
	a.Roles = []string{}
	for _, r := range sa.GraphRoles {
		if !containsFold(a.Roles, r) {
			a.Roles = append(a.Roles, r)
		}
	}
	a.Owners = []string{}
	a.KeyCredentials = []keyCred{}
	for i, sk := range sa.KeyCredentials {
		k, err := sk.build(f)
		if err != nil {
			return nil, fmt.Errorf("keyCredentials[%d].%w", i, err)
		}
		a.KeyCredentials = append(a.KeyCredentials, k)
	}
	a.PasswordCredentials = []passwordCred{}
	for i, sp := range sa.PasswordCredentials {
		p, err := sp.build(now)
		if err != nil {
			return nil, fmt.Errorf("passwordCredentials[%d].%w", i, err)
		}
		a.PasswordCredentials = append(a.PasswordCredentials, p)
	}
	return a, nil
}

func (sk SeedKeyCredential) build(f CustomKeyIdentifierFormat) (keyCred, error) {
	der, err := parseCertificateInput(sk.Certificate)
	if err != nil {
		return keyCred{}, fmt.Errorf("certificate: %w", err)
	}
	c, _ := parseCertDER(der)
	k := keyCred{
		KeyID:               sk.KeyID,
		Type:                certs.KeyTypeX509Cert,
		Usage:               certs.KeyUsageVerify,
		Key:                 der,
		DisplayName:         truncateDisplayName(sk.DisplayName),
		StartDateTime:       sk.StartDateTime.UTC(),
		EndDateTime:         sk.EndDateTime.UTC(),
		CustomKeyIdentifier: bytes.Clone(sk.CustomKeyIdentifier),
	}
	if k.KeyID == "" {
		k.KeyID = newGUID()
	} else if g, ok := parseGUID(k.KeyID); ok {
		k.KeyID = g
	} else {
		return keyCred{}, fmt.Errorf("keyId: %q is not a GUID", sk.KeyID)
	}
	switch {
	case sk.Usage == "" || strings.EqualFold(sk.Usage, "Verify"):
	case strings.EqualFold(sk.Usage, "Sign"):
		k.Usage = "Sign"
	default:
		return keyCred{}, fmt.Errorf("usage: %q is not Verify or Sign", sk.Usage)
	}
	if k.StartDateTime.IsZero() {
		k.StartDateTime = c.NotBefore.UTC()
	}
	if k.EndDateTime.IsZero() {
		k.EndDateTime = c.NotAfter.UTC()
	}
	switch {
	case k.StartDateTime.Before(c.NotBefore):
		return keyCred{}, fmt.Errorf("startDateTime: %s is before the certificate's notBefore %s", k.StartDateTime.Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))
	case k.EndDateTime.After(c.NotAfter):
		return keyCred{}, fmt.Errorf("endDateTime: %s is after the certificate's notAfter %s", k.EndDateTime.Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	case !k.EndDateTime.After(k.StartDateTime):
		return keyCred{}, errors.New("endDateTime: must be after startDateTime")
	}
	if k.CustomKeyIdentifier == nil {
		k.CustomKeyIdentifier = computeCKI(der, f)
	}
	return k, nil
}

func (sp SeedPasswordCredential) build(now time.Time) (passwordCred, error) {
	if sp.Secret == "" {
		return passwordCred{}, errors.New("secret: required")
	}
	p := passwordCred{
		KeyID:         sp.KeyID,
		DisplayName:   truncateDisplayName(sp.DisplayName),
		StartDateTime: sp.StartDateTime.UTC(),
		EndDateTime:   sp.EndDateTime.UTC(),
	}
	sum := sha256.Sum256([]byte(sp.Secret))
	p.SecretSHA256 = sum[:]
	p.Hint = sp.Secret[:min(3, len(sp.Secret))]
	if p.KeyID == "" {
		p.KeyID = newGUID()
	} else if g, ok := parseGUID(p.KeyID); ok {
		p.KeyID = g
	} else {
		return passwordCred{}, fmt.Errorf("keyId: %q is not a GUID", sp.KeyID)
	}
	if p.StartDateTime.IsZero() {
		p.StartDateTime = now.UTC().Truncate(time.Second)
	}
	if p.EndDateTime.IsZero() {
		p.EndDateTime = p.StartDateTime.AddDate(2, 0, 0)
	}
	if !p.EndDateTime.After(p.StartDateTime) {
		return passwordCred{}, errors.New("endDateTime: must be after startDateTime")
	}
	return p, nil
}

// checkCredentialDates returns Graph's message when a key credential's dates do not lie
// within the certificate's validity, or "". Graph's message for a bad end date is observed;
// the rule that both dates must lie within the certificate's validity is *inferred*.
func checkCredentialDates(c *x509.Certificate, start, end time.Time) string {
	switch {
	case start.Before(c.NotBefore):
		return "Key credential start date is invalid."
	case end.After(c.NotAfter), !end.After(start):
		return "Key credential end date is invalid."
	}
	return ""
}

// truncateDisplayName keeps the first 90 characters, as Graph does.
func truncateDisplayName(s string) string {
	if utf8.RuneCountInString(s) <= certs.MaxDisplayNameLen {
		return s
	}
	return string([]rune(s)[:certs.MaxDisplayNameLen])
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// The seed file format (YAML). Paths are relative to the seed file's directory.
type seedFile struct {
	TenantID     string         `yaml:"tenantId"`
	Domain       string         `yaml:"domain"`
	Applications []seedFileApp  `yaml:"applications"`
	Users        []seedFileUser `yaml:"users"`
}

type seedFileUser struct {
	UserPrincipalName string   `yaml:"userPrincipalName"`
	DisplayName       string   `yaml:"displayName"`
	ID                string   `yaml:"id"`
	DirectoryRoles    []string `yaml:"directoryRoles"`
}

type seedFileApp struct {
	DisplayName         string             `yaml:"displayName"`
	AppID               string             `yaml:"appId"`
	ObjectID            string             `yaml:"objectId"`
	ServicePrincipalID  string             `yaml:"servicePrincipalId"`
	SignInAudience      string             `yaml:"signInAudience"`
	Owners              []string           `yaml:"owners"`
	GraphRoles          []string           `yaml:"graphRoles"`
	KeyCredentials      []seedFileKey      `yaml:"keyCredentials"`
	PasswordCredentials []seedFilePassword `yaml:"passwordCredentials"`
}

type seedFileKey struct {
	CertificateFile string `yaml:"certificateFile"`
	Certificate     string `yaml:"certificate"`
	DisplayName     string `yaml:"displayName"`
	KeyID           string `yaml:"keyId"`
	StartDateTime   string `yaml:"startDateTime"`
	EndDateTime     string `yaml:"endDateTime"`
	Usage           string `yaml:"usage"`
}

type seedFilePassword struct {
	Secret        string `yaml:"secret"`
	DisplayName   string `yaml:"displayName"`
	KeyID         string `yaml:"keyId"`
	StartDateTime string `yaml:"startDateTime"`
	EndDateTime   string `yaml:"endDateTime"`
}

// LoadSeed reads a seed file (YAML; see the package documentation for the format).
// Certificates are given as files (relative to the seed file) or inline PEM. Errors name the
// file and the field.
func LoadSeed(path string) (Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Seed{}, fmt.Errorf("reading seed: %w", err)
	}
	if len(b) > certs.MaxFileSize*8 {
		return Seed{}, fmt.Errorf("reading seed %s: larger than %d bytes", path, certs.MaxFileSize*8)
	}
	var sf seedFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		return Seed{}, fmt.Errorf("reading seed %s: %w", path, err)
	}
	fail := func(field string, err error) (Seed, error) {
		return Seed{}, fmt.Errorf("reading seed %s: %s: %w", path, field, err)
	}
	s := Seed{TenantID: sf.TenantID, Domain: sf.Domain}
	for _, fu := range sf.Users {
		s.Users = append(s.Users, SeedUser(fu))
	}
	for i, fa := range sf.Applications {
		prefix := fmt.Sprintf("applications[%d]", i)
		sa := SeedApplication{
			DisplayName: fa.DisplayName, AppID: fa.AppID, ObjectID: fa.ObjectID,
			ServicePrincipalID: fa.ServicePrincipalID, SignInAudience: fa.SignInAudience, Owners: fa.Owners, GraphRoles: fa.GraphRoles,
		}
		for j, fk := range fa.KeyCredentials {
			kp := fmt.Sprintf("%s.keyCredentials[%d]", prefix, j)
			sk := SeedKeyCredential{DisplayName: fk.DisplayName, KeyID: fk.KeyID, Usage: fk.Usage}
			switch {
			case fk.CertificateFile != "" && fk.Certificate != "":
				return fail(kp, errors.New("give certificateFile or certificate, not both"))
			case fk.CertificateFile != "":
				p := fk.CertificateFile
				if !filepath.IsAbs(p) {
					p = filepath.Join(filepath.Dir(path), p)
				}
				cb, err := os.ReadFile(p)
				if err != nil {
					return fail(kp+".certificateFile", err)
				}
				sk.Certificate = cb
			case fk.Certificate != "":
				sk.Certificate = []byte(fk.Certificate)
			default:
				return fail(kp, errors.New("certificateFile or certificate is required"))
			}
			if sk.StartDateTime, err = parseSeedTime(fk.StartDateTime); err != nil {
				return fail(kp+".startDateTime", err)
			}
			if sk.EndDateTime, err = parseSeedTime(fk.EndDateTime); err != nil {
				return fail(kp+".endDateTime", err)
			}
			sa.KeyCredentials = append(sa.KeyCredentials, sk)
		}
		for j, fp := range fa.PasswordCredentials {
			pp := fmt.Sprintf("%s.passwordCredentials[%d]", prefix, j)
			sp := SeedPasswordCredential{Secret: fp.Secret, DisplayName: fp.DisplayName, KeyID: fp.KeyID}
			if sp.StartDateTime, err = parseSeedTime(fp.StartDateTime); err != nil {
				return fail(pp+".startDateTime", err)
			}
			if sp.EndDateTime, err = parseSeedTime(fp.EndDateTime); err != nil {
				return fail(pp+".endDateTime", err)
			}
			sa.PasswordCredentials = append(sa.PasswordCredentials, sp)
		}
		s.Applications = append(s.Applications, sa)
	}
	// Run the same checks New will, so that mistakes surface here, with the file name.
	if _, err := s.build(time.Now(), CKIThumbprintHex); err != nil {
		return Seed{}, fmt.Errorf("reading seed %s: %w", path, err)
	}
	return s, nil
}

func parseSeedTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
