package client

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/api/apitype"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var now = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is right)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestFormatStatus(t *testing.T) {
	all := map[string]int{"pending_approval": 0, "applying": 0, "applied": 0, "confirmed": 4, "rejected": 1, "failed": 0}
	healthy := apitype.Status{
		Version: "1.4.0", StartedAt: now.Add(-(3*24*time.Hour + 5*time.Hour + 10*time.Minute)), UptimeSeconds: 278 * 3600,
		TenantID:   "99999999-8888-7777-6666-555555555555",
		Target:     apitype.Target{AppID: "11111111-2222-3333-4444-555555555555", ObjectID: "6666", DisplayName: "M365 Backup"},
		DropFolder: `C:\ProgramData\CertAgent\drop`, Approval: "auto",
		Certificates: apitype.CertificateSummary{Count: 2, NextExpiry: ptr(now.Add(200*24*time.Hour + time.Hour)), DaysLeft: ptr(200),
			NextExpiryThumbprint: "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", NextExpiryDisplayName: "Provider 2027"},
		Rotations:  all,
		LastSync:   apitype.SyncStatus{At: ptr(now.Add(-4 * time.Minute)), OK: true, LastSuccess: ptr(now.Add(-4 * time.Minute))},
		Credential: &apitype.CredentialSummary{Thumbprint: "FFEEDDCCBBAA99887766554433221100FFEEDDCC", NotAfter: now.Add(156*24*time.Hour + 2*time.Hour), DaysRemaining: 156},
		Problems:   []apitype.StatusProblem{},
	}
	troubled := healthy
	troubled.Approval = "manual"
	troubled.Certificates = apitype.CertificateSummary{Count: 1, NextExpiry: ptr(now.Add(2*24*time.Hour + 3*time.Hour)), DaysLeft: ptr(2),
		NextExpiryThumbprint: "0F0E0D0C0B0A09080706050403020100FFEEDDCC", NextExpiryDisplayName: "Provider 2026"}
	troubled.Rotations = map[string]int{"pending_approval": 1, "applying": 0, "applied": 1, "confirmed": 4, "rejected": 0, "failed": 2}
	troubled.LastSync = apitype.SyncStatus{At: ptr(now.Add(-30 * time.Second)), OK: false, LastSuccess: ptr(now.Add(-26 * time.Hour)),
		Error: &certs.Reason{Code: certs.GraphUnavailable, Message: "Graph answered 503 through 6 attempts"}}
	troubled.Problems = []apitype.StatusProblem{
		{Code: apitype.ProblemAwaitingApproval, Severity: apitype.SeverityInfo, Message: "1 new certificate waits for approval: certagent approve <id> or Approve-CertAgentRotation"},
		{Code: apitype.ProblemGraphUnreachable, Severity: apitype.SeverityWarning, Message: "the last read from Graph failed; the agent retries"},
		{Code: apitype.ProblemCertificateExpiring, Severity: apitype.SeverityCritical, Message: "\"Provider 2026\" expires in 2 days and no newer certificate is on the app"},
		{Code: apitype.ProblemRotationFailed, Severity: apitype.SeverityCritical, Message: "2 rotations failed: see certagent status --json"},
	}
	fresh := apitype.Status{
		Version: "1.4.0", StartedAt: now.Add(-20 * time.Second), TenantID: "t",
		Target: apitype.Target{AppID: "a"}, DropFolder: "/var/lib/certagent/drop", Approval: "auto",
		Rotations: map[string]int{},
		Problems:  []apitype.StatusProblem{{Code: apitype.ProblemAgentCredentialMissing, Severity: apitype.SeverityCritical, Message: "the agent has no credential: run certagent credential init"}},
	}
	expired := healthy
	expired.Certificates = apitype.CertificateSummary{Count: 1, NextExpiry: ptr(now.Add(-3*24*time.Hour - time.Hour)), DaysLeft: ptr(-4)}
	expired.LastSync = apitype.SyncStatus{At: ptr(now.Add(-90 * time.Minute)), OK: false,
		Error: &certs.Reason{Code: certs.AuthFailed, Message: "AADSTS700027: the certificate is not registered on the agent's app"}}
	expired.Credential = &apitype.CredentialSummary{Thumbprint: "EE", NotAfter: now.Add(-time.Hour)}
	expired.Problems = []apitype.StatusProblem{{Code: apitype.ProblemCertificateExpired, Severity: apitype.SeverityCritical, Message: "every certificate on the app has expired"}}

	for name, s := range map[string]apitype.Status{"healthy": healthy, "troubled": troubled, "fresh": fresh, "expired": expired} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := FormatStatus(&buf, s, now); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "status_"+name+".txt", buf.Bytes())
		})
	}

	// The most urgent problem comes first, before anything else.
	var buf bytes.Buffer
	FormatStatus(&buf, troubled, now)
	lines := strings.Split(buf.String(), "\n")
	if !strings.Contains(lines[0], "4 problems") || !strings.HasPrefix(strings.TrimSpace(lines[2]), "CRITICAL") || !strings.HasPrefix(strings.TrimSpace(lines[5]), "INFO") {
		t.Errorf("problems are not first and most urgent first:\n%s", buf.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatStatusWriteError(t *testing.T) {
	if err := FormatStatus(failingWriter{}, apitype.Status{}, now); err == nil || err.Error() != "disk full" {
		t.Errorf("FormatStatus to a failing writer = %v, want the write error", err)
	}
}

func TestPhrases(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{daysLeft(now, now.Add(36*time.Hour)), "1 day left"},
		{daysLeft(now, now.Add(5*time.Hour)), "less than a day left"},
		{daysLeft(now, now.Add(10*24*time.Hour)), "10 days left"},
		{daysLeft(now, now.Add(-5*time.Hour)), "EXPIRED today"},
		{daysLeft(now, now.Add(-25*time.Hour)), "EXPIRED 1 day ago"},
		{daysLeft(now, now.Add(-72*time.Hour)), "EXPIRED 3 days ago"},
		{ago(now, now.Add(-10*time.Second)), "just now"},
		{ago(now, now.Add(10*time.Second)), "just now"},
		{ago(now, now.Add(-90*time.Second)), "1 minute ago"},
		{ago(now, now.Add(-59*time.Minute)), "59 minutes ago"},
		{ago(now, now.Add(-65*time.Minute)), "1 hour ago"},
		{ago(now, now.Add(-47*time.Hour)), "47 hours ago"},
		{ago(now, now.Add(-72*time.Hour)), "3 days ago"},
		{uptime(45 * time.Second), "45s"},
		{uptime(12 * time.Minute), "12m"},
		{uptime(3*time.Hour + 12*time.Minute), "3h 12m"},
		{uptime(50 * time.Hour), "2d 2h"},
		{uptime(-time.Second), "0s"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d = %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		url     string
		token   string
		wantErr bool
	}{
		{"http://127.0.0.1:8471", "tok", false},
		{"http://127.0.0.1:8471/", "tok", false},
		{"https://localhost:8471", "tok", false},
		{"127.0.0.1:8471", "tok", true},
		{"ftp://127.0.0.1", "tok", true},
		{"http://", "tok", true},
		{"http://127.0.0.1:8471", "  \n", true},
		{"http://[::1", "tok", true},
	}
	for _, tt := range tests {
		_, err := New(tt.url, []byte(tt.token))
		if (err != nil) != tt.wantErr {
			t.Errorf("New(%q, %q) error = %v, want error %v", tt.url, tt.token, err, tt.wantErr)
		}
	}
}

func TestRequests(t *testing.T) {
	// What the client sends: path, method, token, actor, body and its type.
	type seen struct {
		method, path, rawQuery, auth, actor, ctype, disposition, body string
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-CertAgent-Actor"),
			r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/rotations" {
			w.WriteHeader(http.StatusCreated)
		}
		io.WriteString(w, `{"future":"fields are ignored"}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/", []byte(" secret-token\n"), WithActor("alice"), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want seen
	}{
		{"status", func() error { _, err := c.Status(ctx); return err },
			seen{method: "GET", path: "/api/v1/status"}},
		{"refresh", func() error { _, err := c.Certificates(ctx, true); return err },
			seen{method: "GET", path: "/api/v1/certificates", rawQuery: "refresh=true"}},
		{"rotations by state", func() error { _, err := c.Rotations(ctx, "failed"); return err },
			seen{method: "GET", path: "/api/v1/rotations", rawQuery: "state=failed"}},
		{"rotation escaped", func() error { _, err := c.Rotation(ctx, "a/b"); return err },
			seen{method: "GET", path: "/api/v1/rotations/a%2Fb"}},
		{"submit", func() error {
			_, created, err := c.Submit(ctx, []byte("PEM"), "new cert.cer")
			if !created {
				return errors.New("created = false on 201")
			}
			return err
		}, seen{method: "POST", path: "/api/v1/rotations", ctype: "application/octet-stream", disposition: `attachment; filename="new cert.cer"`, body: "PEM"}},
		{"approve with note", func() error { _, err := c.Approve(ctx, "r1", "ok by phone"); return err },
			seen{method: "POST", path: "/api/v1/rotations/r1/approve", ctype: "application/json", body: `{"note":"ok by phone"}`}},
		{"confirm without note", func() error { _, err := c.Confirm(ctx, "r1", ""); return err },
			seen{method: "POST", path: "/api/v1/rotations/r1/confirm"}},
		{"reject", func() error { _, err := c.Reject(ctx, "r1", ""); return err },
			seen{method: "POST", path: "/api/v1/rotations/r1/reject"}},
		{"retry", func() error { _, err := c.Retry(ctx, "r1", ""); return err },
			seen{method: "POST", path: "/api/v1/rotations/r1/retry"}},
		{"scan", func() error { _, err := c.Scan(ctx); return err },
			seen{method: "POST", path: "/api/v1/scan"}},
		{"rotate credential", func() error { _, err := c.RotateCredential(ctx); return err },
			seen{method: "POST", path: "/api/v1/credential/rotate"}},
		{"audit page", func() error { _, err := c.Audit(ctx, 42, 10); return err },
			seen{method: "GET", path: "/api/v1/audit", rawQuery: "before=42&limit=10"}},
		{"audit first page", func() error { _, err := c.Audit(ctx, 0, 0); return err },
			seen{method: "GET", path: "/api/v1/audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			tt.want.auth, tt.want.actor = "Bearer secret-token", "alice"
			if got != tt.want {
				t.Errorf("sent %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		header  map[string]string
		want    ProblemError
		wantErr string
	}{
		{"problem", 422, "application/problem+json",
			`{"type":"urn:certagent:problem:weak_key","title":"Certificate refused","status":422,"detail":"RSA 1024 bits","code":"weak_key","certificate":{"thumbprint":"AB"}}`,
			nil, ProblemError{Status: 422, Code: "weak_key", Type: "urn:certagent:problem:weak_key", Title: "Certificate refused", Detail: "RSA 1024 bits", Certificate: &certs.Certificate{Thumbprint: "AB"}},
			"getting the status: weak_key: RSA 1024 bits"},
		{"rate limited", 429, "application/problem+json", `{"code":"rate_limited","detail":"wait","status":429}`,
			map[string]string{"Retry-After": "7"}, ProblemError{Status: 429, Code: "rate_limited", Detail: "wait", RetryAfter: 7 * time.Second},
			"getting the status: rate_limited: wait"},
		{"not ours", 502, "text/html", "<html>Bad gateway from a proxy</html>", nil,
			ProblemError{Status: 502, Code: "http_502", Title: "Bad Gateway", Detail: "502 Bad Gateway: <html>Bad gateway from a proxy</html>"},
			"getting the status: http_502: 502 Bad Gateway: <html>Bad gateway from a proxy</html>"},
		{"empty", 500, "", "", nil,
			ProblemError{Status: 500, Code: "http_500", Title: "Internal Server Error", Detail: "500 Internal Server Error"},
			"getting the status: http_500: 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, _ := New(srv.URL, []byte("t"))
			_, err := c.Status(context.Background())
			var pe *ProblemError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ProblemError", err)
			}
			if pe.Status != tt.want.Status || pe.Code != tt.want.Code || pe.Title != tt.want.Title || pe.Detail != tt.want.Detail ||
				pe.Type != tt.want.Type || pe.RetryAfter != tt.want.RetryAfter || (pe.Certificate == nil) != (tt.want.Certificate == nil) {
				t.Errorf("problem = %+v\nwant %+v", *pe, tt.want)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("Error() = %q, want %q", err, tt.wantErr)
			}
			if !IsCode(err, tt.want.Code) || IsCode(err, "other") {
				t.Errorf("IsCode is wrong for %v", err)
			}
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok, err := ReadTokenFile(write("ok", "  abc123\r\n"))
	if err != nil || string(tok) != "abc123" {
		t.Errorf("ReadTokenFile = %q, %v; want abc123", tok, err)
	}

	missing := filepath.Join(dir, "missing")
	_, err = ReadTokenFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "cannot read the API token file "+missing+": ") || !strings.Contains(err.Error(), "-c FILE") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadTokenFile(write("empty", " \n\t")); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadTokenFile(write("big", strings.Repeat("x", maxTokenFileSize+1))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	if _, err := ReadTokenFile(dir); err == nil {
		t.Errorf("a directory read as a token file")
	}

	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Log("skipping the permission case: root (or Windows) reads any file")
		return
	}
	locked := write("locked", "abc")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	_, err = ReadTokenFile(locked)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "run as administrator/root") {
		t.Errorf("unreadable file: %v", err)
	}
}
