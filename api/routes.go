package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// route is one entry of the API: what serves it and how it is guarded.
type route struct {
	method string
	// path is in echo's syntax (":id"); the OpenAPI document writes "{id}".
	path string
	// operationID names the operation in openapi.json (and the PowerShell module's calls).
	operationID string
	handler     func(s *server, c echo.Context) error
	// query lists the query parameters the route accepts; any other is a 400.
	query []string
	// public routes need no token (the browser checks still apply).
	public bool
	// mutating routes change state: they are logged.
	mutating bool
}

// routes is every route of the API, sorted by path, then method. Keep it sorted
// (TestRoutesSorted) and in step with openapi.json (TestOpenAPIRoutes).
var routes = []route{
	{method: http.MethodGet, path: "/api/v1/audit", operationID: "getAudit", handler: (*server).audit, query: []string{"before", "limit"}},
	{method: http.MethodGet, path: "/api/v1/certificates", operationID: "getCertificates", handler: (*server).certificates, query: []string{"refresh"}},
	{method: http.MethodGet, path: "/api/v1/credential", operationID: "getCredential", handler: (*server).credential},
	{method: http.MethodPost, path: "/api/v1/credential/rotate", operationID: "rotateCredential", handler: (*server).rotateCredential, mutating: true},
	{method: http.MethodGet, path: "/api/v1/openapi.json", operationID: "getOpenAPI", handler: (*server).openAPI},
	{method: http.MethodGet, path: "/api/v1/rotations", operationID: "listRotations", handler: (*server).rotations, query: []string{"state"}},
	{method: http.MethodPost, path: "/api/v1/rotations", operationID: "submitCertificate", handler: (*server).submit, mutating: true},
	{method: http.MethodGet, path: "/api/v1/rotations/:id", operationID: "getRotation", handler: (*server).rotation},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/approve", operationID: "approveRotation", handler: act(ActionApprove), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/confirm", operationID: "confirmRotation", handler: act(ActionConfirm), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/reject", operationID: "rejectRotation", handler: act(ActionReject), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/retry", operationID: "retryRotation", handler: act(ActionRetry), mutating: true},
	{method: http.MethodPost, path: "/api/v1/scan", operationID: "scanDropFolder", handler: (*server).scan, mutating: true},
	{method: http.MethodGet, path: "/api/v1/status", operationID: "getStatus", handler: (*server).status},
	{method: http.MethodGet, path: "/livez", operationID: "getLivez", handler: (*server).livez, public: true},
	{method: http.MethodGet, path: "/metrics", operationID: "getMetrics", handler: (*server).serveMetrics},
	{method: http.MethodGet, path: "/readyz", operationID: "getReadyz", handler: (*server).readyz, public: true},
}
