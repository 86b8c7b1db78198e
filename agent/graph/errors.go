package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/aucloud/certagent/agent/certs"
)

// Error is a failed call to Microsoft Graph or to the Entra ID token endpoint. It is the only
// error type the Client's methods return.
type Error struct {
	// Op is the operation: "get", "replace", "addKey" or "removeKey".
	Op string
	// Object names what Op addressed: the app id for "get", the object id otherwise.
	Object string
	// SignIn is true when the token endpoint failed, not Graph.
	SignIn bool
	// StatusCode is the HTTP status of the last answer; 0 when there was none.
	StatusCode int
	// Code is Graph's error code (Authorization_RequestDenied...) or the token endpoint's
	// "error" (invalid_client...).
	Code string
	// Message is Graph's error message or the token endpoint's error_description.
	Message string
	// AADSTS is the token endpoint's AADSTS error number (700027...), 0 for Graph errors.
	AADSTS int
	// Thumbprint is the SHA-1 thumbprint of the sign-in certificate, for sign-in failures.
	Thumbprint string
	// RequestID is Graph's request-id, or the token endpoint's trace id.
	RequestID string
	// ClientRequestID is the client-request-id the SDK sent, or the token endpoint's
	// correlation id.
	ClientRequestID string

	clientID   string
	retryAfter time.Duration
	transient  bool
	reason     certs.Code
	// detail is the message body after the operation's description.
	detail string
	// hint, when set, tells an administrator what to do; it ends Reason().Message.
	hint string
	// err is the underlying network, context or local error; nil for an answer from a server.
	err error
	// notYet marks an object the client just created that Graph does not show yet.
	notYet bool
}

func (e *Error) Error() string {
	if e.Op == "" {
		return "graph: " + e.detail
	}
	return describeOp(e.Op, e.Object) + ": " + e.detail
}

// AADSTSCode returns the AADSTS number of a sign-in failure (0 when there is none).
func (e *Error) AADSTSCode() int { return e.AADSTS }

// Unwrap returns the underlying network, context or local error, if any, so that
// errors.Is(err, context.Canceled) works. Answers from Graph and the token endpoint have
// none.
func (e *Error) Unwrap() error { return e.err }

// Transient reports whether the call is worth retrying: throttling, 408, 500, 502, 503, 504,
// timeouts, connection resets, DNS and dial failures, and token endpoint outages.
func (e *Error) Transient() bool { return e.transient }

// NotYetVisible reports whether Graph does not know the object (404, or an application a new
// service principal names that it cannot find): right after the object was created, that is
// replication lag, worth waiting for (docs/graph.md).
func (e *Error) NotYetVisible() bool {
	return e.notYet || e.StatusCode == http.StatusNotFound ||
		(e.StatusCode == http.StatusBadRequest && strings.Contains(e.Message, "does not reference a valid application object"))
}

// alreadyExists reports whether Graph refused to create what exists already: 409, or 400
// "Permission being assigned already exists on the object" and "One or more added object
// references already exist...".
func (e *Error) alreadyExists() bool {
	return e.StatusCode == http.StatusConflict ||
		(e.StatusCode == http.StatusBadRequest && strings.Contains(e.Message, "already exist"))
}

// RetryAfter is how long the server asked to wait (its Retry-After header), 0 when it did not.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// Reason returns the stable code and a message for people (and the audit log).
func (e *Error) Reason() certs.Reason {
	msg := e.Error()
	if e.hint != "" {
		msg += ". " + e.hint
	}
	return certs.Reason{Code: e.reason, Message: msg}
}

func describeOp(op, object string) string {
	switch op {
	case opGet:
		return "reading application " + object + " from Graph"
	case opReplace:
		return "replacing the key credentials of application " + object
	case opAddKey:
		return "adding a key to application " + object
	case opRemoveKey:
		return "removing a key from application " + object
	case opOwners:
		return "listing the owners of application " + object
	case opToken:
		return "signing in as app " + object
	case opSignIn:
		return "signing in as an administrator"
	case opSearch:
		return fmt.Sprintf("searching applications named %q", object)
	case opList:
		return fmt.Sprintf("listing applications named %q", object)
	case opCreateApp:
		return fmt.Sprintf("creating application %q", object)
	case opServicePrincipal:
		return "reading the service principal of application " + object
	case opCreateSP:
		return "creating the service principal of application " + object
	case opAssignments:
		return "listing the app roles granted to service principal " + object
	case opAssign:
		return "granting an app role to service principal " + object
	case opAddOwner:
		return "adding an owner to application " + object
	}
	return op + " " + object
}

// Operation names, as passed to Config.Observe and set in Error.Op.
const (
	opGet       = "get"
	opReplace   = "replace"
	opAddKey    = "addKey"
	opRemoveKey = "removeKey"
	opOwners    = "owners"
	opToken     = "token"
	// The admin client's operations (setup).
	opSignIn           = "signIn"
	opSearch           = "search"
	opList             = "list"
	opCreateApp        = "createApplication"
	opServicePrincipal = "servicePrincipal"
	opCreateSP         = "createServicePrincipal"
	opAssignments      = "appRoleAssignments"
	opAssign           = "assignAppRole"
	opAddOwner         = "addOwner"
)

// classify turns whatever the SDK returned for op into an *Error. last is the last answer the
// client's middleware saw for this operation (nil when none arrived). ctxErr is the
// operation context's error, if it ended.
func (c *Client) classify(op, object string, err error, last *answer, ctxErr error) *Error {
	var own *Error
	if errors.As(err, &own) {
		// Built by the client itself (sign-in failures, local checks); name the operation.
		e := *own
		e.Op, e.Object = op, object
		return &e
	}
	e := &Error{Op: op, Object: object, clientID: c.clientID}
	status := 0
	var header http.Header
	if last != nil {
		status, header = last.status, last.header
	}

	var odata *odataerrors.ODataError
	var apiErr *abstractions.ApiError
	switch {
	case errors.As(err, &odata):
		if s := odata.GetStatusCode(); s != 0 {
			status = s
		}
		header = mergeHeaders(header, odata.GetResponseHeaders())
		if main := odata.GetErrorEscaped(); main != nil {
			e.Code = deref(main.GetCode())
			e.Message = deref(main.GetMessage())
			if inner := main.GetInnerError(); inner != nil {
				e.RequestID = deref(inner.GetRequestId())
				e.ClientRequestID = deref(inner.GetClientRequestId())
			}
		}
	case errors.As(err, &apiErr):
		if apiErr.ResponseStatusCode != 0 {
			status = apiErr.ResponseStatusCode
		}
		header = mergeHeaders(header, apiErr.ResponseHeaders)
	}

	switch {
	case status >= 400:
		// An answer from Graph, decoded or not.
		e.StatusCode = status
		if e.RequestID == "" {
			e.RequestID = header.Get("request-id")
		}
		if e.ClientRequestID == "" {
			e.ClientRequestID = header.Get("client-request-id")
		}
		e.retryAfter = parseRetryAfter(header.Get("Retry-After"), c.now())
		c.classifyStatus(e)
	case ctxErr != nil:
		e.err = ctxErr
		e.reason = certs.GraphUnavailable
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			e.transient = true
			e.detail = fmt.Sprintf("no answer in time (timeout %s)", c.timeout)
		} else {
			e.detail = "cancelled"
		}
	case isTLSVerifyError(err):
		e.err = err
		e.reason = certs.GraphError
		e.detail = "the server's TLS certificate is not trusted: " + err.Error()
		e.hint = "Check graph_url and, for a custom cloud or a TLS-inspecting proxy, the trusted CA certificates"
	case isNetworkError(err):
		e.err = err
		e.transient = true
		e.reason = certs.GraphUnavailable
		e.detail = "network error: " + err.Error()
	default:
		// A local failure of the SDK (a body it could not decode, a request it could not
		// build): not worth retrying.
		e.err = err
		e.reason = certs.GraphError
		if status >= 200 && status < 300 {
			e.StatusCode = status
			e.detail = fmt.Sprintf("Graph answered %d but the answer could not be read: %v", status, err)
		} else {
			e.detail = err.Error()
		}
	}
	return e
}

// classifyStatus sets reason, transient, detail and hint from a Graph error answer.
func (c *Client) classifyStatus(e *Error) {
	s := e.StatusCode
	switch {
	case e.Code == "Directory_ResourceSizeExceeded":
		// The application object is full: Entra limits its size (about a thousand values
		// across its collections, fewer for large certificates), 400 on Graph, 403 on the
		// older directory API. Retrying never helps (docs/graph.md, "Size limit").
		e.reason = certs.AppFull
		e.hint = "The app registration holds as many credentials as Entra allows: remove (retire) old, expired certificates from it, then retry the rotation"
		s = -1 // skip the switch on the status below
	}
	switch s {
	case -1:
	case http.StatusBadRequest:
		e.reason = certs.GraphBadRequest
	case http.StatusUnauthorized:
		e.reason = certs.AuthFailed
		if e.Op == opAddKey || e.Op == opRemoveKey {
			e.hint = "Graph refused the proof of possession: the signing certificate must be valid on the app itself"
		} else {
			e.hint = "Graph refused the agent's access token"
			if !c.admin && c.cred != nil && e.Code == "InvalidAuthenticationToken" {
				// A token Graph no longer takes while the cache holds it as good: Graph's
				// clock is ahead of ours, or the token was revoked. A 401 means the request
				// was not processed, so another attempt with a token signed in afresh is
				// safe and likely to work: drop the cached one.
				c.cred.forget()
				e.transient = true
				e.hint = "Graph refused the agent's access token (expired by Graph's clock, or revoked); the next attempt signs in again"
			}
		}
	case http.StatusForbidden:
		e.reason = certs.GraphDenied
		if c.admin {
			e.hint = "The signed-in administrator may not do this: setup needs the delegated permissions " +
				"Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All (consented), and a Global Administrator " +
				"or Privileged Role Administrator to grant Microsoft Graph's Application.ReadWrite.OwnedBy " +
				"(an Application Administrator can do the rest). Or run the printed script (setup --dry-run) as one"
			break
		}
		e.hint = fmt.Sprintf("The agent's app %s needs the Graph application permission Application.ReadWrite.OwnedBy "+
			"and to be among the owners of the target app (or Application.ReadWrite.All), with admin consent", c.clientID)
	case http.StatusNotFound:
		e.reason = certs.AppNotFound
		if e.Op == opGet && !c.admin {
			e.hint = "Check target.app_id: no app registration with this application (client) id exists in tenant " + c.tenantID
		}
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		e.reason = certs.GraphUnavailable
		e.transient = true
	default:
		e.reason = certs.GraphError
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(s))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	} else if t := http.StatusText(s); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.transient && e.retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.retryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request-id " + e.RequestID + "]")
	}
	e.detail = b.String()
}

// signInError classifies a failure of the token endpoint (or of building the credential) for
// the certificate with thumbprint tp.
func (c *Client) signInError(ctx context.Context, err error, tp string) *Error {
	e := &Error{SignIn: true, Thumbprint: tp, clientID: c.clientID}
	who := fmt.Sprintf("signing in as app %s with certificate %s", c.clientID, tp)
	var af *azidentity.AuthenticationFailedError
	switch {
	case ctx.Err() != nil:
		e.err = ctx.Err()
		e.reason = certs.GraphUnavailable
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			e.transient = true
			e.detail = fmt.Sprintf("%s: no answer in time (timeout %s)", who, c.timeout)
		} else {
			e.detail = who + ": cancelled"
		}
	case errors.As(err, &af) && af.RawResponse != nil:
		resp := af.RawResponse
		e.StatusCode = resp.StatusCode
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		te := readTokenError(resp)
		e.Code, e.Message, e.AADSTS = te.Error, te.Description, te.aadsts()
		e.RequestID, e.ClientRequestID = te.TraceID, te.CorrelationID
		summary := te.summary()
		if summary == "" {
			summary = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
		}
		switch {
		case te.Error == "temporarily_unavailable" || e.AADSTS == 90033 || isTransientStatus(resp.StatusCode):
			e.transient = true
			e.reason = certs.GraphUnavailable
			e.detail = fmt.Sprintf("%s: the token endpoint is unavailable: %s", who, summary)
		case e.AADSTS == 700027 && strings.Contains(strings.ToLower(te.Description), "expired"),
			e.AADSTS == 1000502, e.AADSTS == 7000274:
			// A key outside its validity window: AADSTS700027 "The key used is expired" for
			// long, and newer codes for a certificate outside its validity period
			// (docs/graph.md, "Validity errors"). Whatever the code, the fix is the same.
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("the agent's own certificate (thumbprint %s) is outside its validity period (expired or not yet valid) for app %s: %s", tp, c.clientID, summary)
			e.hint = "The agent cannot renew an expired credential itself: move agent.pem and agent.key aside, run `certagent credential init` and upload the new certificate to the agent's app registration (or run `certagent setup`)"
		case e.AADSTS == 700027 && (strings.Contains(te.Description, "not registered") || strings.Contains(te.Description, "key was not found")):
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("the agent's certificate (thumbprint %s) is not registered on app %s: %s", tp, c.clientID, summary)
			e.hint = fmt.Sprintf("Upload the agent's certificate (thumbprint %s, see `certagent credential show`) to the app registration %s under Certificates & secrets", tp, c.clientID)
		case e.AADSTS == 700027:
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("the token endpoint refused the agent's certificate (thumbprint %s) for app %s: %s", tp, c.clientID, summary)
		case e.AADSTS == 700016:
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("%s: app %s is not known in tenant %s: %s", who, c.clientID, c.tenantID, summary)
			e.hint = fmt.Sprintf("Check auth.client_id and the tenant_id; if tenant %s is not the tenant where the agent's app is registered, "+
				"the app must be multitenant (Authentication > Supported account types: accounts in any organizational directory) "+
				"and an administrator of tenant %s must grant it admin consent", c.tenantID, c.tenantID)
		case e.AADSTS == 7000229:
			// A multitenant app not consented in this tenant (or an app created through Graph
			// that never got its service principal): the tenant holds no service principal of it.
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("%s: app %s has no service principal in tenant %s (not consented there): %s", who, c.clientID, c.tenantID, summary)
			e.hint = fmt.Sprintf("An administrator of tenant %s must grant the agent's app admin consent there: open %s%s/adminconsent?client_id=%s "+
				"signed in as a Global Administrator of that tenant (or create its service principal there, `az ad sp create --id %s`, "+
				"and grant it the Graph application permission Application.ReadWrite.OwnedBy), then make it an owner of the target app",
				c.tenantID, c.authority, url.PathEscape(c.tenantID), c.clientID, c.clientID)
		case e.AADSTS == 90002:
			e.reason = certs.AuthFailed
			e.detail = fmt.Sprintf("%s: tenant %s not found: %s", who, c.tenantID, summary)
			e.hint = "Check tenant_id and the authority host"
		default:
			e.reason = certs.AuthFailed
			e.detail = who + ": " + summary
		}
	case errors.As(err, &af):
		// No answer: azidentity keeps only the text of MSAL's error (the network error is
		// not wrapped). Anything but a rejected TLS certificate is worth retrying.
		msg := strings.TrimPrefix(err.Error(), "ClientCertificateCredential: ")
		msg = strings.TrimPrefix(msg, "ClientAssertionCredential: ")
		msg = strings.Join(strings.Fields(trimTroubleshootLink(msg)), " ")
		if tlsVerifyText(msg) {
			e.reason = certs.AuthFailed
			e.detail = who + ": the token endpoint's TLS certificate is not trusted: " + msg
			e.hint = "Check the authority host and the trusted CA certificates"
		} else {
			e.transient = true
			e.reason = certs.GraphUnavailable
			e.detail = who + ": the token endpoint could not be reached: " + msg
		}
	case isTLSVerifyError(err):
		e.err = err
		e.reason = certs.AuthFailed
		e.detail = who + ": the token endpoint's TLS certificate is not trusted: " + err.Error()
	case isNetworkError(err):
		e.err = err
		e.transient = true
		e.reason = certs.GraphUnavailable
		e.detail = who + ": the token endpoint could not be reached: " + err.Error()
	default:
		e.err = err
		e.reason = certs.AuthFailed
		e.detail = who + ": " + trimTroubleshootLink(err.Error())
	}
	return e
}

// adminSignInError classifies a failure to sign the administrator in with method (the device
// code flow or the Azure CLI's login).
func (c *Client) adminSignInError(ctx context.Context, method string, err error) *Error {
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	e := &Error{SignIn: true, clientID: c.clientID, reason: certs.AuthFailed}
	who := "signing in as an administrator with " + method
	var af *azidentity.AuthenticationFailedError
	switch {
	case ctx.Err() != nil:
		e.err = ctx.Err()
		e.reason = certs.GraphUnavailable
		e.detail = who + ": " + ctx.Err().Error()
	case errors.As(err, &af) && af.RawResponse != nil:
		resp := af.RawResponse
		e.StatusCode = resp.StatusCode
		te := readTokenError(resp)
		e.Code, e.Message, e.AADSTS = te.Error, te.Description, te.aadsts()
		e.RequestID, e.ClientRequestID = te.TraceID, te.CorrelationID
		summary := te.summary()
		if summary == "" {
			summary = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
		}
		e.detail = who + ": " + summary
		switch {
		case te.Error == "temporarily_unavailable" || isTransientStatus(resp.StatusCode):
			e.transient = true
			e.reason = certs.GraphUnavailable
		case e.AADSTS == 70020 || te.Error == "expired_token":
			e.hint = "The code expired before it was entered: run setup again and enter the code within 15 minutes"
		case te.Error == "authorization_declined" || e.AADSTS == 65004:
			e.hint = "The sign-in was declined"
		case e.AADSTS == 65001 || te.Error == "consent_required":
			e.hint = "Consent to the permissions setup asks for (an administrator can consent for the organisation)"
		case e.AADSTS == 90002:
			e.hint = "Check --tenant"
		}
	case method == "the device code flow" && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), context.DeadlineExceeded.Error())):
		// MSAL stops polling when the code expires.
		e.err = err
		e.detail = who + ": the code expired before anyone entered it"
		e.hint = "Run setup again and enter the code within 15 minutes"
	default:
		msg := err.Error()
		for _, p := range []string{"DeviceCodeCredential: ", "AzureCLICredential: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		e.err = err
		e.detail = who + ": " + strings.Join(strings.Fields(trimTroubleshootLink(msg)), " ")
		if method == "the Azure CLI's login" {
			e.hint = "Sign the Azure CLI in first (`az login --tenant <tenant>`, as an administrator), or leave out --use-az to sign in with a device code"
		}
	}
	return e
}

// tokenError is the token endpoint's error body.
type tokenError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

func (t tokenError) aadsts() int {
	if len(t.Codes) > 0 {
		return t.Codes[0]
	}
	if m := aadstsRE.FindStringSubmatch(t.Description); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// summary is "invalid_client: AADSTS700027: ..." without Entra's trailing trace, correlation
// and timestamp lines (kept in the Error's fields).
func (t tokenError) summary() string {
	d := t.Description
	if i := strings.Index(d, " Trace ID:"); i >= 0 {
		d = d[:i]
	}
	d = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(d, "\r", " "), "\n", " "))
	switch {
	case t.Error != "" && d != "":
		return t.Error + ": " + d
	case t.Error != "":
		return t.Error
	}
	return d
}

// readTokenError decodes the token endpoint's error body (azcore keeps it readable).
func readTokenError(resp *http.Response) tokenError {
	var te tokenError
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return te
	}
	if json.Unmarshal(body, &te) != nil {
		return tokenError{}
	}
	return te
}

func trimTroubleshootLink(s string) string {
	if i := strings.Index(s, "To troubleshoot, visit"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(strings.TrimSpace(s), ".")
}

func isTransientStatus(s int) bool {
	switch s {
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isNetworkError reports whether err is a failure to reach the server or to get a whole
// answer: DNS, dial, reset, timeout, a connection closed early.
func isNetworkError(err error) bool {
	if err == nil {
		return false
	}
	var ne interface{ Timeout() bool }
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection reset", "connection refused", "broken pipe", "no such host",
		"server closed", "GOAWAY", "stream error", "EOF", "network is unreachable", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isTLSVerifyError reports whether err is a rejected server certificate: a configuration
// problem that retrying does not fix.
func isTLSVerifyError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &ve)
}

func tlsVerifyText(msg string) bool {
	return strings.Contains(msg, "x509:") || strings.Contains(msg, "tls: failed to verify")
}

// parseRetryAfter reads a Retry-After value: seconds (possibly fractional) or an HTTP date.
// It returns 0 for a missing, malformed, negative or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case math.IsNaN(secs) || secs <= 0:
			return 0
		case secs > maxRetryAfter.Seconds():
			return maxRetryAfter
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// maxRetryAfter caps a Retry-After value: a day is already far longer than any throttling
// Graph does; larger values are treated as this.
const maxRetryAfter = 24 * time.Hour

func mergeHeaders(h http.Header, rh *abstractions.ResponseHeaders) http.Header {
	if rh == nil {
		return h
	}
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, k := range rh.ListKeys() {
		if out.Get(k) == "" {
			for _, v := range rh.Get(k) {
				out.Add(k, v)
			}
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
