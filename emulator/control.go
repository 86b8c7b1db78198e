package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/emulator/provider"
)

// UntilCleared as Fault.Times applies a fault to every matching request until the faults
// are cleared.
const UntilCleared = -1

// Fault makes the emulator misbehave for matching requests: answer an error status, wait
// before answering, drop the connection, or serve stale reads. Control routes
// (/_emulator/...) are never faulted.
type Fault struct {
	// Method matches the request method ("" any).
	Method string `json:"method,omitempty"`
	// Path matches requests whose path starts with it ("" any), for example
	// "/v1.0/applications" or "/" + tenantID + "/oauth2".
	Path string `json:"path,omitempty"`
	// Status answers with this status instead of serving: Graph's error shape on Graph
	// routes (429 TooManyRequests, 503 ServiceUnavailable...), Entra's on the token endpoint.
	Status int `json:"status,omitempty"`
	// Code and Message override the error code and message of a Status fault.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// RetryAfter sets the Retry-After header of a Status fault, in seconds (may be
	// fractional).
	RetryAfter float64 `json:"retryAfter,omitempty"`
	// Times is how many matching requests the fault applies to: 0 means 1, UntilCleared
	// means every one. In JSON an absent "times" means 1 and 0 means until cleared.
	Times int `json:"times"`
	// DelayMs waits this long before answering (then serves normally, or applies Status or
	// Reset).
	DelayMs int `json:"delayMs,omitempty"`
	// Reset drops the connection without an answer (a TCP reset on HTTP/1.1, a stream reset
	// on HTTP/2).
	Reset bool `json:"reset,omitempty"`
	// Stale makes matching reads of an application serve its version before the last write
	// (a read is counted only when a previous version exists).
	Stale bool `json:"stale,omitempty"`
	// ResetAfter serves the request (a write takes effect) and then drops the connection
	// instead of sending the answer: the client cannot tell whether its write landed.
	ResetAfter bool `json:"resetAfter,omitempty"`
}

// UnmarshalJSON reads a fault as POST /_emulator/faults takes it: an absent "times" means 1
// and 0 means until cleared.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var v struct {
		plain
		Times *int `json:"times"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*f = Fault(v.plain)
	switch {
	case v.Times == nil:
		f.Times = 1
	case *v.Times == 0:
		f.Times = UntilCleared
	case *v.Times < 0:
		return fmt.Errorf("times %d must not be negative", *v.Times)
	default:
		f.Times = *v.Times
	}
	return nil
}

// MarshalJSON writes a fault the way UnmarshalJSON reads it.
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	p := plain(f)
	if p.Times == UntilCleared {
		p.Times = 0
	}
	return json.Marshal(p)
}

func (f Fault) validate() error {
	switch {
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("status %d is not an error status (400-599)", f.Status)
	case f.Status != 0 && f.Reset:
		return errors.New("status and reset exclude each other")
	case f.Stale && (f.Status != 0 || f.Reset || f.DelayMs != 0 || f.ResetAfter):
		return errors.New("stale combines with nothing else")
	case f.ResetAfter && (f.Status != 0 || f.Reset):
		return errors.New("resetAfter excludes status and reset")
	case f.Status == 0 && !f.Reset && !f.Stale && !f.ResetAfter && f.DelayMs == 0:
		return errors.New("the fault does nothing: give status, delayMs, reset, resetAfter or stale")
	case f.DelayMs < 0 || f.DelayMs > 10*60*1000:
		return fmt.Errorf("delayMs %d is out of range (0 to 600000)", f.DelayMs)
	case f.RetryAfter < 0:
		return fmt.Errorf("retryAfter %g must not be negative", f.RetryAfter)
	case f.Times < UntilCleared:
		return fmt.Errorf("times %d must not be negative", f.Times)
	case f.Path != "" && !strings.HasPrefix(f.Path, "/"):
		return fmt.Errorf("path %q must start with /", f.Path)
	}
	return nil
}

func (f Fault) String() string {
	var parts []string
	if f.DelayMs > 0 {
		parts = append(parts, fmt.Sprintf("delay %dms", f.DelayMs))
	}
	if f.Status != 0 {
		s := "status " + strconv.Itoa(f.Status)
		if f.RetryAfter > 0 {
			s += " retry-after " + formatRetryAfter(f.RetryAfter)
		}
		parts = append(parts, s)
	}
	if f.Reset {
		parts = append(parts, "reset")
	}
	if f.ResetAfter {
		parts = append(parts, "reset after serving")
	}
	if f.Stale {
		parts = append(parts, "stale")
	}
	return strings.Join(parts, ", ")
}

type faultEntry struct {
	f    Fault
	left int // UntilCleared or the number of requests still to fault
}

// AddFaults queues faults. Each applies to the next Times matching requests; when several
// match, the one added first applies.
func (e *Emulator) AddFaults(faults ...Fault) error {
	for i := range faults {
		if faults[i].Times == 0 {
			faults[i].Times = 1
		}
		if err := faults[i].validate(); err != nil {
			return fmt.Errorf("adding fault %d: %w", i, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range faults {
		e.faults = append(e.faults, &faultEntry{f: f, left: f.Times})
	}
	return nil
}

// ClearFaults drops every queued fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

// Faults returns the queued faults, Times holding what is left of each.
func (e *Emulator) Faults() []Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Fault{}
	for _, fe := range e.faults {
		f := fe.f
		f.Times = fe.left
		out = append(out, f)
	}
	return out
}

func (fe *faultEntry) matches(r *http.Request) bool {
	return (fe.f.Method == "" || strings.EqualFold(fe.f.Method, r.Method)) && strings.HasPrefix(r.URL.Path, fe.f.Path)
}

// consumeLocked counts one use of the fault at index i. The caller holds e.mu.
func (e *Emulator) consumeLocked(i int) {
	fe := e.faults[i]
	if fe.left == UntilCleared {
		return
	}
	fe.left--
	if fe.left <= 0 {
		e.faults = append(e.faults[:i], e.faults[i+1:]...)
	}
}

// takeFault returns the first non-stale fault matching r, counting its use.
func (e *Emulator) takeFault(r *http.Request) (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, fe := range e.faults {
		if !fe.f.Stale && fe.matches(r) {
			f := fe.f
			e.consumeLocked(i)
			return f, true
		}
	}
	return Fault{}, false
}

// takeStaleFaultLocked reports whether a stale fault matches r, counting its use. The caller
// holds e.mu and calls it only when a previous version exists.
func (e *Emulator) takeStaleFaultLocked(r *http.Request) bool {
	for i, fe := range e.faults {
		if fe.f.Stale && fe.matches(r) {
			e.consumeLocked(i)
			return true
		}
	}
	return false
}

// RequestRecord is one answered request in the request log.
type RequestRecord struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	// Status is the answer's status, 0 when the connection was reset.
	Status     int     `json:"status"`
	DurationMs float64 `json:"durationMs"`
	// AppID is the client: the token's appid on Graph, client_id on the token endpoint.
	AppID           string `json:"appId,omitempty"`
	ContentEncoding string `json:"contentEncoding,omitempty"`
	// ErrorCode is the error answered: Graph's code, or "AADSTS<n>" on the token endpoint.
	ErrorCode       string `json:"errorCode,omitempty"`
	Fault           string `json:"fault,omitempty"`
	RequestID       string `json:"requestId"`
	ClientRequestID string `json:"clientRequestId,omitempty"`
	UserAgent       string `json:"userAgent,omitempty"`
}

// Requests returns the log of answered requests, oldest first (control routes are not
// logged; the log keeps the last 10,000).
func (e *Emulator) Requests() []RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]RequestRecord{}, e.requests...)
}

// ClearRequests empties the request log.
func (e *Emulator) ClearRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = nil
}

// reqInfo travels with a request so handlers can fill in the log record.
type reqInfo struct {
	requestID       string
	clientRequestID string
	appID           string
	errorCode       string
	fault           string
	// replica is the read replica serving the request (-1 until one is picked).
	replica int
}

// graphClientRequestID is the client-request-id Graph reports: the client's, or the
// request id when the client sent none.
func (ri *reqInfo) graphClientRequestID() string {
	if ri.clientRequestID != "" {
		return ri.clientRequestID
	}
	return ri.requestID
}

type reqInfoKey struct{}

func infoOf(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{replica: -1}
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// serveHTTP is the root handler: control routes, then faults, then the emulated services,
// then the request log.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_emulator" || strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveControl(w, r)
		return
	}
	start := time.Now()
	ri := &reqInfo{requestID: newGUID(), clientRequestID: r.Header.Get("client-request-id"), replica: -1}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
	rec := &statusRecorder{ResponseWriter: w}
	e.beginRequest(ri.requestID, r, start)
	defer e.endRequest(ri.requestID)

	if f, ok := e.takeFault(r); ok {
		ri.fault = f.String()
		if f.DelayMs > 0 {
			t := time.NewTimer(time.Duration(f.DelayMs) * time.Millisecond)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			case <-e.ctx.Done():
				t.Stop()
			}
		}
		switch {
		case f.Reset:
			e.record(r, ri, 0, start)
			resetConnection(w, r)
			return
		case f.ResetAfter:
			// Served in full (a write lands), then the answer is lost with the connection.
			e.route(&discardWriter{header: http.Header{}}, r)
			e.record(r, ri, 0, start)
			resetConnection(w, r)
			return
		case f.Status != 0:
			e.writeFaultStatus(rec, r, f)
			e.record(r, ri, rec.status, start)
			return
		}
	}
	e.route(rec, r)
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	e.record(r, ri, rec.status, start)
}

// discardWriter is a ResponseWriter that keeps nothing: the answer of a request served
// before its connection is dropped (Fault.ResetAfter).
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// InFlightRequest is a request the emulator is serving now (faults' delays included).
type InFlightRequest struct {
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Since  time.Time `json:"since"`
}

// InFlight returns the requests being served now, oldest first (control routes are not
// counted). A test that kills a client at a random instant asks it what the client was
// waiting for.
func (e *Emulator) InFlight() []InFlightRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]InFlightRequest, 0, len(e.inFlight))
	for _, r := range e.inFlight {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b InFlightRequest) int { return a.Since.Compare(b.Since) })
	return out
}

func (e *Emulator) beginRequest(id string, r *http.Request, start time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inFlight == nil {
		e.inFlight = map[string]InFlightRequest{}
	}
	e.inFlight[id] = InFlightRequest{Method: r.Method, Path: r.URL.Path, Since: start}
}

func (e *Emulator) endRequest(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.inFlight, id)
}

// resetConnection drops the connection: on HTTP/1.1 it closes the TCP connection with
// SO_LINGER 0 (the peer sees a reset); on HTTP/2 it resets the stream.
func resetConnection(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			nc := conn
			if tc, ok := conn.(*tls.Conn); ok {
				nc = tc.NetConn()
			}
			if tcp, ok := nc.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = nc.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (e *Emulator) record(r *http.Request, ri *reqInfo, status int, start time.Time) {
	d := time.Since(start)
	rec := RequestRecord{
		Time:            e.cfg.now().UTC(),
		Method:          r.Method,
		Path:            r.URL.Path,
		Query:           r.URL.RawQuery,
		Status:          status,
		DurationMs:      float64(d.Microseconds()) / 1000,
		AppID:           ri.appID,
		ContentEncoding: r.Header.Get("Content-Encoding"),
		ErrorCode:       ri.errorCode,
		Fault:           ri.fault,
		RequestID:       ri.requestID,
		ClientRequestID: ri.clientRequestID,
		UserAgent:       r.UserAgent(),
	}
	e.mu.Lock()
	e.requests = append(e.requests, rec)
	if len(e.requests) > maxRequestLog {
		e.requests = append([]RequestRecord{}, e.requests[len(e.requests)-maxRequestLog:]...)
	}
	e.mu.Unlock()
	e.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"duration", d, "app_id", ri.appID, "error_code", ri.errorCode, "fault", ri.fault)
}

// formatRetryAfter writes seconds as Retry-After carries them: whole numbers without a
// fraction.
func formatRetryAfter(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64)
}

// writeFaultStatus answers a status fault in the shape of the service the path belongs to.
func (e *Emulator) writeFaultStatus(w http.ResponseWriter, r *http.Request, f Fault) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", formatRetryAfter(f.RetryAfter))
	}
	if isEntraPath(r.URL.Path) {
		code, desc, errName := 90033, "A transient error has occurred. Please try again.", "temporarily_unavailable"
		if f.Status < 500 && f.Status != http.StatusTooManyRequests {
			code, desc, errName = 90000, "The request was refused by an injected fault.", "invalid_request"
		}
		if f.Message != "" {
			desc = f.Message
		}
		if f.Code != "" {
			errName = f.Code
		}
		e.writeEntraError(w, r, entraError{status: f.Status, err: errName, code: code, desc: desc})
		return
	}
	code, msg := graphCodeForStatus(f.Status)
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		msg = f.Message
	}
	e.writeGraphError(w, r, f.Status, code, msg)
}

// graphCodeForStatus gives the code and message Graph answers a status with.
func graphCodeForStatus(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest", "The request is invalid."
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token validation failure."
	case http.StatusForbidden:
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "The resource was not found."
	case http.StatusConflict:
		return "Conflict", "The request conflicts with the current state of the resource."
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Too many requests, please retry after some time."
	case http.StatusInternalServerError:
		return "InternalServerError", "An internal server error occurred."
	case http.StatusBadGateway:
		return "BadGateway", "The service is unreachable."
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable", "The service is temporarily unavailable. Please retry."
	case http.StatusGatewayTimeout:
		return "GatewayTimeout", "The request timed out."
	}
	return "UnknownError", http.StatusText(status)
}

// serveControl serves /_emulator/...: no token, loopback callers only.
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		writeControlError(w, http.StatusForbidden, "control routes answer loopback callers only")
		return
	}
	switch r.URL.Path {
	case "/_emulator/state":
		if r.Method != http.MethodGet {
			writeControlError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		writeJSON(w, http.StatusOK, e.State())
	case "/_emulator/demo":
		if r.Method != http.MethodGet {
			writeControlError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		info, ok := e.DemoInfo()
		if !ok {
			writeControlError(w, http.StatusNotFound, "this emulator holds no demo tenant")
			return
		}
		writeJSON(w, http.StatusOK, info)
	case "/_emulator/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"items": e.Faults()})
		case http.MethodPost:
			faults, err := decodeFaults(r.Body)
			if err != nil {
				writeControlError(w, http.StatusBadRequest, err.Error())
				return
			}
			if err := e.AddFaults(faults...); err != nil {
				writeControlError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"items": e.Faults()})
		case http.MethodDelete:
			e.ClearFaults()
			w.WriteHeader(http.StatusNoContent)
		default:
			writeControlError(w, http.StatusMethodNotAllowed, "use GET, POST or DELETE")
		}
	case "/_emulator/requests":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"items": e.Requests()})
		case http.MethodDelete:
			e.ClearRequests()
			w.WriteHeader(http.StatusNoContent)
		default:
			writeControlError(w, http.StatusMethodNotAllowed, "use GET or DELETE")
		}
	case "/_emulator/settings":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, e.Settings())
		case http.MethodPut:
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				writeControlError(w, http.StatusBadRequest, "reading settings: "+err.Error())
				return
			}
			s := e.Settings()
			if err := json.Unmarshal(b, &s); err != nil {
				writeControlError(w, http.StatusBadRequest, "decoding settings: "+err.Error())
				return
			}
			if err := e.SetSettings(s); err != nil {
				writeControlError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, e.Settings())
		default:
			writeControlError(w, http.StatusMethodNotAllowed, "use GET or PUT")
		}
	case "/_emulator/settle":
		if r.Method != http.MethodPost {
			writeControlError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		e.Settle()
		w.WriteHeader(http.StatusNoContent)
	case "/_emulator/devicecode", "/_emulator/devicecode/approve":
		e.serveControlDeviceCode(w, r)
	case "/_emulator/devicelogin":
		e.serveDeviceLogin(w, r)
	default:
		if rest, ok := strings.CutPrefix(r.URL.Path, "/_emulator/applications/"); ok {
			e.serveControlKeyCredentials(w, r, rest)
			return
		}
		if strings.HasPrefix(r.URL.Path, provider.ControlPrefix) {
			if e.cfg.provider == nil {
				writeControlError(w, http.StatusNotFound, "this emulator plays no provider (certagent emulator --provider)")
				return
			}
			e.cfg.provider.ServeControl(w, r)
			return
		}
		writeControlError(w, http.StatusNotFound, "no control route "+r.URL.Path+" (try /_emulator/state, /_emulator/faults, /_emulator/requests, /_emulator/demo, /_emulator/settings, /_emulator/settle, /_emulator/devicecode, /_emulator/applications/{appId}/keyCredentials)")
	}
}

// portalKeyCredential is the body of POST /_emulator/applications/{appId}/keyCredentials:
// what a person uploads in the portal.
type portalKeyCredential struct {
	// Certificate is PEM, or base64 of the DER.
	Certificate   string `json:"certificate"`
	DisplayName   string `json:"displayName"`
	KeyID         string `json:"keyId"`
	StartDateTime string `json:"startDateTime"`
	EndDateTime   string `json:"endDateTime"`
}

// serveControlKeyCredentials serves POST /_emulator/applications/{appId}/keyCredentials and
// DELETE /_emulator/applications/{appId}/keyCredentials/{keyId}: an application's
// certificates changed the way a person in the portal changes them.
func (e *Emulator) serveControlKeyCredentials(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[1] == "keyCredentials":
		if r.Method != http.MethodPost {
			writeControlError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		var in portalKeyCredential
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeControlError(w, http.StatusBadRequest, "decoding key credential: "+err.Error())
			return
		}
		sk := SeedKeyCredential{Certificate: []byte(in.Certificate), DisplayName: in.DisplayName, KeyID: in.KeyID}
		for _, d := range []struct {
			name, in string
			out      *time.Time
		}{{"startDateTime", in.StartDateTime, &sk.StartDateTime}, {"endDateTime", in.EndDateTime, &sk.EndDateTime}} {
			if d.in == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, d.in)
			if err != nil {
				writeControlError(w, http.StatusBadRequest, d.name+": "+err.Error())
				return
			}
			*d.out = t
		}
		v, err := e.PortalAddKeyCredential(parts[0], sk)
		if err != nil {
			writeControlError(w, controlStatus(err), err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, v)
	case len(parts) == 3 && parts[1] == "keyCredentials":
		if r.Method != http.MethodDelete {
			writeControlError(w, http.StatusMethodNotAllowed, "use DELETE")
			return
		}
		if err := e.RemoveKeyCredential(parts[0], parts[2]); err != nil {
			writeControlError(w, controlStatus(err), err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeControlError(w, http.StatusNotFound, "no control route "+r.URL.Path+" (try /_emulator/applications/{appId}/keyCredentials)")
	}
}

// controlStatus is the status of a control route's error.
func controlStatus(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrObjectSizeExceeded):
		return http.StatusBadRequest
	}
	var pe *persistError
	if errors.As(err, &pe) {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// decodeFaults reads a JSON array of faults, or a single fault.
func decodeFaults(body io.Reader) ([]Fault, error) {
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading faults: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var f Fault
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("decoding fault: %w", err)
		}
		return []Fault{f}, nil
	}
	var fs []Fault
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("decoding faults (want a JSON array of faults): %w", err)
	}
	return fs, nil
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeControlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": http.StatusText(status), "message": msg}})
}

// writeJSON writes v with one Write call (headers and body leave together).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
