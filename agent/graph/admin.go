package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"

	"github.com/aucloud/certagent/agent/certs"
)

// Well-known ids of the admin client.
const (
	// GraphAppID is Microsoft Graph's application id, the same in every tenant.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// GraphCommandLineToolsClientID is the public client "Microsoft Graph Command Line Tools"
	// (the one Connect-MgGraph uses), which takes Graph's delegated permissions one by one.
	// The admin client signs in through it by default: certagent registers no public client
	// of its own in the customer's tenant.
	GraphCommandLineToolsClientID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
	// OwnedByRole is the value of Graph's app role the agent needs.
	OwnedByRole = "Application.ReadWrite.OwnedBy"
	// OwnedByRoleID is its id, as Microsoft publishes it in the Graph permissions reference.
	OwnedByRoleID = "18a4783c-866b-4cc7-a460-3d5e5662c884"
)

// AdminScopes are the only delegated permissions the admin client asks for:
// Application.ReadWrite.All (find, create and change app registrations and their service
// principals, add owners) and AppRoleAssignment.ReadWrite.All (grant the agent's app
// Application.ReadWrite.OwnedBy, the admin consent).
var AdminScopes = []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}

// DeviceCodePrompt is what a person needs to sign in with the device code flow.
type DeviceCodePrompt struct {
	UserCode        string
	VerificationURL string
	// Message is Entra's instruction, naming both.
	Message string
}

// AdminConfig configures an Admin: Config's TenantID, AuthorityHost and GraphURL are
// required; its ClientID is the public client of the device code flow (default
// GraphCommandLineToolsClientID) and its Credential is not used. Exactly one of DeviceCode and
// UseAzureCLI is required.
type AdminConfig struct {
	Config
	// DeviceCode signs the administrator in with the device code flow: it is called with the
	// code and the URL to show, and should return at once (the sign-in then waits for the
	// person, at most until the code expires).
	DeviceCode func(ctx context.Context, p DeviceCodePrompt) error
	// UseAzureCLI signs in with the Azure CLI's current login instead (`az account
	// get-access-token --resource <Graph> --tenant <tenant>`): the token then carries what the
	// Azure CLI's own client has been consented for, which is more than AdminScopes.
	UseAzureCLI bool
}

// Admin calls Graph as a signed-in administrator, for `certagent setup`: it finds the
// provider's app, creates the agent's app registration and service principal, grants it
// Application.ReadWrite.OwnedBy and makes it an owner. Its token lives in this process's
// memory only and is never stored. It is safe for concurrent use.
type Admin struct {
	c    *Client
	cred *adminCredential
}

// NewAdmin validates cfg and returns an Admin. It does not touch the network: SignIn (or the
// first operation) signs in.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = GraphCommandLineToolsClientID
	}
	if !isGUID(cfg.ClientID) {
		return nil, fmt.Errorf("graph admin client: client id %q is not a GUID", cfg.ClientID)
	}
	if (cfg.DeviceCode == nil) == !cfg.UseAzureCLI {
		return nil, errors.New("graph admin client: sign in with either the device code flow or the Azure CLI")
	}
	c, err := newBase(cfg.Config)
	if err != nil {
		return nil, err
	}
	c.admin = true
	origin := strings.TrimSuffix(c.scope, "/.default")
	ac := &adminCredential{c: c}
	if cfg.UseAzureCLI {
		// azidentity's AzureCLICredential takes exactly one scope, the resource's .default.
		ac.scopes = []string{c.scope}
		ac.method = "the Azure CLI's login"
		ac.cli, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.TenantID})
	} else {
		for _, s := range AdminScopes {
			ac.scopes = append(ac.scopes, origin+"/"+s)
		}
		ac.method = "the device code flow"
		prompt := cfg.DeviceCode
		ac.deviceCode, err = azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
			ClientOptions: azcore.ClientOptions{
				Cloud:     c.cloud,
				Transport: c.tokenHTTP,
				Retry:     policy.RetryOptions{MaxRetries: tokenMaxRetries, RetryDelay: tokenRetryDelay, ShouldRetry: shouldRetryToken},
				Telemetry: policy.TelemetryOptions{ApplicationID: "certagent"},
			},
			ClientID:                 c.clientID,
			TenantID:                 cfg.TenantID,
			DisableInstanceDiscovery: true,
			UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
				return prompt(ctx, DeviceCodePrompt{UserCode: m.UserCode, VerificationURL: m.VerificationURL, Message: m.Message})
			},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("graph admin client: %w", err)
	}
	if err := c.buildAdapter(ac, ac.scopes); err != nil {
		return nil, err
	}
	return &Admin{c: c, cred: ac}, nil
}

// adminCredential is the administrator's azidentity credential, with errors made *Error.
type adminCredential struct {
	c          *Client
	deviceCode *azidentity.DeviceCodeCredential
	cli        *azidentity.AzureCLICredential
	scopes     []string
	method     string

	// mu protects user.
	mu   sync.Mutex
	user string
}

var _ azcore.TokenCredential = (*adminCredential)(nil)

func (a *adminCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	var tok azcore.AccessToken
	var err error
	if a.cli != nil {
		tok, err = a.cli.GetToken(ctx, opts)
	} else {
		tok, err = a.deviceCode.GetToken(ctx, opts)
	}
	if err != nil {
		return azcore.AccessToken{}, a.c.adminSignInError(ctx, a.method, err)
	}
	if name := tokenUser(tok.Token); name != "" {
		a.mu.Lock()
		a.user = name
		a.mu.Unlock()
	}
	return tok, nil
}

// tokenUser reads the signed-in user's name out of an access token (without checking it: the
// token is only shown, never trusted here).
func tokenUser(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		UPN        string `json:"upn"`
		UniqueName string `json:"unique_name"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return ""
	}
	if claims.UPN != "" {
		return claims.UPN
	}
	return claims.UniqueName
}

// SignIn signs the administrator in (for the device code flow: shows the code and waits for
// the person, until ctx ends or the code expires) and returns who signed in. Later operations
// reuse the token; it is never written anywhere.
func (a *Admin) SignIn(ctx context.Context) (string, error) {
	// The SDK's authentication provider asks for tokens with CAE on, and azidentity keeps
	// CAE and non-CAE tokens in separate caches: a sign-in without it would be followed by a
	// second device code at the first Graph call.
	opts := policy.TokenRequestOptions{Scopes: a.cred.scopes, EnableCAE: true}
	if a.cred.deviceCode != nil {
		rec, err := a.cred.deviceCode.Authenticate(ctx, &opts)
		if err != nil {
			e := a.c.adminSignInError(ctx, a.cred.method, err)
			e.Op = opSignIn
			return "", e
		}
		a.cred.mu.Lock()
		a.cred.user = rec.Username
		a.cred.mu.Unlock()
		return rec.Username, nil
	}
	if _, err := a.cred.GetToken(ctx, opts); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = opSignIn
		}
		return "", err
	}
	a.cred.mu.Lock()
	defer a.cred.mu.Unlock()
	return a.cred.user, nil
}

// Scopes returns the scopes the admin client asks for, as it sends them.
func (a *Admin) Scopes() []string { return append([]string(nil), a.cred.scopes...) }

// GraphBaseURL returns Graph's base URL with the version, https://graph.microsoft.com/v1.0.
func (a *Admin) GraphBaseURL() string { return a.c.baseURL }

// maxPages bounds how many pages a list follows (999 objects a page at most).
const maxPages = 20

// FindApplications returns the applications whose display name matches name the way Graph's
// $search does (every word of name begins a word of the display name, whatever the case),
// with their key credentials (without key bytes): GET
// /applications?$search="displayName:<name>" with ConsistencyLevel: eventual, which Graph
// requires for $search (docs/graph.md).
func (a *Admin) FindApplications(ctx context.Context, name string) ([]certs.Application, error) {
	clean := strings.Join(strings.Fields(strings.NewReplacer(`"`, " ", `\`, " ").Replace(name)), " ")
	if clean == "" {
		return nil, a.c.invalid(opSearch, name, "nothing to search for")
	}
	search := `"displayName:` + clean + `"`
	headers := abstractions.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	return a.listApplications(ctx, opSearch, name, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{
			Search: &search, Select: []string{"id", "appId", "displayName", "keyCredentials"},
		},
	})
}

// ApplicationsNamed returns the applications whose display name is exactly name: GET
// /applications?$filter=displayName eq '<name>'.
func (a *Admin) ApplicationsNamed(ctx context.Context, name string) ([]certs.Application, error) {
	filter := "displayName eq '" + strings.ReplaceAll(name, "'", "''") + "'"
	return a.listApplications(ctx, opList, name, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{
			Filter: &filter, Select: []string{"id", "appId", "displayName", "keyCredentials"},
		},
	})
}

func (a *Admin) listApplications(ctx context.Context, op, object string, cfg *applications.ApplicationsRequestBuilderGetRequestConfiguration) ([]certs.Application, error) {
	ctx, st, cancel := a.c.begin(ctx, op)
	defer cancel()
	b := applications.NewApplicationsRequestBuilderInternal(a.c.pathParams(), a.c.adapter)
	var out []certs.Application
	for n := 0; n < maxPages; n++ {
		ri, err := b.ToGetRequestInformation(ctx, cfg)
		if err != nil {
			return nil, a.c.invalid(op, object, err.Error())
		}
		res, err := a.c.adapter.Send(ctx, ri, pageOf[*application](createApplication), errorMapping)
		if err != nil {
			return nil, a.c.fail(ctx, op, object, err, st)
		}
		p, _ := res.(*page[*application])
		if p == nil {
			return out, nil
		}
		for _, m := range p.value {
			if m != nil {
				out = append(out, fromModel(m))
			}
		}
		next := p.nextLink
		if next == nil || *next == "" {
			return out, nil
		}
		b = applications.NewApplicationsRequestBuilder(*next, a.c.adapter)
		cfg = &applications.ApplicationsRequestBuilderGetRequestConfiguration{Headers: cfg.Headers}
	}
	return out, nil
}

// Application reads the application whose appId is appID with every key credential and its
// key bytes (as Client.Get). found is false when Graph answers 404.
func (a *Admin) Application(ctx context.Context, appID string) (app certs.Application, found bool, err error) {
	app, err = a.c.Get(ctx, appID)
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusNotFound {
		return certs.Application{}, false, nil
	}
	return app, err == nil, err
}

// Owners lists the owners of the application objectID: GET /applications/{id}/owners.
func (a *Admin) Owners(ctx context.Context, objectID string) ([]certs.DirectoryObject, error) {
	return a.c.Owners(ctx, objectID)
}

// CreateApplication creates a single-tenant app registration named displayName: POST
// /applications. The signed-in administrator becomes its owner. It has no service principal
// until CreateServicePrincipal.
func (a *Admin) CreateApplication(ctx context.Context, displayName string) (certs.Application, error) {
	ctx, st, cancel := a.c.begin(ctx, opCreateApp)
	defer cancel()
	body := newApplication()
	body.displayName = &displayName
	body.signInAudience = ptr("AzureADMyOrg")
	st.noRetry = []int{http.StatusGatewayTimeout} // a timed-out POST may have created it
	ri, err := write(ctx, a.c, applications.NewApplicationsRequestBuilderInternal(a.c.pathParams(), a.c.adapter).ToGetRequestInformation,
		abstractions.POST, body)
	if err != nil {
		return certs.Application{}, a.c.invalid(opCreateApp, displayName, err.Error())
	}
	res, err := a.c.adapter.Send(ctx, ri, createApplication, errorMapping)
	if err != nil {
		return certs.Application{}, a.c.fail(ctx, opCreateApp, displayName, err, st)
	}
	m, _ := res.(*application)
	if m == nil || deref(m.id) == "" || deref(m.appID) == "" {
		return certs.Application{}, a.c.invalidAnswer(opCreateApp, displayName, st, "Graph answered without the new application")
	}
	app := fromModel(m)
	a.c.log.Info("created application", "app_id", app.AppID, "object_id", app.ObjectID, "display_name", displayName)
	return app, nil
}

var spSelect = []string{"id", "appId", "displayName", "appRoles"}

// ServicePrincipal reads the service principal of the application appID in the tenant (for
// GraphAppID, Microsoft Graph's, with its app roles): GET /servicePrincipals?$filter=appId eq
// '<appID>'. found is false when the tenant has none.
func (a *Admin) ServicePrincipal(ctx context.Context, appID string) (sp certs.ServicePrincipal, found bool, err error) {
	if !isGUID(appID) {
		return sp, false, a.c.invalid(opServicePrincipal, appID, "the app id is not a GUID")
	}
	ctx, st, cancel := a.c.begin(ctx, opServicePrincipal)
	defer cancel()
	filter := "appId eq '" + appID + "'"
	ri, err := serviceprincipals.NewServicePrincipalsRequestBuilderInternal(a.c.pathParams(), a.c.adapter).ToGetRequestInformation(ctx,
		&serviceprincipals.ServicePrincipalsRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipals.ServicePrincipalsRequestBuilderGetQueryParameters{Filter: &filter, Select: spSelect},
		})
	if err != nil {
		return sp, false, a.c.invalid(opServicePrincipal, appID, err.Error())
	}
	res, err := a.c.adapter.Send(ctx, ri, pageOf[*servicePrincipal](createServicePrincipal), errorMapping)
	if err != nil {
		return sp, false, a.c.fail(ctx, opServicePrincipal, appID, err, st)
	}
	p, _ := res.(*page[*servicePrincipal])
	if p == nil {
		return sp, false, nil
	}
	for _, m := range p.value {
		if m != nil && strings.EqualFold(deref(m.appID), appID) {
			return spFromModel(m), true, nil
		}
	}
	return sp, false, nil
}

func spFromModel(m *servicePrincipal) certs.ServicePrincipal {
	sp := certs.ServicePrincipal{ID: deref(m.id), AppID: deref(m.appID), DisplayName: deref(m.displayName)}
	for _, r := range m.appRoles {
		if r == nil || r.GetId() == nil {
			continue
		}
		sp.AppRoles = append(sp.AppRoles, certs.AppRole{ID: r.GetId().String(), Value: deref(r.GetValue())})
	}
	return sp
}

// CreateServicePrincipal creates the service principal of the application appID: POST
// /servicePrincipals {"appId"}. When Graph answers that one exists already (409
// Request_MultipleObjectsWithSameKeyValue), it returns that one instead.
func (a *Admin) CreateServicePrincipal(ctx context.Context, appID string) (certs.ServicePrincipal, error) {
	if !isGUID(appID) {
		return certs.ServicePrincipal{}, a.c.invalid(opCreateSP, appID, "the app id is not a GUID")
	}
	body := &servicePrincipal{odataType: ptr(odataServicePrincipal), appID: &appID}
	err := func() error {
		ctx, st, cancel := a.c.begin(ctx, opCreateSP)
		defer cancel()
		st.noRetry = []int{http.StatusGatewayTimeout}
		ri, err := write(ctx, a.c, serviceprincipals.NewServicePrincipalsRequestBuilderInternal(a.c.pathParams(), a.c.adapter).ToGetRequestInformation,
			abstractions.POST, body)
		if err != nil {
			return a.c.invalid(opCreateSP, appID, err.Error())
		}
		res, err := a.c.adapter.Send(ctx, ri, createServicePrincipal, errorMapping)
		if err != nil {
			return a.c.fail(ctx, opCreateSP, appID, err, st)
		}
		m, _ := res.(*servicePrincipal)
		if m == nil || deref(m.id) == "" {
			return a.c.invalidAnswer(opCreateSP, appID, st, "Graph answered without the new service principal")
		}
		a.c.log.Info("created service principal", "app_id", appID, "service_principal_id", deref(m.id))
		return nil
	}()
	var e *Error
	if err != nil && !(errors.As(err, &e) && e.StatusCode == http.StatusConflict) {
		return certs.ServicePrincipal{}, err
	}
	sp, found, rerr := a.ServicePrincipal(ctx, appID)
	switch {
	case rerr != nil:
		return certs.ServicePrincipal{}, rerr
	case !found && err != nil:
		return certs.ServicePrincipal{}, err
	case !found:
		return certs.ServicePrincipal{}, &Error{Op: opCreateSP, Object: appID, clientID: a.c.clientID, reason: certs.AppNotFound,
			StatusCode: http.StatusNotFound, detail: "the new service principal cannot be read back yet", transient: true, notYet: true}
	}
	return sp, nil
}

// AppRoleAssignments lists the app roles granted to the service principal spID: GET
// /servicePrincipals/{id}/appRoleAssignments.
func (a *Admin) AppRoleAssignments(ctx context.Context, spID string) ([]certs.AppRoleAssignment, error) {
	if !isGUID(spID) {
		return nil, a.c.invalid(opAssignments, spID, "the service principal id is not a GUID")
	}
	ctx, st, cancel := a.c.begin(ctx, opAssignments)
	defer cancel()
	ri, err := serviceprincipals.NewServicePrincipalsRequestBuilderInternal(a.c.pathParams(), a.c.adapter).
		ByServicePrincipalId(spID).AppRoleAssignments().ToGetRequestInformation(ctx, nil)
	if err != nil {
		return nil, a.c.invalid(opAssignments, spID, err.Error())
	}
	res, err := a.c.adapter.Send(ctx, ri, pageOf[*appRoleAssignment](createAppRoleAssignment), errorMapping)
	if err != nil {
		return nil, a.c.fail(ctx, opAssignments, spID, err, st)
	}
	var out []certs.AppRoleAssignment
	p, _ := res.(*page[*appRoleAssignment])
	if p == nil {
		return nil, nil
	}
	for _, m := range p.value {
		if m != nil {
			out = append(out, assignmentFromModel(m))
		}
	}
	return out, nil
}

func assignmentFromModel(m *appRoleAssignment) certs.AppRoleAssignment {
	ar := certs.AppRoleAssignment{ID: deref(m.id)}
	if id := m.principalID; id != nil {
		ar.PrincipalID = id.String()
	}
	if id := m.resourceID; id != nil {
		ar.ResourceID = id.String()
	}
	if id := m.appRoleID; id != nil {
		ar.AppRoleID = id.String()
	}
	return ar
}

// AssignAppRole grants the app role appRoleID of the resource service principal resourceID
// (Microsoft Graph's, for an application permission) to the service principal principalID:
// POST /servicePrincipals/{resourceID}/appRoleAssignedTo. This is the admin consent. When
// Graph answers that the assignment exists already (400 "Permission being assigned already
// exists on the object"), it returns the existing one.
func (a *Admin) AssignAppRole(ctx context.Context, principalID, resourceID, appRoleID string) (certs.AppRoleAssignment, error) {
	for _, id := range []string{principalID, resourceID, appRoleID} {
		if !isGUID(id) {
			return certs.AppRoleAssignment{}, a.c.invalid(opAssign, principalID, fmt.Sprintf("%q is not a GUID", id))
		}
	}
	p, r, role := uuid.MustParse(principalID), uuid.MustParse(resourceID), uuid.MustParse(appRoleID)
	body := &appRoleAssignment{odataType: ptr(odataAppRoleAssignment), principalID: &p, resourceID: &r, appRoleID: &role}
	var out certs.AppRoleAssignment
	err := func() error {
		ctx, st, cancel := a.c.begin(ctx, opAssign)
		defer cancel()
		st.noRetry = []int{http.StatusGatewayTimeout}
		ri, err := write(ctx, a.c, serviceprincipals.NewServicePrincipalsRequestBuilderInternal(a.c.pathParams(), a.c.adapter).
			ByServicePrincipalId(resourceID).AppRoleAssignedTo().ToGetRequestInformation, abstractions.POST, body)
		if err != nil {
			return a.c.invalid(opAssign, principalID, err.Error())
		}
		res, err := a.c.adapter.Send(ctx, ri, createAppRoleAssignment, errorMapping)
		if err != nil {
			return a.c.fail(ctx, opAssign, principalID, err, st)
		}
		m, _ := res.(*appRoleAssignment)
		if m == nil {
			return a.c.invalidAnswer(opAssign, principalID, st, "Graph answered without the assignment")
		}
		out = assignmentFromModel(m)
		a.c.log.Info("granted app role", "principal_id", principalID, "resource_id", resourceID, "app_role_id", appRoleID)
		return nil
	}()
	var e *Error
	if err == nil || !errors.As(err, &e) || !e.alreadyExists() {
		return out, err
	}
	list, lerr := a.AppRoleAssignments(ctx, principalID)
	if lerr != nil {
		return certs.AppRoleAssignment{}, err
	}
	for _, ar := range list {
		if ar.Grants(resourceID, appRoleID) {
			return ar, nil
		}
	}
	return certs.AppRoleAssignment{}, err
}

// AddOwner makes the directory object ownerID (a service principal or user) an owner of the
// application objectID: POST /applications/{id}/owners/$ref {"@odata.id":
// "<Graph>/v1.0/directoryObjects/{ownerID}"}. Graph is not idempotent here (a second time
// answers 400 "One or more added object references already exist..."); AddOwner is: it
// returns nil then.
func (a *Admin) AddOwner(ctx context.Context, objectID, ownerID string) error {
	if !isGUID(objectID) || !isGUID(ownerID) {
		return a.c.invalid(opAddOwner, objectID, "the object ids are not GUIDs")
	}
	ctx, st, cancel := a.c.begin(ctx, opAddOwner)
	defer cancel()
	body := models.NewReferenceCreate()
	body.SetOdataId(ptr(a.c.baseURL + "/directoryObjects/" + ownerID))
	if err := a.c.item(objectID).Owners().Ref().Post(ctx, body, nil); err != nil {
		e := a.c.fail(ctx, opAddOwner, objectID, err, st)
		var ge *Error
		if errors.As(e, &ge) && ge.alreadyExists() {
			return nil
		}
		return e
	}
	a.c.log.Info("added owner", "object_id", objectID, "owner_id", ownerID)
	return nil
}

// Replace sets the keyCredentials of the application objectID to exactly creds, as
// Client.Replace does (PATCH replaces the whole collection: pass every credential as read,
// plus the new one).
func (a *Admin) Replace(ctx context.Context, objectID string, creds []certs.KeyCredential) error {
	return a.c.Replace(ctx, objectID, creds)
}

// CloseIdleConnections closes the client's idle connections.
func (a *Admin) CloseIdleConnections() { a.c.CloseIdleConnections() }
