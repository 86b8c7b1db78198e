// Package emulator is an emulated Entra ID tenant (the token endpoint) and Microsoft Graph
// (/v1.0/applications), as strict as the real services, for tests and for `certagent dev`
// and `certagent emulator`.
//
// It is driven by the real clients (azidentity/MSAL-Go with msgraph-sdk-go, and azure-cli
// with MSAL-Python) over HTTPS with its own CA, and shares no code with the agent's Graph
// client, so that it cannot agree with that client's bugs. docs/graph.md lists, for each
// behaviour, what Entra and Graph do, where Microsoft documents it or users report it, and
// the test that proves the emulator does the same; where a behaviour is marked *inferred*
// below, nobody has checked it against a live tenant.
//
// By default it is fast, strict and consistent: every write is visible to the next read and
// to the next sign-in. Real Entra is slower and eventually consistent; Settings (or
// WithRealistic, `certagent emulator --realistic`) make it so: see "Delays" below.
//
// # Use
//
//	e, err := emulator.New(dir, emulator.WithSeed(seed))
//	err = e.Start("127.0.0.1:0")
//	defer e.Close()
//	// trust e.CertPool() (or e.CAFile()); authority host and Graph base: e.URL()
//
// dir keeps everything (ca.pem, ca.key, server.pem, server.key, signing.pem, signing.key,
// state.json; key files 0600): a new Emulator on the same dir has the same CA and the same
// tenant. Every acknowledged write is on disk (temporary file, fsync, rename) before the
// answer leaves.
//
// # Routes
//
// Token service (errors in Entra's shape: error, error_description "AADSTS<n>: ... Trace ID:
// ... Correlation ID: ... Timestamp: ...", error_codes, timestamp, trace_id,
// correlation_id, error_uri):
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration   {tenant}: id or domain name
//	GET  /{tenant}/.well-known/openid-configuration        (v1)
//	GET  /{tenant}/discovery/v2.0/keys, /{tenant}/discovery/keys
//	POST /{tenant}/oauth2/v2.0/token, /{tenant}/oauth2/token
//	POST /{tenant}/oauth2/v2.0/devicecode                  the device code flow (below)
//	GET  /adfs/.well-known/openid-configuration            for azure-cli (docs/graph.md)
//	POST /adfs/oauth2/token                                tenant = the one holding client_id
//	GET  /adfs/discovery/keys
//	GET  /subscriptions, /tenants                          ARM, for az login: {"value":[]}
//
// Microsoft Graph (errors in Graph's shape: {"error":{"code","message","innerError":{"date",
// "request-id","client-request-id"}}}, client-request-id being the client's, or the request
// id when the client sent none; every answer carries request-id and client-request-id
// headers):
//
//	GET   /v1.0/applications[?$filter=...&$select=...&$top=...]
//	GET   /v1.0/applications/{id}[?$select=...]
//	GET   /v1.0/applications(appId='{appId}')[?$select=...]
//	PATCH /v1.0/applications/{id}, /v1.0/applications(appId='{appId}')
//	POST  /v1.0/applications/{id}/addKey, .../removeKey (also microsoft.graph.addKey...)
//	POST  /v1.0/applications                               create (the caller owns it)
//	GET   /v1.0/applications/{id}/owners, (appId='{appId}')/owners   users and service principals
//	POST  /v1.0/applications/{id}/owners/$ref              {"@odata.id": ".../directoryObjects/{id}"}
//	GET   /v1.0/servicePrincipals[?$filter=...&$select=...], POST /v1.0/servicePrincipals {"appId"}
//	GET   /v1.0/servicePrincipals/{id}, /v1.0/servicePrincipals(appId='{appId}')
//	GET, POST /v1.0/servicePrincipals/{id}/appRoleAssignments, .../appRoleAssignedTo
//
// Control (no token; loopback callers only; never faulted, never logged):
//
//	GET    /_emulator/state      tenants, applications, credentials, clients
//	GET    /_emulator/demo       what the demo tenant holds (404 without one)
//	GET    /_emulator/faults     queued faults, "times" holding what is left
//	POST   /_emulator/faults     a JSON array of faults (or one fault)
//	DELETE /_emulator/faults
//	GET    /_emulator/requests   the request log ({"items":[...]})
//	DELETE /_emulator/requests
//	GET    /_emulator/settings   the Settings (durations as strings, "5s")
//	PUT    /_emulator/settings   change the fields given, keep the others
//	POST   /_emulator/settle     end every pending delay now (Settle)
//	GET    /_emulator/devicecode the device code flows (user code, client, scopes, state)
//	POST   /_emulator/devicecode/approve   {"userCode" (or "user_code"), "user", "scopes",
//	       "decline"}: a person signs in and consents (ApproveDeviceCode, DeclineDeviceCode)
//	GET, POST /_emulator/devicelogin  the verification_uri: a form to approve a code by hand
//	POST   /_emulator/applications/{appId}/keyCredentials           upload a certificate as
//	       in the portal: {"certificate" (PEM or base64 DER), "displayName", "keyId",
//	       "startDateTime", "endDateTime"}; 201 with the credential (PortalAddKeyCredential)
//	DELETE /_emulator/applications/{appId}/keyCredentials/{keyId}   delete it as in the
//	       portal; 204 (RemoveKeyCredential)
//
// With WithProvider (`certagent emulator --provider`, `certagent dev --provider`) it also plays
// the backup provider (package emulator/provider): GET /provider/customers/{customer}/next.cer
// and next.cer.sig (ETag, If-None-Match), POST /provider/webhook (Standard Webhooks, verified
// with the provider's secret), and the control routes GET /_emulator/provider/state and POST
// /_emulator/provider/publish. Faults and the request log apply to /provider/ as to Graph.
//
// The two portal routes write through the same path as Graph: the change is on the primary
// at once, reaches Graph's readers with replication lag and the token endpoint with sign-in
// propagation, and the upload is held to the size limit.
//
// # Token endpoint
//
// Only client_credentials, with a certificate (client assertion) or, when the app has
// password credentials, a client secret. Checks, in order, each with Entra's code:
// POST only (900561; an unknown path is a bare 404); grant_type present (900144) and client_credentials (70003
// unsupported_grant_type); client_id (900144); scope "<resource>/.default" (900144,
// 1002012, 28000; v1 also takes resource); a credential (7000218); the client in the tenant
// (90002 unknown tenant, 700016 unauthorized_client; see "Multitenant applications" for an
// application of another tenant; 7000229 for an application without a service principal);
// then, against the credentials of the client's application object, for a secret 7000215 /
// 7000222, for an assertion: client_assertion_type (900144), a well-formed JWT (50027), alg RS256 or
// PS256 (5002730), a thumbprint header — x5t#S256 (standard base64 with padding, or
// base64url) else x5t (50027) —, one aud equal to this token endpoint in its v2 or v1 form,
// naming the tenant by id or domain, or the v2.0 issuer, or for ADFS its token endpoint
// (5002741 for several, 50012 *inferred* otherwise), sub = iss (50048), iss = client_id
// (700021), exp present and not past, nbf (optional) not future, with 5 minutes' skew;
// iat/exp/nbf may be floats (700024, whose message says "valid from 1970-01-01" without
// nbf, as Entra's does); the thumbprint among the app's AsymmetricX509Cert/Verify
// credentials as the token service knows them (700027 "not registered"; see sign-in
// propagation), one of them inside both its start/end window and its certificate's validity
// (Settings.ValidityErrorCode: 700027 "The key used is expired", or "is not yet valid"
// *inferred*, by default; 1000502 or 7000274, codes Microsoft's own client library treats as
// a certificate outside its validity window, with *unconfirmed* wording), an RSA key
// (5002730), and the signature (PS256: PSS with the salt length detected; 700027 "signature value did not
// match"). Last, the resource (500011): Microsoft Graph (https://graph.microsoft.com,
// 00000003-0000-0000-c000-000000000000, or this emulator's own base URL, which azure-cli's
// custom cloud makes the Graph resource, "https://127.0.0.1:PORT//.default"), or ARM
// (https://management.core.windows.net/, https://management.azure.com/). x5c is ignored.
//
// Access tokens: RS256 JWTs signed by the emulator's key (kid/x5t in the JWKS), claims aud
// (the resource as requested), iss https://sts.windows.net/{tid}/, iat, nbf, exp, appid,
// azp, appidacr, oid and sub (the app's service principal in tid), tid (the tenant of the
// token endpoint), idtyp "app", ver "1.0", and roles (the Graph roles of that service
// principal, for Graph only) as they were when the token was issued. Answer:
// token_type, expires_in 3599, ext_expires_in, access_token (v1 and ADFS add expires_on,
// not_before, resource).
//
// # Multitenant applications
//
// An application lives in its home tenant, the tenant of its application object, which
// holds its credentials (keyCredentials, passwordCredentials). Its signInAudience says who
// may use it: AzureADMyOrg (the default) only its home tenant, AzureADMultipleOrgs any tenant
// where it has a service principal. Such a service principal in another tenant is made by
// admin consent there (ConsentApplication, or POST /servicePrincipals {appId} by an
// administrator of that tenant, then POST .../appRoleAssignedTo); it holds that tenant's app
// role assignments (Graph application permissions) and may own that tenant's applications
// (owners/$ref; AddApplication and SetOwners name it by the appId). It keeps the display name
// the application had then.
//
// The token endpoint of tenant B, asked for a client_id registered in tenant A: a
// single-tenant application answers 700016 unauthorized_client "Application with identifier
// '...' was not found in the directory '...'", as an unknown client does, even when B holds a
// service principal of it from a time it was multitenant (*inferred*); a multitenant one
// without a service principal in B answers 7000229 invalid_client "The client application
// ... is missing service principal in the tenant ..." (Settings.UnconsentedErrorCode:
// 700016, what Entra answered before, with WithUnconsentedErrorCode or
// {"unconsentedErrorCode":700016}). Otherwise the client assertion (or secret) is checked
// against the home application's credentials as the token service knows them (sign-in
// propagation applies: a key just added to the home application is refused in B too), with
// aud naming B's token endpoint, and the token has tid B, oid and sub the service principal
// in B, and the roles granted in B. In Graph that service principal is the caller:
// Application.ReadWrite.OwnedBy writes the apps of B it owns; GET /servicePrincipals lists
// it (appOwnerOrganizationId the home tenant, signInAudience the application's), as do the
// owners of the apps it owns. The application object is not in B: GET /applications in B
// does not find it, and addKey/removeKey on it go to the home tenant.
//
// # Users and the device code flow
//
// Tenants may hold member users (Seed.Users, AddUser), each with Microsoft Entra directory
// roles (Global Administrator, Privileged Role Administrator, Application Administrator,
// Cloud Application Administrator, Application Developer). They sign in only with the device
// code flow, through a first-party public client (Microsoft Graph Command Line Tools
// 14d82eec-..., Microsoft Azure CLI 04b07795-...); an app registration of the tenant may ask
// for a code but cannot redeem it without a credential (7000218). POST .../devicecode takes
// client_id and scope (Graph scopes by name, "https://graph.microsoft.com/X" or this
// emulator's base URL + "/X", or ".default"; one resource, 28000; unknown scopes 70011) and
// answers user_code (nine characters), device_code, verification_uri (/_emulator/devicelogin),
// expires_in 900 (WithDeviceCodeLifetime), interval 5 and message. Polling the token endpoint
// with grant_type urn:ietf:params:oauth:grant-type:device_code answers 400
// authorization_pending (70016) until a person approves, expired_token (70020) after
// expires_in, authorization_declined once declined, bad_verification_code (70018) for an
// unknown or redeemed code; never slow_down (Entra does not document it). Approval names the
// user (default: the first Global Administrator) and consents to the scopes asked for (or
// fewer); WithDeviceCodeAutoApprove approves every code at once. The answer holds a delegated
// access token (idtyp "user", scp the granted scopes, upn, wids), a refresh token
// (offline_access), an id token (openid) and client_info (client_info=1); the refresh_token
// grant gets tokens for consented scopes only (65001 otherwise). Flows, refresh tokens and
// consents live in memory.
//
// # Graph
//
// Every /v1.0 request needs an unexpired access token from this emulator for Graph (401
// InvalidAuthenticationToken: "Access token is empty.", "CompactToken parsing failed...",
// "Invalid signature", "...Invalid issuer.", "...Invalid audience.", "Lifetime validation
// failed, the token is expired.", with a WWW-Authenticate challenge). Apps are found in the
// caller's tenant only.
//
// Permissions: reads need Application.Read.All, Application.ReadWrite.All, Directory.Read.All,
// Directory.ReadWrite.All or Application.ReadWrite.OwnedBy; OwnedBy reads every application
// (reported behaviour of Graph; WithOwnedByReadsOwnedOnly restricts it to owned ones, the
// others then being left out of lists and 403 on a single read). PATCH needs
// Application.ReadWrite.All, or Application.ReadWrite.OwnedBy with the caller's service
// principal among the app's owners; otherwise 403 Authorization_RequestDenied "Insufficient
// privileges to complete the operation.". An app has no implicit right over itself: reading
// or PATCHing its own registration needs the same permissions (so an agent with OwnedBy that
// does not own itself renews its credential with addKey/removeKey, which need no permission
// on the caller's own app). Delegated tokens: reads need Application.Read.All (or
// ReadWrite, Directory.*, Directory.AccessAsUser.All); writes (PATCH, owners, creating a
// service principal) need Application.ReadWrite.All and a user who owns the app or is a
// Global, Application or Cloud Application Administrator; creating an application needs
// Application.ReadWrite.All (app-only: OwnedBy suffices; the caller becomes the owner).
// Granting an app role needs AppRoleAssignment.ReadWrite.All with a read permission and, for
// a user, Global or Privileged Role Administrator (Graph's app roles). An application created
// through Graph has no service principal until POST /servicePrincipals, and cannot sign in
// before (7000229).
//
// Onboarding routes: POST /applications {displayName, signInAudience AzureADMyOrg (default)
// or AzureADMultipleOrgs} answers 201. POST /servicePrincipals {appId} answers 201, 409
// Request_MultipleObjectsWithSameKeyValue for a second one; for a multitenant application of
// another tenant it needs Application.ReadWrite.All (app-only) or a Global, Application or
// Cloud Application Administrator, and a single-tenant one answers 400 (*inferred* wording). Microsoft Graph's own service principal (appId 00000003-...; its id is
// derived from the tenant id) lists Graph's app roles with Microsoft's ids
// (Application.ReadWrite.OwnedBy 18a4783c-866b-4cc7-a460-3d5e5662c884, ...) and delegated
// scopes. POST .../appRoleAssignedTo (or .../appRoleAssignments) {principalId, resourceId,
// appRoleId} answers 201 with an id that begins with the principal's id, and 400 "Permission
// being assigned already exists on the object" for a second time; the role is in the app's
// next tokens. POST .../owners/$ref answers 204, 404 for an unknown object, 400 "One or more
// added object references already exist for the following modified properties: 'owners'."
// for an owner already there. GET .../owners lists #microsoft.graph.servicePrincipal and
// #microsoft.graph.user objects. $search="displayName:word" on applications (tokenized,
// prefix of a word) and $count=true need ConsistencyLevel: eventual (400 otherwise).
//
// Reads: $select (a comma list of the entity's properties, matched case-insensitively; an
// unknown one is 400 Request_BadRequest "Parsing OData Select and Expand failed: Could not
// find a property named ..."); lists also take $filter (appId/id/displayName eq '...',
// startswith(displayName,'...'); anything else 400 Request_UnsupportedQuery), $top (default
// 100, at most 999) and $skiptoken (from @odata.nextLink). $expand and $orderby answer 400
// Request_UnsupportedQuery; $search and $count on applications are described above. Answers carry @odata.context. A credential's key is
// returned only by a single-object read whose $select names keyCredentials; in lists and
// without $select it is null. Properties of application the emulator does not model read as
// null (or []). Unknown object: 404 Request_ResourceNotFound "Resource '...' does not exist
// or one of its queried reference-property objects are not present."; an id that is not a
// GUID: 400 "Invalid object identifier '...'.". Unknown segments: 400 BadRequest "Resource
// not found for the segment '...'.".
//
// PATCH: the body may be gzip-compressed (WithRejectGzip answers 415 instead), must be JSON
// (Content-Type application/json) and may carry "@odata.type":"#microsoft.graph.application".
// It may set keyCredentials, passwordCredentials, displayName and signInAudience
// (AzureADMyOrg or AzureADMultipleOrgs); other application
// properties answer 400 (the emulator does not model them), unknown properties 400 with
// OData's message. keyCredentials replaces the whole collection. An entry with a known keyId
// keeps the stored credential: key may be null (azure-cli sends it so) or the same bytes,
// and any other property present, non-null and different is refused with 400 "Update to
// existing credential with KeyId '...' is not allowed." (*inferred* to hold on Graph;
// WithExistingCredentialUpdates applies the change instead). A new entry needs type
// AsymmetricX509Cert, usage Verify (or Sign) and key, base64 of a DER X.509 certificate
// (line breaks allowed, as azure-cli sends); keyId is generated when absent and must be a
// GUID; customKeyIdentifier defaults to the thumbprint (see WithCustomKeyIdentifierFormat);
// missing dates come from the certificate, and dates outside the certificate's validity
// answer 400 "Key credential start/end date is invalid." (*inferred* rule;
// WithAnyCredentialDates lifts it); displayName is cut at 90 characters. The same
// certificate under another keyId is accepted (de-duplication is the client's job).
// passwordCredentials are kept by keyId; new ones answer "New password credentials must be
// generated using service actions.". Entra limits the size of the application object, not the
// number of its keys: a write that makes the JSON of the app's key (with keys) and password
// credentials larger than Settings.ObjectSizeLimit (default DefaultObjectSizeLimit, 1 MiB)
// answers 400 Directory_ResourceSizeExceeded "The size of the object has exceeded its limit.
// Please reduce the number of values and retry your request." (Settings.SizeLimitStatus 403
// gives the status Azure AD Graph documented). Success: 204.
//
// addKey and removeKey need a proof: a JWT without '=' padding, signed (RS256; PS256
// accepted) with the key of a certificate currently valid on that app (named by x5t,
// x5t#S256 or kid, otherwise each is tried), aud 00000002-0000-0000-c000-000000000000 and
// nothing else (Microsoft's "Generate proof of possession tokens for rolling keys"; Graph's own
// id 00000003-... is refused, as users report), iss the app's object id, nbf and exp at most 10
// minutes apart with now inside (5 minutes' skew); otherwise 401
// Authentication_MissingOrMalformed "Access Token missing or malformed.". addKey answers 200
// with the new keyCredential (key null) and is held to the size limit; removeKey answers 204,
// and 404 for an unknown keyId (*inferred*).
//
// # Delays
//
// Every write (PATCH, addKey, removeKey, the test helpers, the portal routes) goes through
// one path, which notes what changed for the three models below. All are off by default;
// Settings turn them on, and their random choices come from Settings.Seed (math/rand/v2
// PCG), so the same seed and the same sequence of requests make the same choices. Time is
// the emulator's clock (WithClock), so tests advance a fake clock instead of sleeping.
//
// Sign-in propagation (WithSignInPropagation; SignInAddDelay, SignInAddJitter,
// SignInRemoveDelay, SignInRemoveJitter): the token endpoint checks credentials against what
// the token service knows, not what Graph holds. A key credential or secret added to an app
// is refused as unknown (700027 "not registered", 7000215 for a secret) until its delay has
// passed; one removed keeps signing in until its own delay has passed. Graph itself (reads,
// addKey proofs) sees the change at once, subject to replication lag. GET /_emulator/state
// shows "signInFrom" on a credential still waiting.
//
// Replication lag (WithReplicationLag; Replicas, MaxReplicationLag): reads are served by
// replicas. Each write reaches each replica after its own random lag in [0,
// MaxReplicationLag]; each request reads from a replica picked at random, so reads after a
// write can see it, then not, then see it again, for a random time, and lists lag like
// single reads. Writes always apply to the primary (the latest version): a PATCH built on a
// stale read replaces the primary's collection with an old one and really loses the
// credentials the reader missed, as on Graph. GET /_emulator/state shows the primary. A new
// application (AddApplication, AddTenant) is visible at once.
//
// Stale reads (WithStaleReads, or a fault with "stale": true) are the deterministic form: the
// next n reads (or the faulted ones) after a write return the application's previous
// version. They take precedence over the replicas. The request log marks every stale read
// ("stale", or "stale: replica R serves version V of W").
//
// WithRealistic(seed) (RealisticSettings) turns on sign-in propagation of 5-20 s after an
// add and 5-30 s after a remove, and replication lag of up to 2 s over three replicas; the
// figures are of the order users report (docs/graph.md). Settings, SetSettings and GET/PUT
// /_emulator/settings read and change them while the emulator runs; Settle (POST
// /_emulator/settle) ends every pending delay at once. The delays live in memory: a restarted
// emulator starts with none pending.
//
// # Options
//
// WithSeed (repeatable: one tenant each), WithLogger, WithClock, WithStaleReads,
// WithObjectSizeLimit (default DefaultObjectSizeLimit), WithSignInPropagation,
// WithReplicationLag, WithRealistic, WithValidityErrorCode, WithUnconsentedErrorCode,
// WithSettings (all of them at once), WithRejectGzip, WithCustomKeyIdentifierFormat (CKIThumbprintHex, default, or
// CKIThumbprintRaw), WithTokenLifetime (default 3599 s), WithOwnedByReadsOwnedOnly,
// WithDeviceCodeAutoApprove, WithDeviceCodeLifetime, and two
// switches for *inferred* rules: WithExistingCredentialUpdates (apply changes to an existing
// keyId instead of refusing them) and WithAnyCredentialDates (accept key credential dates
// outside the certificate).
//
// Test helpers change the tenant directly and persist like any write, subject to the delays
// like any write: AddTenant, AddApplication, SetSignInAudience, ConsentApplication (a
// multitenant application's service principal in another tenant, with Graph roles),
// AddKeyCredential (no size limit), PortalAddKeyCredential (with it), RemoveKeyCredential,
// RemoveApplication (Graph answers 404 for it at once; service principals consented in
// other tenants stay, as in Entra), SetOwners, SetGraphRoles,
// Application, AccessToken (mint a token without signing in), AddFaults, ClearFaults,
// Faults, Requests, ClearRequests, State, DemoInfo, Settings, SetSettings, Settle, AddUser,
// ApproveDeviceCode, DeclineDeviceCode, DeviceCodes, UserAccessToken (mint a user's token).
//
// # Faults
//
// POST /_emulator/faults takes [{"method","path" (prefix),"status","code","message",
// "retryAfter" (seconds, may be fractional),"times" (absent 1, 0 until cleared),"delayMs",
// "reset":true,"resetAfter":true,"stale":true}]. A status fault answers in Graph's error shape on Graph routes
// (429 TooManyRequests, 503 ServiceUnavailable, ...) and in Entra's on the token endpoint
// (temporarily_unavailable, AADSTS90033 for 429 and 5xx); delayMs waits (without holding any
// lock) before serving or before the status; reset drops the connection without an answer;
// resetAfter serves the request (a write lands) and then drops the connection, so the client
// cannot tell whether its write took effect. InFlight lists the requests being served at
// this instant (a test that kills a client asks it what the client was waiting for).
//
// # Seed file
//
// `certagent emulator --seed FILE` reads YAML (LoadSeed); unknown fields are errors, and
// errors name the file and the field:
//
//	tenantId: 2f6d8a0e-6a3c-4c5e-9a55-1d0a7f1b2c3d   # optional, generated when absent
//	domain: contoso.onmicrosoft.com                  # optional
//	applications:
//	  - displayName: Veeam Backup for Microsoft 365
//	    appId: ...                  # optional GUIDs: appId, objectId, servicePrincipalId
//	    owners: [certagent]         # owning apps, by appId or displayName
//	    keyCredentials:
//	      - certificateFile: provider.cer   # relative to the seed file; DER or PEM
//	        displayName: CN=AUCloud VB365 2026
//	  - displayName: certagent
//	    signInAudience: AzureADMultipleOrgs   # optional; default AzureADMyOrg
//	    graphRoles: [Application.ReadWrite.OwnedBy]
//	    keyCredentials:
//	      - certificate: |                  # inline PEM (a private key block is ignored)
//	          -----BEGIN CERTIFICATE-----
//	          ...
//	          -----END CERTIFICATE-----
//	        keyId: ...                      # optional; also startDateTime, endDateTime
//	                                        # (RFC 3339, within the certificate), usage
//	    passwordCredentials:
//	      - secret: s3cret                  # also displayName, keyId, start/endDateTime
//
//	users:
//	  - userPrincipalName: admin        # the tenant's domain is appended
//	    directoryRoles: [Global Administrator]
//
// Known Graph roles: Application.Read.All, Application.ReadWrite.All,
// Application.ReadWrite.OwnedBy, Directory.Read.All, Directory.ReadWrite.All,
// AppRoleAssignment.ReadWrite.All.
package emulator
