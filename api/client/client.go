// Package client is a Go client of certagent's local REST API, used by `certagent status` and
// the other commands that talk to the running agent.
//
// Every method returns apitype values; an answer that is not a success is a *ProblemError
// carrying the API's problem code, and an agent that cannot be reached is an
// *UnreachableError.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/api/apitype"
)

// actorHeader is api.ActorHeader (the client does not import the server).
const actorHeader = "X-CertAgent-Actor"

// maxResponseSize bounds how much of a response the client reads.
const maxResponseSize = 16 << 20

// Client calls one agent's API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	actor string
}

// Option changes a Client's defaults.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (default: a client with a 2
// minute timeout, which leaves room for a certificates refresh).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithActor names the person or tool on whose behalf the client acts; the agent records
// mutating calls as "api:<name>".
func WithActor(name string) Option { return func(c *Client) { c.actor = name } }

// New returns a client of the API at baseURL (for example "http://127.0.0.1:8471") that
// authenticates with token.
func New(baseURL string, token []byte, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parsing the API address %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("parsing the API address %q: want http://host:port", baseURL)
	}
	tok := strings.TrimSpace(string(token))
	if tok == "" {
		return nil, errors.New("creating the API client: the token is empty")
	}
	c := &Client{base: u, token: tok, hc: &http.Client{Timeout: 2 * time.Minute}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// ProblemError is an answer of the API that is not a success (an RFC 7807 problem).
type ProblemError struct {
	// Status is the HTTP status.
	Status int
	// Code is the problem's stable code: one of apitype's Code* constants or, on a refused
	// submission, a certificate verdict code.
	Code   string
	Type   string
	Title  string
	Detail string
	// Certificate holds the facts of a refused certificate, when the agent sent them.
	Certificate *certs.Certificate
	// State is the rotation's state on an invalid_state problem.
	State string
	// RetryAfter is how long the agent asked to wait (429), or zero.
	RetryAfter time.Duration
}

func (e *ProblemError) Error() string {
	if e.Detail == "" {
		return e.Code
	}
	return e.Code + ": " + e.Detail
}

// IsCode reports whether err is or wraps a *ProblemError with the code.
func IsCode(err error, code string) bool {
	var pe *ProblemError
	return errors.As(err, &pe) && pe.Code == code
}

// UnreachableError means no answer came from the agent: it is not running, or listens
// elsewhere.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the agent at %s (is it running?): %v", e.URL, e.Err)
}

// Unwrap returns Err.
func (e *UnreachableError) Unwrap() error { return e.Err }

// request is one call.
type request struct {
	op     string // for error messages: "getting the status"
	method string
	path   string
	query  url.Values
	body   []byte
	ctype  string
	// accept overrides the Accept header (default JSON).
	accept string
	header http.Header
}

// do sends req and decodes a success into out (unless out is nil). It returns the status.
func (c *Client) do(ctx context.Context, req request, out any) (int, error) {
	status, body, _, err := c.send(ctx, req)
	if err != nil {
		return status, err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return status, fmt.Errorf("%s: decoding the answer: %w", req.op, err)
		}
	}
	return status, nil
}

// send sends req and returns a success's status, body and content type, or an error.
func (c *Client) send(ctx context.Context, req request) (int, []byte, string, error) {
	// req.path is escaped (ids go through url.PathEscape).
	u := *c.base
	u.RawPath = c.base.EscapedPath() + req.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return 0, nil, "", fmt.Errorf("%s: %w", req.op, err)
	}
	u.Path = p
	u.RawQuery = req.query.Encode()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return 0, nil, "", fmt.Errorf("%s: %w", req.op, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Authorization", "Bearer "+c.token)
	accept := req.accept
	if accept == "" {
		accept = "application/json, application/problem+json"
	}
	hr.Header.Set("Accept", accept)
	hr.Header.Set("User-Agent", "certagent-client")
	if req.ctype != "" {
		hr.Header.Set("Content-Type", req.ctype)
	}
	if c.actor != "" {
		hr.Header.Set(actorHeader, c.actor)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, "", fmt.Errorf("%s: %w", req.op, ctx.Err())
		}
		return 0, nil, "", fmt.Errorf("%s: %w", req.op, &UnreachableError{URL: c.base.String(), Err: err})
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return resp.StatusCode, nil, "", fmt.Errorf("%s: reading the answer: %w", req.op, err)
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, data, ct, nil
	}
	return resp.StatusCode, nil, ct, fmt.Errorf("%s: %w", req.op, problemOf(resp, ct, data))
}

// problemOf reads an error answer: a problem+json body, or whatever came.
func problemOf(resp *http.Response, ct string, data []byte) *ProblemError {
	pe := &ProblemError{Status: resp.StatusCode}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			pe.RetryAfter = time.Duration(n) * time.Second
		}
	}
	mt, _, _ := mime.ParseMediaType(ct)
	var p apitype.Problem
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(data, &p) == nil && p.Code != "" {
		pe.Code, pe.Type, pe.Title, pe.Detail = p.Code, p.Type, p.Title, p.Detail
		pe.Certificate, pe.State = p.Certificate, p.State
		return pe
	}
	// Not the agent's problem format (a proxy, another program on the port): keep a short,
	// printable excerpt.
	pe.Code = "http_" + strconv.Itoa(resp.StatusCode)
	pe.Title = http.StatusText(resp.StatusCode)
	excerpt := strings.TrimSpace(strings.ToValidUTF8(string(data), ""))
	if len(excerpt) > 200 {
		excerpt = excerpt[:200] + "..."
	}
	pe.Detail = resp.Status
	if excerpt != "" {
		pe.Detail += ": " + excerpt
	}
	return pe
}

// Live calls GET /livez.
func (c *Client) Live(ctx context.Context) (apitype.Health, error) {
	var h apitype.Health
	_, err := c.do(ctx, request{op: "checking liveness", method: http.MethodGet, path: "/livez"}, &h)
	return h, err
}

// Ready calls GET /readyz: nil when the agent is ready, a *ProblemError with code
// "not_ready" when it is not.
func (c *Client) Ready(ctx context.Context) (apitype.Health, error) {
	var h apitype.Health
	_, err := c.do(ctx, request{op: "checking readiness", method: http.MethodGet, path: "/readyz"}, &h)
	return h, err
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) {
	var s apitype.Status
	_, err := c.do(ctx, request{op: "getting the status", method: http.MethodGet, path: "/api/v1/status"}, &s)
	return s, err
}

// Certificates returns the target app's certificates; with refresh the agent reads them from
// Graph first (rate-limited: a *ProblemError "rate_limited" with RetryAfter).
func (c *Client) Certificates(ctx context.Context, refresh bool) (apitype.CertificateList, error) {
	return c.CertificatesOf(ctx, "", refresh)
}

// CertificatesOf is Certificates for the target named target ("" every target).
func (c *Client) CertificatesOf(ctx context.Context, target string, refresh bool) (apitype.CertificateList, error) {
	q := url.Values{}
	if refresh {
		q.Set("refresh", "true")
	}
	if target != "" {
		q.Set("target", target)
	}
	var l apitype.CertificateList
	_, err := c.do(ctx, request{op: "listing certificates", method: http.MethodGet, path: "/api/v1/certificates", query: q}, &l)
	return l, err
}

// Rotations returns the rotations, oldest first; state, when not empty, keeps those in that
// state.
func (c *Client) Rotations(ctx context.Context, state string) ([]apitype.Rotation, error) {
	return c.RotationsOf(ctx, "", state)
}

// RotationsOf is Rotations of the target named target ("" every target).
func (c *Client) RotationsOf(ctx context.Context, target, state string) ([]apitype.Rotation, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if target != "" {
		q.Set("target", target)
	}
	var l apitype.RotationList
	_, err := c.do(ctx, request{op: "listing rotations", method: http.MethodGet, path: "/api/v1/rotations", query: q}, &l)
	return l.Items, err
}

// Rotation returns one rotation (a *ProblemError "not_found" when there is none).
func (c *Client) Rotation(ctx context.Context, id string) (apitype.Rotation, error) {
	var r apitype.Rotation
	_, err := c.do(ctx, request{op: "getting rotation " + id, method: http.MethodGet, path: "/api/v1/rotations/" + url.PathEscape(id)}, &r)
	return r, err
}

// Submit sends a certificate (DER, PEM or base64, as read from its file) with its file name
// (may be empty). created is true for a new rotation, false when the agent already had one
// for the same certificate. A refusal by the policy is a *ProblemError whose Code is the
// verdict code and whose Certificate holds the facts.
func (c *Client) Submit(ctx context.Context, data []byte, fileName string) (r apitype.Rotation, created bool, err error) {
	return c.SubmitTo(ctx, data, fileName, "")
}

// SubmitTo is Submit to the target named target ("" the one whose policy names it).
func (c *Client) SubmitTo(ctx context.Context, data []byte, fileName, target string) (r apitype.Rotation, created bool, err error) {
	req := request{op: "submitting the certificate", method: http.MethodPost, path: "/api/v1/rotations",
		body: data, ctype: "application/octet-stream", header: http.Header{}}
	if target != "" {
		req.query = url.Values{"target": {target}}
	}
	if fileName != "" {
		req.header.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fileName}))
	}
	status, err := c.do(ctx, req, &r)
	return r, status == http.StatusCreated, err
}

// SubmitSigned is SubmitTo with the provider's detached signature of the certificate file
// (the bytes of name.cer.sig, binary or base64). It sends JSON: the certificate as it is when
// it is UTF-8 text (PEM, bare base64), otherwise as the base64 of its bytes (DER), so that
// the agent checks the signature over the file's exact bytes.
func (c *Client) SubmitSigned(ctx context.Context, data, signature []byte, fileName, target string) (r apitype.Rotation, created bool, err error) {
	req := apitype.SubmitRequest{FileName: fileName, Target: target, Certificate: textOrBase64(data), Signature: textOrBase64(signature)}
	b, err := json.Marshal(req)
	if err != nil {
		return r, false, fmt.Errorf("submitting the certificate: %w", err)
	}
	status, err := c.do(ctx, request{op: "submitting the certificate", method: http.MethodPost, path: "/api/v1/rotations",
		body: b, ctype: "application/json"}, &r)
	return r, status == http.StatusCreated, err
}

// textOrBase64 returns b as a string when it is printable UTF-8 text, and its base64
// otherwise: how the API's JSON carries a file.
func textOrBase64(b []byte) string {
	if len(b) > 0 && utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f
	}) {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Retire removes the certificate keyID from the app of the target named target ("" the one
// whose app holds it) under the agent's retire guards, and returns what was removed. A
// guard's refusal is a *ProblemError "retire_refused".
func (c *Client) Retire(ctx context.Context, target, keyID, note string) (apitype.Certificate, error) {
	req := request{op: "retiring certificate " + keyID, method: http.MethodPost,
		path: "/api/v1/certificates/" + url.PathEscape(keyID) + "/retire"}
	if target != "" {
		req.query = url.Values{"target": {target}}
	}
	if note != "" {
		b, err := json.Marshal(apitype.RetireRequest{Note: note})
		if err != nil {
			return apitype.Certificate{}, fmt.Errorf("%s: %w", req.op, err)
		}
		req.body, req.ctype = b, "application/json"
	}
	var cert apitype.Certificate
	_, err := c.do(ctx, req, &cert)
	return cert, err
}

// Approve approves a rotation waiting for approval.
func (c *Client) Approve(ctx context.Context, id, note string) (apitype.Rotation, error) {
	return c.act(ctx, id, "approve", note)
}

// Reject rejects a rotation waiting for approval, or a failed one.
func (c *Client) Reject(ctx context.Context, id, note string) (apitype.Rotation, error) {
	return c.act(ctx, id, "reject", note)
}

// Confirm records that the provider was told about an applied rotation.
func (c *Client) Confirm(ctx context.Context, id, note string) (apitype.Rotation, error) {
	return c.act(ctx, id, "confirm", note)
}

// Retry puts a failed rotation back to applying.
func (c *Client) Retry(ctx context.Context, id, note string) (apitype.Rotation, error) {
	return c.act(ctx, id, "retry", note)
}

// act posts a person's action. A state that does not allow it is a *ProblemError
// "invalid_state" whose State tells the current state.
func (c *Client) act(ctx context.Context, id, action, note string) (apitype.Rotation, error) {
	verbs := map[string]string{"approve": "approving", "reject": "rejecting", "confirm": "confirming", "retry": "retrying"}
	req := request{op: verbs[action] + " rotation " + id, method: http.MethodPost,
		path: "/api/v1/rotations/" + url.PathEscape(id) + "/" + action}
	if note != "" {
		b, err := json.Marshal(apitype.ActionRequest{Note: note})
		if err != nil {
			return apitype.Rotation{}, fmt.Errorf("%s: %w", req.op, err)
		}
		req.body, req.ctype = b, "application/json"
	}
	var r apitype.Rotation
	_, err := c.do(ctx, req, &r)
	return r, err
}

// Scan asks the agent to rescan the drop folder now.
func (c *Client) Scan(ctx context.Context) (apitype.Accepted, error) {
	var a apitype.Accepted
	_, err := c.do(ctx, request{op: "asking for a rescan", method: http.MethodPost, path: "/api/v1/scan"}, &a)
	return a, err
}

// Credential returns the agent's own sign-in credential.
func (c *Client) Credential(ctx context.Context) (apitype.Credential, error) {
	var cr apitype.Credential
	_, err := c.do(ctx, request{op: "getting the agent credential", method: http.MethodGet, path: "/api/v1/credential"}, &cr)
	return cr, err
}

// RotateCredential asks the agent to renew its own credential now.
func (c *Client) RotateCredential(ctx context.Context) (apitype.Accepted, error) {
	var a apitype.Accepted
	_, err := c.do(ctx, request{op: "renewing the agent credential", method: http.MethodPost, path: "/api/v1/credential/rotate"}, &a)
	return a, err
}

// Audit returns one page of the audit log, newest first: entries before the cursor before
// (0: from the newest), at most limit of them (0: the agent's default). Pass the page's Next
// as before to get the following page.
func (c *Client) Audit(ctx context.Context, before uint64, limit int) (apitype.AuditList, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l apitype.AuditList
	_, err := c.do(ctx, request{op: "reading the audit log", method: http.MethodGet, path: "/api/v1/audit", query: q}, &l)
	return l, err
}

// OpenAPI returns the API's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	_, body, _, err := c.send(ctx, request{op: "getting the OpenAPI document", method: http.MethodGet, path: "/api/v1/openapi.json"})
	return body, err
}

// Metrics returns the agent's metrics in Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	_, body, _, err := c.send(ctx, request{op: "getting metrics", method: http.MethodGet, path: "/metrics", accept: "text/plain"})
	return body, err
}
