// Package graph reads and writes an Entra ID application's keyCredentials through Microsoft
// Graph, signing in with the agent's own certificate; it is the only package that imports
// msgraph-sdk-go and azidentity.
//
// Client satisfies rotation.KeyCredentials (Get and Replace) and adds AddKey and RemoveKey for
// the agent's own app registration (self-renewal with a proof of possession), and Owners and
// ServicePrincipalID, with which `certagent doctor` checks that the agent owns the target app.
//
// Admin is the other client: `certagent setup` signs an administrator in with it (azidentity's
// DeviceCodeCredential through the public client "Microsoft Graph Command Line Tools", asking
// for AdminScopes only; or AzureCLICredential with --use-az) to find the provider's app,
// create the agent's app and service principal, grant Application.ReadWrite.OwnedBy and add
// owners. Its token stays in memory and is never stored.
//
// # What the client guards against
//
// These are the hazards of docs/graph.md and of the SDKs themselves, as of msgraph-sdk-go
// v1.89.0, kiota-http-go v1.5.4, kiota-abstractions-go v1.9.3, azidentity v1.15.0 and MSAL-Go
// v1.10.1:
//
//   - Only the application and its keyCredentials are read: Get asks for a single object with
//     $select (GET /applications(appId='...')?$select=id,appId,displayName,keyCredentials),
//     the one form of read for which Graph returns each credential's key bytes, so that
//     thumbprints come from the certificates themselves.
//   - PATCH replaces the whole keyCredentials collection. Replace sends exactly the list it is
//     given, in order, every entry with its keyId; an entry without key bytes is sent with
//     "key": null, which Graph reads as "keep the stored key". Dates are sent with the
//     precision they were read with, since Graph refuses a changed property on an existing
//     keyId.
//   - The SDK's authentication provider silently sends a request WITHOUT the Authorization
//     header when the URL's host is not in its valid-hosts list. The list holds exactly the
//     Graph host, and the innermost middleware refuses to send a request that has no
//     Authorization header or that goes to any other host (fail closed).
//   - kiota-http-go builds its default middleware list from a Go map, so its order changes
//     from run to run. When the retry handler runs before the compression handler, a retried
//     PATCH goes out with "Content-Encoding: gzip" and an uncompressed body
//     (microsoft/kiota-http-go#183). The client builds the list itself, in a fixed order,
//     with compression outside retry: the body is compressed once and each retry resends the
//     same compressed bytes. The retry handler also leaves each throttled answer's body open;
//     the client drains and closes it.
//   - odataerrors.ODataError's Error method dereferences fields that may be missing and can
//     panic; errors are read field by field and never through that method. An error answer
//     that is not JSON (a proxy's HTML page) yields no ODataError at all, so the status and
//     headers of the last answer are recorded by the client's own middleware and used instead.
//   - MSAL-Go redeems device codes with grant_type=device_code, not RFC 8628's URN, and polls
//     on its own schedule (50 ms growing to 5 s), ignoring the server's interval.
//   - The SDK's authentication provider asks azidentity for tokens with CAE on, and azidentity
//     keeps CAE and non-CAE tokens apart: Admin.SignIn asks with CAE too, or the first Graph
//     call would start a second device code flow.
//   - Graph is not idempotent where setup needs it to be: a second owners/$ref answers 400
//     "One or more added object references already exist...", a second app role assignment
//     400 "Permission being assigned already exists on the object", a second service
//     principal 409. AddOwner, AssignAppRole and CreateServicePrincipal take those answers as
//     success and return what exists. $search needs the ConsistencyLevel: eventual header.
//   - azidentity's ClientCertificateCredential is built for one certificate. The client wraps
//     it in a credential that rebuilds it when the CredentialSource's certificate thumbprint
//     changes (see "Tokens" below).
//
// # Retries and how they stack
//
// Three layers retry, and the caller should know all three:
//
//  1. Graph requests: kiota's retry handler retries 429, 503 and 504 up to 3 times, waiting
//     for Retry-After when the answer has one (kiota truncates fractional seconds; the client
//     waits out the fraction itself), otherwise 3 s, 6 s, 12 s plus up to 1 s of jitter. The
//     client stops these retries early when the wait would not fit in what is left of the
//     operation's deadline (Config.Timeout, or the caller's earlier deadline): the last
//     answer is then returned as a transient Error whose RetryAfter tells the server's wish.
//     AddKey and RemoveKey are not retried on 504, as a timed-out POST may have taken
//     effect.
//  2. Token requests: azcore's retry policy retries 408, 429, 500, 502, 503, 504 and
//     network failures (not an untrusted server certificate) up to 3 times (0.8 s
//     doubling, honouring Retry-After). An access token is cached for about an hour, so
//     this layer is rarely reached.
//  3. The caller: the rotation engine retries an operation whose error is transient, after
//     RetryAfter or its own backoff. One engine attempt may thus be up to 4 HTTP requests
//     (and up to 4 token requests); an engine configured for N attempts may send up to 4N.
//     Throttling longer than the operation's deadline is left entirely to the engine, which
//     keeps the SDK from sleeping minutes inside one call.
//
// # Tokens
//
// Each Graph request asks the credential for a token; azidentity keeps tokens in an
// in-memory cache per credential and asks the token endpoint again only near expiry.
// When the CredentialSource's certificate changes (renewal), the wrapper builds a new
// azidentity credential, and with it an empty cache: the next request signs in with the new
// certificate at once (one extra token request, which also proves the new certificate
// works), and the token obtained with the old certificate is dropped, never reused.
//
// # Build cost
//
// The client uses msgraph-sdk-go's applications, applicationswithappid and serviceprincipals
// request builders with msgraph-sdk-go-core's request adapter, and not the root package's
// GraphServiceClient: the root imports every request builder of Graph (about 120 packages,
// 117 MB of source with their dependencies against 25 MB for what is used here), all compiled
// for nothing. The adapter is built as msgraph-sdk-go builds it (same telemetry, the same
// middleware bar the /me URL rewriting that application requests never need, in a fixed
// order), with serializers registered on the adapter rather than in kiota's process-wide
// registries.
//
// Nor does the client use the SDK's models of Graph's entities (Application,
// ServicePrincipal, AppRoleAssignment, User, DirectoryObject), or the builder methods that
// take or return one (Get, Post, Patch): any of them reaches
// models.CreateEntityFromDiscriminatorValue, which names every entity type of Graph, and the
// linker then keeps the whole models package. The resources are small kiota Parsables of
// the client's own (wire.go) that write the same JSON as the models; requests come from the
// builders' ToGetRequestInformation (for a PATCH or POST, with the method and body set) and
// go through the adapter's Send with the SDK's odataerrors mapping. The SDK's complex types
// that reach no entity (KeyCredential, AppRole, ReferenceCreate) and its addKey, removeKey
// and owners/$ref builders are used as they are. This took the stripped release binary
// (linux/amd64) from 44.3 MB to 19.8 MB, and the idle agent's resident memory from 29.1 MB
// to 25.3 MB, most of it pages of the binary (23.6 MB built without cgo, as a release is).
//
// # Errors
//
// Every error returned by the client's methods is an *Error. It reports Transient (429, 408,
// 500, 502, 503, 504, timeouts, resets, DNS and dial failures, token endpoint 5xx, and a
// 401 InvalidAuthenticationToken from Graph on a token the cache still held as good: Graph's
// clock ahead of the agent's, or a revoked token; the cached token is dropped so that the
// next attempt signs in again),
// RetryAfter (from Retry-After: seconds, possibly fractional, or an HTTP date) and Reason
// (certs.GraphDenied, certs.AppNotFound, certs.GraphBadRequest, certs.GraphUnavailable,
// certs.AuthFailed or certs.GraphError), and keeps Graph's code and message, or the token
// endpoint's AADSTS code and description. Errors and logs never hold a token, an assertion,
// a proof or key material.
package graph
