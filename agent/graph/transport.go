package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/aucloud/certagent/agent/certs"
)

// Transport settings. The dial, TLS and response-header timeouts bound each attempt; the
// operation's deadline (Config.Timeout) bounds the whole operation, retries included.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	// maxDrain is how much of a discarded answer's body is read so the connection can be
	// reused; a longer body closes the connection instead.
	maxDrain = 64 << 10
)

// Retry settings of the two SDKs (see the package documentation, "Retries").
var (
	// graphMaxRetries is kiota's retry count for 429, 503 and 504 (its default).
	graphMaxRetries = 3
	// graphRetryDelay is kiota's first delay when the answer has no Retry-After (its
	// default), doubled on each retry.
	graphRetryDelay = 3 * time.Second
	// tokenMaxRetries and tokenRetryDelay are azcore's retry settings for the token endpoint
	// (its defaults). Tests shorten the delay.
	tokenMaxRetries int32 = 3
	tokenRetryDelay       = 800 * time.Millisecond
)

// newBaseTransport returns the HTTP transport under both SDKs: it trusts roots (nil: the
// system's), honours the HTTPS_PROXY/NO_PROXY environment as corporate networks need, and
// bounds each phase of a request.
func newBaseTransport(roots *x509.CertPool, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
}

// newGraphHTTPClient returns the *http.Client the kiota adapter uses: the SDK's middleware
// in a fixed order, then the client's own last check, then base.
//
// kiota-http-go's GetDefaultMiddlewares returns its handlers in Go map order, which changes
// from run to run; the list here is the same handlers in a fixed order, with compression
// outside retry (as msgraph-sdk-design's CompressionHandler page asks) so that a retried
// PATCH resends the same compressed body (microsoft/kiota-http-go#183). msgraph-sdk-go-core's
// /me URL rewriting is left out: application requests never use /me.
func (c *Client) newGraphHTTPClient(base http.RoundTripper) *http.Client {
	opts := core.GraphClientOptions{GraphServiceLibraryVersion: sdkVersion()}
	middleware := []khttp.Middleware{
		core.NewGraphTelemetryHandler(&opts), // SdkVersion and client-request-id headers
		khttp.NewUserAgentHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewHeadersInspectionHandler(),
		khttp.NewRedirectHandler(),
		khttp.NewCompressionHandler(), // gzip request bodies; on 415, resend uncompressed
		khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{
			MaxRetries:   graphMaxRetries,
			DelaySeconds: int(graphRetryDelay / time.Second),
			ShouldRetry:  c.shouldRetry,
		}),
		attemptHandler{c: c},
	}
	return &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(base, middleware...),
		// Redirects are the redirect handler's job (as in kiota's default client).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// opState follows one operation through the middleware: the operation's name, for Observe,
// and what its last attempt got, for error classification. Attempts run one after the other
// on the caller's goroutine, so it needs no lock.
type opState struct {
	op       string
	attempts int
	last     *answer
	// noRetry lists statuses kiota must not retry for this operation.
	noRetry []int
}

// answer is what one attempt got: a status and headers, or an error.
type answer struct {
	status int
	header http.Header
	err    error
}

type opStateKey struct{}

func withOp(ctx context.Context, st *opState) context.Context {
	return context.WithValue(ctx, opStateKey{}, st)
}

func opFrom(ctx context.Context) *opState {
	st, _ := ctx.Value(opStateKey{}).(*opState)
	return st
}

// attemptHandler is the innermost middleware: every attempt, retries included, passes
// through it once. It refuses requests that would leave without a token or go anywhere but
// Graph, records the answer for error classification, and reports each attempt to Observe.
type attemptHandler struct{ c *Client }

func (h attemptHandler) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	c := h.c
	st := opFrom(req.Context())
	op := "graph"
	if st != nil {
		op = st.op
		st.attempts++
	}
	if !strings.EqualFold(req.URL.Scheme, c.graphURL.Scheme) || !strings.EqualFold(req.URL.Host, c.graphURL.Host) {
		c.observe(op, "refused")
		return nil, &Error{reason: certs.GraphError, clientID: c.clientID,
			detail: "refusing to send a request to " + req.URL.Scheme + "://" + req.URL.Host + ", which is not the configured Graph endpoint"}
	}
	if req.Header.Get("Authorization") == "" {
		// The SDK's authentication provider skips hosts outside its valid-hosts list without
		// an error; never let such a request reach the network.
		c.observe(op, "refused")
		return nil, &Error{reason: certs.GraphError, clientID: c.clientID,
			detail: "refusing to send a Graph request without an access token (host " + req.URL.Hostname() + " is not in the SDK's valid hosts)"}
	}
	resp, err := p.Next(req, i)
	a := &answer{err: err}
	if resp != nil {
		a.status, a.header = resp.StatusCode, resp.Header.Clone()
	}
	if st != nil {
		st.last = a
	}
	c.observe(op, outcome(a.status, err))
	return resp, err
}

// shouldRetry is kiota's ShouldRetry hook, consulted for a 429, 503 or 504 before the
// retry handler waits. It declines when the wait would not fit before the operation's
// deadline (the caller then gets the answer, with its Retry-After), and for statuses the
// operation must not retry. When it accepts, it closes the discarded answer's body (kiota
// does not) and waits out the fraction of a second that kiota drops from a fractional
// Retry-After.
func (c *Client) shouldRetry(_ time.Duration, retries int, req *http.Request, resp *http.Response) bool {
	ctx := req.Context()
	st := opFrom(ctx)
	if st != nil {
		for _, s := range st.noRetry {
			if resp.StatusCode == s {
				return false
			}
		}
	}
	ra := resp.Header.Get("Retry-After")
	wait := parseRetryAfter(ra, c.now())
	var frac time.Duration
	if secs, err := strconv.ParseFloat(strings.TrimSpace(ra), 64); err == nil && secs > 0 {
		// kiota waits time.Duration(secs) * time.Second: whole seconds only.
		frac = wait - time.Duration(int64(secs))*time.Second
	} else if ra == "" || wait == 0 {
		// kiota's own backoff: delay·2^retries plus up to a second of jitter.
		wait = graphRetryDelay<<retries + time.Second
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+time.Second {
		c.log.Debug("graph throttled; leaving the retry to the caller", "op", opName(st),
			"status", resp.StatusCode, "retry_after", wait)
		return false
	}
	if frac > 0 {
		t := time.NewTimer(frac)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	drain(resp)
	c.log.Debug("graph answered a transient status; retrying", "op", opName(st), "status", resp.StatusCode,
		"retry", retries+1, "retry_after", wait)
	return true
}

func opName(st *opState) string {
	if st == nil {
		return ""
	}
	return st.op
}

// drain reads what is left of a discarded answer (up to maxDrain) and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}

// outcome names the result of one HTTP attempt for Config.Observe.
func outcome(status int, err error) string {
	if err != nil {
		var te interface{ Timeout() bool }
		switch {
		case errors.Is(err, context.Canceled):
			return "canceled"
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
			return "timeout"
		case isTLSVerifyError(err):
			return "tls_error"
		}
		return "network"
	}
	switch {
	case status >= 200 && status < 300:
		return "ok"
	case status >= 300 && status < 400:
		return "redirect"
	case status == http.StatusTooManyRequests:
		return "throttled"
	case status == http.StatusBadRequest:
		return "bad_request"
	case status == http.StatusUnauthorized:
		return "auth_failed"
	case status == http.StatusForbidden:
		return "denied"
	case status == http.StatusNotFound:
		return "not_found"
	case status >= 500:
		return "server_error"
	}
	return "client_error"
}

// tokenTransport reports every request azidentity sends (OpenID discovery and token
// requests) to Observe as op "token".
type tokenTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	o := outcome(status, err)
	if status == http.StatusBadRequest || status == http.StatusUnauthorized {
		// The token endpoint refuses a credential with 400 or 401 (invalid_client...).
		o = "auth_failed"
	}
	t.c.observe(opToken, o)
	return resp, err
}
