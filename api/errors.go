package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// problemError is an error the handlers and middleware return to choose the response.
type problemError struct {
	p apitype.Problem
}

func (e *problemError) Error() string   { return e.p.Code + ": " + e.p.Detail }
func (e *problemError) StatusCode() int { return e.p.Status }

// newProblem returns an error that renders as a problem with status, code and detail.
func newProblem(status int, code, detail string) *problemError {
	return &problemError{p: apitype.Problem{Status: status, Code: code, Detail: detail}}
}

// titles gives each problem code its fixed title.
var titles = map[string]string{
	apitype.CodeInvalidRequest:       "Invalid request",
	apitype.CodeUnauthorized:         "Unauthorized",
	apitype.CodeForbidden:            "Forbidden",
	apitype.CodeNotFound:             "Not found",
	apitype.CodeMethodNotAllowed:     "Method not allowed",
	apitype.CodeInvalidState:         "Not allowed in the rotation's state",
	apitype.CodeTooLarge:             "Request body too large",
	apitype.CodeUnsupportedMediaType: "Unsupported media type",
	apitype.CodeRateLimited:          "Too many requests",
	apitype.CodeInternal:             "Internal error",
	apitype.CodeNotReady:             "Not ready",
	apitype.CodeUnavailable:          "Service unavailable",
	apitype.CodeRetireRefused:        "Retiring refused",
}

// title returns code's title; verdict codes share one.
func title(code string, status int) string {
	if t, ok := titles[code]; ok {
		return t
	}
	if status == http.StatusUnprocessableEntity {
		return "Certificate refused"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// codeForStatus is the problem code of a status that came without one.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return apitype.CodeInvalidRequest
	case http.StatusUnauthorized:
		return apitype.CodeUnauthorized
	case http.StatusForbidden:
		return apitype.CodeForbidden
	case http.StatusNotFound:
		return apitype.CodeNotFound
	case http.StatusMethodNotAllowed:
		return apitype.CodeMethodNotAllowed
	case http.StatusConflict:
		return apitype.CodeInvalidState
	case http.StatusRequestEntityTooLarge:
		return apitype.CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return apitype.CodeUnsupportedMediaType
	case http.StatusTooManyRequests:
		return apitype.CodeRateLimited
	case http.StatusServiceUnavailable:
		return apitype.CodeUnavailable
	}
	if status >= 500 {
		return apitype.CodeInternal
	}
	return apitype.CodeInvalidRequest
}

// handleError is echo's HTTPErrorHandler: the one place where an error becomes a status, a
// code and a problem+json body.
func (s *server) handleError(err error, c echo.Context) {
	r := c.Request()
	if c.Response().Committed {
		s.log.Error("api error after the response started", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	p, retryAfter := s.problemFor(err, c)
	p.Type = apitype.ProblemTypePrefix + p.Code
	p.Title = title(p.Code, p.Status)
	h := c.Response().Header()
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	if p.Status == http.StatusMethodNotAllowed {
		if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok {
			h.Set(echo.HeaderAllow, withoutOptions(allow))
		}
	}
	if r.Method == http.MethodHead {
		c.Response().WriteHeader(p.Status)
		return
	}
	if werr := writeJSON(c, p.Status, "application/problem+json", p); werr != nil {
		s.log.Debug("writing problem response", "path", r.URL.Path, "err", werr)
	}
}

// problemFor maps err to a problem (without type and title) and a Retry-After.
func (s *server) problemFor(err error, c echo.Context) (apitype.Problem, time.Duration) {
	r := c.Request()
	var (
		pe  *problemError
		he  *echo.HTTPError
		se  *rotation.StateError
		ue  *health.UnavailableError
		nre *health.NotReadyError
		tse *health.TooSoonError
		bse *health.BusyError
		nfe *health.NotFoundError
		re  *rotation.RetireError
	)
	switch {
	case errors.As(err, &pe):
		return pe.p, 0
	case errors.As(err, &nre):
		return notReady(nre).(*problemError).p, 0
	case errors.As(err, &ue):
		code := ue.Problem.Code
		if code == "" {
			code = apitype.CodeUnavailable
		}
		if ue.Err != nil {
			s.log.Warn("api: unavailable", "method", r.Method, "path", r.URL.Path, "code", code, "err", ue.Err)
		}
		return apitype.Problem{Status: http.StatusServiceUnavailable, Code: code, Detail: ue.Problem.Message}, 0
	case errors.As(err, &tse):
		return apitype.Problem{Status: http.StatusTooManyRequests, Code: apitype.CodeRateLimited, Detail: tse.Error()}, tse.Wait
	case errors.As(err, &bse):
		return apitype.Problem{Status: http.StatusConflict, Code: apitype.CodeInvalidState, Detail: bse.Error()}, 0
	case errors.As(err, &nfe):
		return apitype.Problem{Status: http.StatusNotFound, Code: apitype.CodeNotFound, Detail: nfe.Error()}, 0
	case errors.As(err, &he):
		return s.httpErrorProblem(he, c), 0
	case errors.As(err, &re):
		return apitype.Problem{Status: http.StatusConflict, Code: apitype.CodeRetireRefused, Detail: re.Error()}, 0
	case errors.As(err, &se):
		return apitype.Problem{Status: http.StatusConflict, Code: apitype.CodeInvalidState,
			Detail: se.Error(), State: string(se.State)}, 0
	case errors.Is(err, rotation.ErrInvalidState):
		return apitype.Problem{Status: http.StatusConflict, Code: apitype.CodeInvalidState,
			Detail: "the rotation's state does not allow this action"}, 0
	case errors.Is(err, rotation.ErrNotFound):
		detail := "no such rotation"
		if id := rotationID(c); id != "" {
			detail = fmt.Sprintf("no rotation has the id %q", id)
		}
		return apitype.Problem{Status: http.StatusNotFound, Code: apitype.CodeNotFound, Detail: detail}, 0
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		return apitype.Problem{Status: http.StatusServiceUnavailable, Code: apitype.CodeUnavailable,
			Detail: "the request was canceled"}, 0
	}
	s.log.Error("api internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	return apitype.Problem{Status: http.StatusInternalServerError, Code: apitype.CodeInternal,
		Detail: "the agent failed to answer; its log tells why"}, 0
}

// httpErrorProblem maps echo's own errors: the router's 404 and 405, and any other it
// raises.
func (s *server) httpErrorProblem(he *echo.HTTPError, c echo.Context) apitype.Problem {
	r := c.Request()
	status := he.Code
	switch status {
	case http.StatusNotFound:
		return apitype.Problem{Status: status, Code: apitype.CodeNotFound,
			Detail: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)}
	case http.StatusMethodNotAllowed:
		detail := fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)
		if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok {
			detail += "; use " + withoutOptions(allow)
		}
		return apitype.Problem{Status: status, Code: apitype.CodeMethodNotAllowed, Detail: detail}
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.Error("api internal error", "method", r.Method, "path", r.URL.Path, "err", he)
		return apitype.Problem{Status: status, Code: codeForStatus(status), Detail: "the agent failed to answer; its log tells why"}
	}
	return apitype.Problem{Status: status, Code: codeForStatus(status), Detail: http.StatusText(status)}
}

// withoutOptions drops OPTIONS from echo's Allow list (the API answers OPTIONS with 405).
func withoutOptions(allow string) string {
	var keep []string
	for m := range strings.SplitSeq(allow, ",") {
		m = strings.TrimSpace(m)
		if m != "" && m != http.MethodOptions {
			keep = append(keep, m)
		}
	}
	return strings.Join(keep, ", ")
}

// notReady is the 503 answer of /readyz: the agent is starting, or a *health.NotReadyError
// (or a part's *health.UnavailableError) says what keeps it from working.
func notReady(err error) error {
	detail := "the agent is not ready yet"
	var (
		nre *health.NotReadyError
		ue  *health.UnavailableError
	)
	switch {
	case errors.As(err, &nre):
		detail = nre.Error()
	case errors.As(err, &ue):
		detail = ue.Problem.Message
	}
	return newProblem(http.StatusServiceUnavailable, apitype.CodeNotReady, detail)
}

// rejectedProblem is the 422 answer to a certificate the policy refused.
func rejectedProblem(reason certs.Reason, cert *certs.Certificate) error {
	p := newProblem(http.StatusUnprocessableEntity, string(reason.Code), reason.Message)
	if cert != nil {
		c := *cert
		p.p.Certificate = &c
	}
	return p
}
