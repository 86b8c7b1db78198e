package graph_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/internal/certtest"
)

// TestReplaceBody checks the PATCH body the SDK writes for Replace: only keyCredentials
// (with Graph's @odata.type), every entry in order, key null when absent, dates with their
// full precision, empty fields left out.
func TestReplaceBody(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	c := certtest.New(now, certtest.CommonName("body"))
	creds := []certs.KeyCredential{
		{
			KeyID: "AAAAAAAA-0000-4000-8000-000000000001", Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify,
			DisplayName: `kept "as read"`, CustomKeyIdentifier: []byte("0123456789abcdefghij"),
			StartDateTime: time.Date(2025, 1, 2, 3, 4, 5, 123456700, time.UTC),
			EndDateTime:   time.Date(2027, 1, 2, 3, 4, 5, 0, time.FixedZone("AEST", 10*3600)),
		},
		{KeyID: "aaaaaaaa-0000-4000-8000-000000000002", Type: certs.KeyTypeX509Cert, Usage: certs.KeyUsageVerify, Key: c.DER},
		{KeyID: "aaaaaaaa-0000-4000-8000-000000000003"},
	}
	b, err := graph.ReplaceBody(creds)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, b)
	}
	if len(body) != 2 || string(body["@odata.type"]) != `"#microsoft.graph.application"` {
		t.Errorf("body properties = %s, want only @odata.type and keyCredentials", b)
	}
	var list []map[string]any
	if err := json.Unmarshal(body["keyCredentials"], &list); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{
			"keyId": "aaaaaaaa-0000-4000-8000-000000000001", "type": "AsymmetricX509Cert", "usage": "Verify",
			"displayName": `kept "as read"`, "key": nil,
			"customKeyIdentifier": base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghij")),
			"startDateTime":       "2025-01-02T03:04:05.1234567Z", "endDateTime": "2027-01-01T17:04:05Z",
		},
		{
			"keyId": "aaaaaaaa-0000-4000-8000-000000000002", "type": "AsymmetricX509Cert", "usage": "Verify",
			"key": base64.StdEncoding.EncodeToString(c.DER),
		},
		{"keyId": "aaaaaaaa-0000-4000-8000-000000000003", "key": nil},
	}
	if len(list) != len(want) {
		t.Fatalf("%d credentials in the body, want %d:\n%s", len(list), len(want), b)
	}
	for i := range want {
		if len(list[i]) != len(want[i]) {
			t.Errorf("credential %d has properties %v, want %v", i, keys(list[i]), keys(want[i]))
		}
		for k, v := range want[i] {
			got, ok := list[i][k]
			if !ok || got != v {
				t.Errorf("credential %d: %s = %v (present %v), want %v", i, k, got, ok, v)
			}
		}
	}
	if !bytes.Contains(b, []byte(`"key":null`)) {
		t.Errorf("no literal \"key\":null in %s", b)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRefusesRequestsWithoutToken: the client's last middleware never lets a request leave
// without an Authorization header, or for another host.
func TestRefusesRequestsWithoutToken(t *testing.T) {
	env := newEnv(t)
	var o observations
	c := env.client(t, func(cfg *graph.Config) { cfg.Observe = o.observe })
	hc := c.GraphHTTPClient()
	for _, tt := range []struct {
		name, url string
		header    http.Header
	}{
		{"NoAuthorization", env.e.URL() + "/v1.0/applications", nil},
		{"OtherHost", strings.Replace(env.e.URL(), "127.0.0.1", "localhost", 1) + "/v1.0/applications", http.Header{"Authorization": {"Bearer x"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), "GET", tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request sent: status %d", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), "refusing") {
				t.Errorf("error %q does not say the client refused", err)
			}
		})
	}
	if n := len(env.e.Requests()); n != 0 {
		t.Errorf("%d requests reached the emulator", n)
	}
	if o.count("graph/refused") != 2 {
		t.Errorf("observed %q, want 2 graph/refused", o.list())
	}
}

func TestNewValidates(t *testing.T) {
	good := graph.Config{
		TenantID:      "contoso.onmicrosoft.com",
		ClientID:      "2f6d8a0e-6a3c-4c5e-9a55-1d0a7f1b2c3d",
		AuthorityHost: "https://login.microsoftonline.com/",
		GraphURL:      "https://graph.microsoft.com",
		Credential:    &source{},
	}
	tests := []struct {
		name string
		mod  func(*graph.Config)
		want string // "" for success
	}{
		{"Good", func(*graph.Config) {}, ""},
		{"GraphURLWithVersion", func(c *graph.Config) { c.GraphURL = "https://graph.microsoft.com/v1.0/" }, ""},
		{"AuthorityWithoutSlash", func(c *graph.Config) { c.AuthorityHost = "https://login.microsoftonline.us" }, ""},
		{"NoTenant", func(c *graph.Config) { c.TenantID = "" }, "tenant id is required"},
		{"BadTenant", func(c *graph.Config) { c.TenantID = "contoso/../x" }, "tenant id"},
		{"ClientNotGUID", func(c *graph.Config) { c.ClientID = "certagent" }, "client id"},
		{"NoAuthority", func(c *graph.Config) { c.AuthorityHost = "" }, "authority host is required"},
		{"HTTPAuthority", func(c *graph.Config) { c.AuthorityHost = "http://login.microsoftonline.com/" }, "must be https"},
		{"HTTPGraph", func(c *graph.Config) { c.GraphURL = "http://graph.microsoft.com" }, "must be https"},
		{"GraphNoHost", func(c *graph.Config) { c.GraphURL = "https:///v1.0" }, "has no host"},
		{"GraphQuery", func(c *graph.Config) { c.GraphURL = "https://graph.microsoft.com/?x=1" }, "query"},
		{"NoCredential", func(c *graph.Config) { c.Credential = nil }, "credential is required"},
		{"NegativeTimeout", func(c *graph.Config) { c.Timeout = -time.Second }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			_, err := graph.New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New = %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
