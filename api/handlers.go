package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

//go:embed openapi.json
var openAPIDoc []byte

// Limits on what callers may attach to a request.
const (
	// maxNoteLen is how many characters a note may have.
	maxNoteLen = 1000
	// maxFileNameLen is how many characters a submitted file name may have.
	maxFileNameLen = 255
	// defaultAuditLimit and maxAuditLimit bound a page of the audit log.
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func (s *server) getLivez(c echo.Context) error {
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, apitype.Health{Status: "ok"})
}

func (s *server) getReadyz(c echo.Context) error {
	err := s.status.Ready(c.Request().Context())
	if err == nil {
		return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, apitype.Health{Status: "ready"})
	}
	// Debug: probes poll /readyz, and the agent logs the cause where it happens.
	s.log.Debug("not ready", "err", err)
	return notReady(err)
}

func (s *server) getMetrics(c echo.Context) error {
	if s.metrics == nil {
		return newProblem(http.StatusNotFound, apitype.CodeNotFound, "metrics are not enabled")
	}
	s.metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *server) getOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}

// getStatus writes the status (statusCache says when it is the one made for an earlier
// request).
func (s *server) getStatus(c echo.Context) error {
	body, err := s.statusCache.get(c.Request().Context(), s.shapedStatus)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

// shapedStatus returns the status in the shape the contract gives, whatever the agent's
// parts filled in: every state counted and no other, problems most urgent first ([] when
// none), times in UTC. This is the one place the status is shaped.
func (s *server) shapedStatus(ctx context.Context) apitype.Status {
	st := s.status.Status(ctx)
	if st.Version == "" {
		st.Version = s.version
	}
	counts := make(map[string]int, len(rotation.States))
	for _, state := range rotation.States {
		counts[string(state)] = st.Rotations[string(state)]
	}
	st.Rotations = counts
	st.Problems = append([]apitype.StatusProblem{}, st.Problems...)
	apitype.SortProblems(st.Problems)
	st.StartedAt = st.StartedAt.UTC()
	st.Certificates.NextExpiry = utcPtr(st.Certificates.NextExpiry)
	st.LastSync.At = utcPtr(st.LastSync.At)
	st.LastSync.LastSuccess = utcPtr(st.LastSync.LastSuccess)
	if st.Credential != nil {
		cred := *st.Credential
		cred.NotAfter = cred.NotAfter.UTC()
		st.Credential = &cred
	}
	targets := make([]apitype.TargetStatus, len(st.Targets))
	for i, t := range st.Targets {
		tc := make(map[string]int, len(rotation.States))
		for _, state := range rotation.States {
			tc[string(state)] = t.Rotations[string(state)]
		}
		t.Rotations = tc
		t.Certificates.NextExpiry = utcPtr(t.Certificates.NextExpiry)
		t.LastSync.At = utcPtr(t.LastSync.At)
		t.LastSync.LastSuccess = utcPtr(t.LastSync.LastSuccess)
		targets[i] = t
	}
	st.Targets = targets
	return st
}

func (s *server) getCertificates(c echo.Context) error {
	refresh := false
	if v := c.QueryParam("refresh"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalidf("refresh: want true or false, got %q", v)
		}
		refresh = b
	}
	list, err := s.certs.Certificates(c.Request().Context(), c.QueryParam("target"), refresh)
	if err != nil {
		return err
	}
	if list.Items == nil {
		list.Items = []apitype.Certificate{}
	}
	for i := range list.Items {
		it := &list.Items[i]
		it.StartDateTime = it.StartDateTime.UTC()
		it.EndDateTime = it.EndDateTime.UTC()
	}
	list.SyncedAt = utcPtr(list.SyncedAt)
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, list)
}

func (s *server) listRotations(c echo.Context) error {
	var f rotation.Filter
	if v := c.QueryParam("state"); v != "" {
		f.State = rotation.State(v)
		if !f.State.Valid() {
			return invalidf("state: unknown state %q; want one of %s", v, stateNames())
		}
	}
	rs, err := s.rotations.Rotations(c.Request().Context(), f, c.QueryParam("target"))
	if err != nil {
		return err
	}
	list := apitype.RotationList{Items: make([]apitype.Rotation, 0, len(rs))}
	for _, r := range rs {
		list.Items = append(list.Items, toRotation(r))
	}
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, list)
}

func (s *server) getRotation(c echo.Context) error {
	r, err := s.rotations.Rotation(c.Request().Context(), rotationID(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, toRotation(r))
}

// Media types POST /api/v1/rotations takes as the certificate itself.
var rawCertTypes = []string{
	"application/pkix-cert", "application/x-x509-ca-cert", "application/x-x509-user-cert",
	"application/octet-stream", "application/x-pem-file", "text/plain",
}

func (s *server) submitCertificate(c echo.Context) error {
	r := c.Request()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	mt, err := mediaType(r)
	if err != nil {
		return err
	}
	sub := Submission{Actor: actorOf(r), Target: c.QueryParam("target")}
	switch {
	case isJSON(mt):
		var req apitype.SubmitRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		if strings.TrimSpace(req.Certificate) == "" {
			return invalidf("certificate: required: the certificate as PEM or as the base64 of its DER")
		}
		if req.Target != "" {
			if sub.Target != "" && sub.Target != req.Target {
				return invalidf("target: the query names %q and the body %q", sub.Target, req.Target)
			}
			sub.Target = req.Target
		}
		sub.Data = []byte(req.Certificate)
		if req.Signature != "" {
			sub.Signature = []byte(req.Signature)
		}
		if sub.FileName, err = cleanFileName(req.FileName); err != nil {
			return err
		}
	case mt == "" || slices.Contains(rawCertTypes, mt):
		if len(bytes.TrimSpace(body)) == 0 {
			return invalidf("the request body is empty: send the certificate (DER, PEM or base64) or JSON {\"certificate\": ...}")
		}
		sub.Data = body
		if cd := r.Header.Get("Content-Disposition"); cd != "" {
			_, params, err := mime.ParseMediaType(cd)
			if err != nil {
				return invalidf("Content-Disposition: malformed")
			}
			if sub.FileName, err = cleanFileName(params["filename"]); err != nil {
				return err
			}
		}
	default:
		return newProblem(http.StatusUnsupportedMediaType, apitype.CodeUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q: send application/json, or the certificate as one of %s", mt, strings.Join(rawCertTypes, ", ")))
	}
	res, err := s.rotations.Submit(r.Context(), sub)
	if err != nil {
		return err
	}
	if res.Rejected != nil {
		return rejectedProblem(*res.Rejected, res.Certificate)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		c.Response().Header().Set(echo.HeaderLocation, "/api/v1/rotations/"+res.Rotation.ID)
	}
	return writeJSON(c, status, echo.MIMEApplicationJSON, toRotation(res.Rotation))
}

// execute returns the handler of a person's command on a rotation (approveRotation,
// rejectRotation, confirmRotation, retryRotation).
func execute(cmd rotation.Command) func(s *server, c echo.Context) error {
	return func(s *server, c echo.Context) error {
		r := c.Request()
		var req apitype.ActionRequest
		if err := readNoteBody(c, &req.Note); err != nil {
			return err
		}
		rot, err := s.rotations.Execute(r.Context(), rotationID(c), cmd, actorOf(r), req.Note)
		if err != nil {
			return err
		}
		return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, toRotation(rot))
	}
}

// readNoteBody reads the optional JSON body {"note": "..."} of a person's command (on a
// rotation, or retiring a certificate) into note: no body, or JSON with a note that passes
// checkNote.
func readNoteBody(c echo.Context, note *string) error {
	body, err := readBody(c)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	mt, err := mediaType(c.Request())
	if err != nil {
		return err
	}
	if mt != "" && !isJSON(mt) {
		return newProblem(http.StatusUnsupportedMediaType, apitype.CodeUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q: send application/json {\"note\": \"...\"} or no body", mt))
	}
	var req apitype.ActionRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if err := checkNote(req.Note); err != nil {
		return err
	}
	*note = req.Note
	return nil
}

func (s *server) scanDropFolder(c echo.Context) error {
	if err := drainEmptyBody(c); err != nil {
		return err
	}
	if err := s.drop.Scan(c.Request().Context()); err != nil {
		return err
	}
	return writeJSON(c, http.StatusAccepted, echo.MIMEApplicationJSON, apitype.Accepted{Message: "drop folder rescan queued"})
}

func (s *server) getCredential(c echo.Context) error {
	cred, err := s.cred.Credential(c.Request().Context())
	if err != nil {
		return err
	}
	cred.NotBefore = cred.NotBefore.UTC()
	cred.NotAfter = cred.NotAfter.UTC()
	cred.NextRenewal = cred.NextRenewal.UTC()
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, cred)
}

func (s *server) rotateCredential(c echo.Context) error {
	if err := drainEmptyBody(c); err != nil {
		return err
	}
	if err := s.cred.RotateCredential(c.Request().Context(), actorOf(c.Request())); err != nil {
		return err
	}
	return writeJSON(c, http.StatusAccepted, echo.MIMEApplicationJSON, apitype.Accepted{Message: "renewal of the agent's credential started"})
}

func (s *server) retireCertificate(c echo.Context) error {
	r := c.Request()
	var req apitype.RetireRequest
	if err := readNoteBody(c, &req.Note); err != nil {
		return err
	}
	cert, err := s.certs.Retire(r.Context(), c.QueryParam("target"), pathParam(c, "keyId"), actorOf(r), req.Note)
	if err != nil {
		return err
	}
	cert.StartDateTime, cert.EndDateTime = cert.StartDateTime.UTC(), cert.EndDateTime.UTC()
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, cert)
}

func (s *server) getAudit(c echo.Context) error {
	q := rotation.AuditQuery{Limit: defaultAuditLimit}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return invalidf("limit: want a whole number from 1 to %d, got %q", maxAuditLimit, v)
		}
		q.Limit = n
	}
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 {
			return invalidf("before: want a positive whole number (a previous page's next), got %q", v)
		}
		q.Before = n
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page
	entries, err := s.audit.Audit(c.Request().Context(), q)
	if err != nil {
		return err
	}
	list := apitype.AuditList{Items: make([]apitype.AuditEntry, 0, min(len(entries), limit))}
	if len(entries) > limit {
		entries = entries[:limit]
		list.Next = entries[limit-1].Seq
	}
	for _, e := range entries {
		list.Items = append(list.Items, toAuditEntry(e))
	}
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, list)
}

// rotationID returns the path's {id}, unescaped.
func rotationID(c echo.Context) string { return pathParam(c, "id") }

// pathParam returns the path parameter name, unescaped (echo leaves path parameters escaped
// when the path has escapes).
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// writeJSON writes v as compact JSON (plus a newline) with status and content type ct.
// Compact: indenting took half of a status request's time, and people read the API through
// `certagent status`, the PowerShell module or jq.
//
// It encodes into a pooled buffer: a fresh one per response (and the copy to add the newline)
// was a good part of a status request's garbage. Encoder.Encode writes what json.Marshal
// does, HTML escaped too, plus the newline.
func writeJSON(c echo.Context, status int, ct string, v any) error {
	buf := jsonBufs.Get().(*bytes.Buffer)
	defer putJSONBuf(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	// The length is known: without it net/http chunks any body over 2 KB (the status is
	// larger), which costs both ends.
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	return c.Blob(status, ct, buf.Bytes())
}

// jsonBufs holds writeJSON's buffers.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledJSON is the largest buffer kept for reuse, so that one long list does not pin
// its memory in the pool.
const maxPooledJSON = 64 << 10

func putJSONBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooledJSON {
		return
	}
	b.Reset()
	jsonBufs.Put(b)
}

// readBody reads the request body, at most MaxBodySize bytes (413 beyond).
func readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	tooLarge := newProblem(http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
		fmt.Sprintf("the request body is larger than %d bytes", MaxBodySize))
	if r.ContentLength > MaxBodySize {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, invalidf("reading the request body failed")
	}
	return body, nil
}

// drainEmptyBody refuses a body on routes that take none (anything but whitespace or an
// empty JSON object).
func drainEmptyBody(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if b := bytes.TrimSpace(body); len(b) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil || len(m) > 0 {
			return invalidf("this route takes no request body")
		}
	}
	return nil
}

// mediaType returns the request's media type, lower case, or "" when it has none.
func mediaType(r *http.Request) (string, error) {
	ct := r.Header.Get(echo.HeaderContentType)
	if ct == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", newProblem(http.StatusUnsupportedMediaType, apitype.CodeUnsupportedMediaType, "Content-Type: malformed")
	}
	return mt, nil
}

// isJSON reports whether mt is application/json or a +json type.
func isJSON(mt string) bool {
	return mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json")
}

// decodeJSON decodes one JSON value from body into v, strictly: unknown fields, wrong types
// and data after the value are refused (400).
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("the request body holds more than one JSON value")
	}
	return nil
}

// describeJSONError turns a decoding error into a message for the caller.
func describeJSONError(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return "the request body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the request body ends inside a JSON value"
	case errors.As(err, &syn):
		return fmt.Sprintf("the request body is not valid JSON (at byte %d): %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("the request body must be a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("%s: want %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "the request body is not valid JSON"
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// cleanFileName keeps the base name of a submitted file name (a full path is cut at its last
// slash or backslash) and checks it is printable and not too long.
func cleanFileName(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", nil
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "", invalidf("fileName: must hold printable characters only")
	case utf8.RuneCountInString(name) > maxFileNameLen:
		return "", invalidf("fileName: longer than %d characters", maxFileNameLen)
	case name == "." || name == "..":
		return "", invalidf("fileName: %q is not a file name", name)
	}
	return name, nil
}

// checkNote refuses notes that are too long or hold control characters.
func checkNote(note string) error {
	switch {
	case utf8.RuneCountInString(note) > maxNoteLen:
		return invalidf("note: longer than %d characters", maxNoteLen)
	case strings.IndexFunc(note, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return invalidf("note: must hold printable characters only (no line breaks or tabs)")
	}
	return nil
}

// stateNames lists the rotation states for error messages.
func stateNames() string {
	names := make([]string, len(rotation.States))
	for i, s := range rotation.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
