package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/aucloud/certagent/api/apitype"
)

// ActorHeader names the caller of a mutating request; the PowerShell module sends the
// Windows user name in it. The actor recorded is then "api:<name>".
const ActorHeader = "X-CertAgent-Actor"

// maxActorLen is how many characters of ActorHeader are kept.
const maxActorLen = 64

// guard runs before routing, on every request: it sets the headers every response carries,
// refuses what a browser could send (403), then requires the token everywhere but the
// public routes (401). Browser checks come first so that /livez is covered too.
func (s *server) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if why, detail := s.browserCheck(r); why != "" {
			s.refused(r, http.StatusForbidden, why)
			return newProblem(http.StatusForbidden, apitype.CodeForbidden, detail)
		}
		if s.public[echo.GetPath(r)] {
			return next(c)
		}
		if why, detail := s.tokenCheck(r); why != "" {
			v := `Bearer realm="certagent"`
			if why != "no token" {
				v += `, error="invalid_token"`
			}
			h.Set("WWW-Authenticate", v)
			s.refused(r, http.StatusUnauthorized, why)
			return newProblem(http.StatusUnauthorized, apitype.CodeUnauthorized, detail)
		}
		return next(c)
	}
}

// refused logs a request the guard turned away. It never logs the token.
func (s *server) refused(r *http.Request, status int, why string) {
	s.log.Warn("api request refused", "method", r.Method, "path", r.URL.Path, "status", status,
		"reason", why, "remote_addr", r.RemoteAddr)
}

// browserCheck returns why (for the log) and a detail (for the client) when r could come from
// a web page: a Host that is not a loopback name defeats DNS rebinding, and Origin, Referer
// or a Sec-Fetch-Site other than "none" mark a request a page made. It returns "" when r is
// fine.
func (s *server) browserCheck(r *http.Request) (why, detail string) {
	switch {
	case !s.validHost(r.Host):
		return "host not loopback", "the Host header must name the loopback interface (localhost, 127.0.0.1 or [::1]); the API does not answer other names"
	case len(r.Header.Values("Origin")) > 0:
		return "origin header", "requests carrying an Origin header (from web pages) are refused"
	case len(r.Header.Values("Referer")) > 0:
		return "referer header", "requests carrying a Referer header (from web pages) are refused"
	case r.Header.Get("Sec-Fetch-Site") != "" && r.Header.Get("Sec-Fetch-Site") != "none":
		return "sec-fetch-site header", "requests made by web pages are refused"
	}
	return "", ""
}

// validHost reports whether hostport, a Host header, names an accepted host, with or
// without a port.
func (s *server) validHost(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if !validPort(port) {
			return false
		}
		host = h
	} else if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return s.hosts[strings.ToLower(host)]
}

// validPort reports whether p is empty or up to five digits.
func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// tokenCheck returns why (for the log) and a detail (for the client) when r lacks the right
// bearer token, or "" when it carries it. The comparison takes the same time whatever the
// token sent.
func (s *server) tokenCheck(r *http.Request) (why, detail string) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "no token", "this route needs the header \"Authorization: Bearer <token>\"; the token is in the agent's api.token file"
	}
	const wrong = "the bearer token is wrong; it is the content of the agent's api.token file"
	if len(values) > 1 {
		return "several authorization headers", wrong
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "not a bearer token", "this route needs the header \"Authorization: Bearer <token>\""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
		return "wrong token", wrong
	}
	return "", ""
}

// strictQuery refuses query parameters the route does not take, repeated parameters and a
// malformed query string (400).
func (s *server) strictQuery(allowed []string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw := c.Request().URL.RawQuery
			if raw == "" {
				return next(c)
			}
			vals, err := url.ParseQuery(raw)
			if err != nil {
				return invalidf("the query string is malformed")
			}
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if !slices.Contains(allowed, k) {
					if len(allowed) == 0 {
						return invalidf("unknown query parameter %q: this route takes none", k)
					}
					return invalidf("unknown query parameter %q: this route takes %s", k, strings.Join(allowed, ", "))
				}
				if len(vals[k]) > 1 {
					return invalidf("query parameter %q is given more than once", k)
				}
			}
			return next(c)
		}
	}
}

// logMutation logs a mutating call once its response is written: method, path, status and
// actor. Errors are rendered here (through the error handler) so that the status is known.
func (s *server) logMutation(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// The cached status is dropped when the answer is about to be written: after the
		// call has done its work, before the caller can read the answer and ask for the
		// status. Even a refused or failed call may have changed something.
		c.Response().Before(func() { s.statusCache.writes.Add(1) })
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		status := c.Response().Status
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.String("actor", actorOf(r)),
		}
		if id := rotationID(c); id != "" {
			attrs = append(attrs, slog.String("rotation_id", id))
		}
		s.log.LogAttrs(r.Context(), level, "api call", attrs...)
		return nil
	}
}

// noOptions answers OPTIONS on a known path with 405, like any other method the path does not
// take: the API serves no browser, so it has no preflight to answer.
func noOptions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodOptions {
			if _, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok {
				return echo.ErrMethodNotAllowed
			}
		}
		return next(c)
	}
}

// actorOf returns "api", or "api:<name>" when r names its caller in ActorHeader. The name
// keeps printable characters only, at most maxActorLen of them.
func actorOf(r *http.Request) string {
	name := sanitizeActor(r.Header.Get(ActorHeader))
	if name == "" {
		return "api"
	}
	return "api:" + name
}

// sanitizeActor keeps the printable characters of s, trimmed, at most maxActorLen of them.
func sanitizeActor(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			continue
		}
		if n == maxActorLen {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// invalidf returns a 400 invalid_request problem.
func invalidf(format string, args ...any) error {
	return newProblem(http.StatusBadRequest, apitype.CodeInvalidRequest, fmt.Sprintf(format, args...))
}
