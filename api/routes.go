package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aucloud/certagent/agent/rotation"
)

// route is one entry of the API: what serves it and how it is guarded.
type route struct {
	method string
	// path is in echo's syntax (":id"); the OpenAPI document writes "{id}".
	path string
	// operationID names the operation in openapi.json (and the PowerShell module's calls);
	// the handler has the same name.
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
	{method: http.MethodGet, path: "/api/v1/audit", operationID: "getAudit", handler: (*server).getAudit, query: []string{"before", "limit"}},
	{method: http.MethodGet, path: "/api/v1/certificates", operationID: "getCertificates", handler: (*server).getCertificates, query: []string{"refresh", "target"}},
	{method: http.MethodPost, path: "/api/v1/certificates/:keyId/retire", operationID: "retireCertificate", handler: (*server).retireCertificate, query: []string{"target"}, mutating: true},
	{method: http.MethodGet, path: "/api/v1/credential", operationID: "getCredential", handler: (*server).getCredential},
	{method: http.MethodPost, path: "/api/v1/credential/rotate", operationID: "rotateCredential", handler: (*server).rotateCredential, mutating: true},
	{method: http.MethodGet, path: "/api/v1/openapi.json", operationID: "getOpenAPI", handler: (*server).getOpenAPI},
	{method: http.MethodGet, path: "/api/v1/rotations", operationID: "listRotations", handler: (*server).listRotations, query: []string{"state", "target"}},
	{method: http.MethodPost, path: "/api/v1/rotations", operationID: "submitCertificate", handler: (*server).submitCertificate, query: []string{"target"}, mutating: true},
	{method: http.MethodGet, path: "/api/v1/rotations/:id", operationID: "getRotation", handler: (*server).getRotation},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/approve", operationID: "approveRotation", handler: execute(rotation.CommandApprove), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/confirm", operationID: "confirmRotation", handler: execute(rotation.CommandConfirm), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/reject", operationID: "rejectRotation", handler: execute(rotation.CommandReject), mutating: true},
	{method: http.MethodPost, path: "/api/v1/rotations/:id/retry", operationID: "retryRotation", handler: execute(rotation.CommandRetry), mutating: true},
	{method: http.MethodPost, path: "/api/v1/scan", operationID: "scanDropFolder", handler: (*server).scanDropFolder, mutating: true},
	{method: http.MethodGet, path: "/api/v1/status", operationID: "getStatus", handler: (*server).getStatus},
	{method: http.MethodGet, path: "/livez", operationID: "getLivez", handler: (*server).getLivez, public: true},
	{method: http.MethodGet, path: "/metrics", operationID: "getMetrics", handler: (*server).getMetrics},
	{method: http.MethodGet, path: "/readyz", operationID: "getReadyz", handler: (*server).getReadyz, public: true},
}
