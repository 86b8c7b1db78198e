package azcli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/e2e"
)

// newCLI returns az set up for emu in a private folder (not yet logged in). A missing az
// fails the test: `make test` does not skip this package.
func newCLI(tb testing.TB, emu *emulator.Emulator, debug bool) *CLI {
	tb.Helper()
	c, err := New(Config{Dir: filepath.Join(tb.TempDir(), "az"), EmulatorURL: emu.URL(), CAFile: emu.CAFile(), Debug: debug})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Setup(tb.Context()); err != nil {
		tb.Fatalf("setting az up for the emulator: %v\n%s", err, transcript(c))
	}
	return c
}

// transcript renders every az command c ran: its exit, its errors and, with --debug, the
// HTTP exchanges az logged (bodies cut at 3,000 characters).
func transcript(c *CLI) string {
	var b strings.Builder
	for _, r := range c.History() {
		fmt.Fprintf(&b, "$ %s\n  exit %d after %s\n", r.Command(), r.ExitCode, r.Duration.Round(time.Millisecond))
		for _, e := range r.Errors() {
			fmt.Fprintf(&b, "  error: %s\n", e)
		}
		for _, x := range Exchanges(r.Stderr) {
			fmt.Fprintf(&b, "  %s\n", cut(x.String(), 3000))
		}
		if out := strings.TrimSpace(string(r.Stdout)); out != "" {
			fmt.Fprintf(&b, "  stdout: %s\n", cut(out, 3000))
		}
	}
	return b.String()
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d more bytes)", len(s)-n)
}

func writeTemp(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// byKeyID indexes credentials by keyId.
func byKeyID(creds []emulator.KeyCredentialView) map[string]emulator.KeyCredentialView {
	m := map[string]emulator.KeyCredentialView{}
	for _, c := range creds {
		m[c.KeyID] = c
	}
	return m
}

// azView maps keyId to thumbprint as az lists the credentials.
func azView(creds []KeyCredential) map[string]string {
	m := map[string]string{}
	for _, c := range creds {
		m[c.KeyID] = c.Thumbprint()
	}
	return m
}

// emuView maps keyId to thumbprint as the emulator holds the credentials.
func emuView(creds []emulator.KeyCredentialView) map[string]string {
	m := map[string]string{}
	for _, c := range creds {
		m[c.KeyID] = c.Thumbprint
	}
	return m
}

// checkKept fails for each credential of before that after lost or changed.
func checkKept(t *testing.T, before, after []emulator.KeyCredentialView) {
	t.Helper()
	now := byKeyID(after)
	for _, old := range before {
		got, ok := now[old.KeyID]
		if !ok {
			t.Errorf("credential %s (%s, %q) is gone", old.KeyID, old.Thumbprint, old.DisplayName)
			continue
		}
		if !reflect.DeepEqual(got, old) {
			t.Errorf("credential %s changed:\n got  %+v\n want %+v", old.KeyID, withoutKey(got), withoutKey(old))
		}
	}
}

func withoutKey(k emulator.KeyCredentialView) emulator.KeyCredentialView {
	k.Key = nil
	return k
}

// TestAzureCLIAndAgentAgree runs azure-cli and certagent on the same emulated app
// registration: az appends a certificate (every old one kept, the new one once), certagent
// adds another behind az's back and az sees all of them, certagent recognises az's
// certificate as already present without writing, and the token endpoint refuses az the
// way Entra does.
func TestAzureCLIAndAgentAgree(t *testing.T) {
	e2e.BuildInBackground() // overlaps az's set-up; startAgent waits for it
	ctx := t.Context()
	env := newEnv(t)
	emu, info := env.Emulator, env.Info
	work := t.TempDir()
	az := newCLI(t, emu, true)
	var agent *e2e.Agent
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("az commands (with what az logged sending):\n%s", transcript(az))
		t.Logf("emulator request log:\n%s", requestLog(emu, 0))
		if agent != nil {
			t.Logf("agent log:\n%s", agent.Log())
		}
	})
	defer func() {
		if s := az.StrayCalls(); len(s) > 0 {
			t.Errorf("requests tried to leave loopback through the proxy: %q", s)
		}
	}()

	now := time.Now()
	azCert := certtest.New(now, certtest.CommonName("AUCloud VB365 via az"), certtest.FreshKey())
	azThumb := certs.ThumbprintSHA1(azCert.DER)
	azFile := writeTemp(t, work, "az-new.pem", azCert.PEM())
	agentCert := certtest.New(now, certtest.CommonName("AUCloud VB365 via certagent"))
	agentThumb := certs.ThumbprintSHA1(agentCert.DER)

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("1_login", func(t *testing.T) {
		mark := len(emu.Requests())
		accts, _, err := az.Login(ctx, info.AgentAppID, info.AgentCredentialFile, info.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		if len(accts) != 1 {
			t.Fatalf("az login listed %d accounts, want 1: %+v", len(accts), accts)
		}
		a := accts[0]
		if a.TenantID != info.TenantID || a.User.Name != info.AgentAppID || a.User.Type != "servicePrincipal" || a.CloudName != az.CloudName() {
			t.Errorf("az login account = tenant %s user %s (%s) cloud %s; want %s, %s (servicePrincipal), %s",
				a.TenantID, a.User.Name, a.User.Type, a.CloudName, info.TenantID, info.AgentAppID, az.CloudName())
		}
		// az went the ADFS way of docs/graph.md: discovery, a token, the ARM subscriptions list.
		var got []string
		for _, r := range emu.Requests()[mark:] {
			got = append(got, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
		}
		want := []string{"GET /adfs/.well-known/openid-configuration 200", "POST /adfs/oauth2/token 200", "GET /subscriptions 200"}
		if !slices.Equal(got, want) {
			t.Errorf("az login sent %q, want %q", got, want)
		}
		// The agent does not run yet: the last sign-in of the agent's app is az's, with the
		// demo's credential (devenv registered the agent's own one beside it).
		demo, _ := emu.DemoInfo()
		si := lastSignIn(t, emu, info.AgentAppID)
		if si.Method != "certificate" || si.Thumbprint != demo.AgentThumbprint {
			t.Errorf("last sign-in of the agent's app = %s %s, want certificate %s", si.Method, si.Thumbprint, demo.AgentThumbprint)
		}
	})

	// The agent starts now, reads the app, and so holds a view that az's write below makes
	// stale: if it wrote from that view it would drop az's certificate.
	agent = startAgent(env, az.Sentinel().URL())
	agent.WaitFor("the agent's first read of the app", 30*time.Second, func() bool {
		l, err := agent.Client.Certificates(ctx, false)
		return err == nil && l.SyncedAt != nil
	})

	var afterAz []emulator.KeyCredentialView
	var azKeyID string
	step("2_az_append", func(t *testing.T) {
		before := application(t, emu, info.TargetAppID)
		res, err := az.AppendCertificate(ctx, info.TargetAppID, azFile)
		if err != nil {
			t.Fatal(err)
		}
		after := application(t, emu, info.TargetAppID)
		afterAz = after.KeyCredentials
		checkKept(t, before.KeyCredentials, after.KeyCredentials)
		if got, want := len(after.KeyCredentials), len(before.KeyCredentials)+1; got != want {
			t.Errorf("the app holds %d credentials after az's append, want %d: %q", got, want, thumbprintsOf(after.KeyCredentials))
		}
		if n := count(after.KeyCredentials, azCert.DER); n != 1 {
			t.Fatalf("the app holds az's certificate %d times, want 1", n)
		}
		for _, k := range after.KeyCredentials {
			if k.Thumbprint != azThumb {
				continue
			}
			azKeyID = k.KeyID
			if k.Type != "AsymmetricX509Cert" || k.Usage != "Verify" {
				t.Errorf("az's credential is %s/%s, want AsymmetricX509Cert/Verify", k.Type, k.Usage)
			}
			if cki := k.CustomKeyIdentifier; ThumbprintOfCKI(&cki) != azThumb {
				t.Errorf("az's credential has customKeyIdentifier %q, want the thumbprint %s", cki, azThumb)
			}
			if k.StartDateTime.Before(azCert.Cert.NotBefore) || k.EndDateTime.After(azCert.Cert.NotAfter) {
				t.Errorf("az's credential runs %s to %s, outside the certificate's %s to %s",
					k.StartDateTime, k.EndDateTime, azCert.Cert.NotBefore, azCert.Cert.NotAfter)
			}
		}
		checkAzPatch(t, res, before, azCert.DER, azKeyID)

		listed, _, err := az.ListCertificates(ctx, info.TargetAppID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := azView(listed), emuView(after.KeyCredentials); !reflect.DeepEqual(got, want) {
			t.Errorf("az lists (keyId: thumbprint) %v, the emulator holds %v", got, want)
		}
		for _, k := range listed {
			if k.Key != nil {
				t.Errorf("az lists credential %s with its key; Graph returns keys only to $select=keyCredentials", k.KeyID)
			}
		}
	})

	var afterAgent []emulator.KeyCredentialView
	step("3_agent_adds", func(t *testing.T) {
		r, created, err := agent.Client.Submit(ctx, agentCert.PEM(), "via-api.cer")
		if err != nil {
			t.Fatal(err)
		}
		if !created {
			t.Errorf("submitting a new certificate: created = false, want true")
		}
		r = waitSettled(t, agent, r.ID, 30*time.Second)
		if r.State != "applied" || r.AlreadyPresent || r.KeyID == "" {
			t.Fatalf("rotation = state %s alreadyPresent %v keyId %q reason %+v; want applied, false, a keyId", r.State, r.AlreadyPresent, r.KeyID, r.Reason)
		}
		app := application(t, emu, info.TargetAppID)
		afterAgent = app.KeyCredentials
		checkKept(t, afterAz, app.KeyCredentials)
		if got, want := len(app.KeyCredentials), len(afterAz)+1; got != want {
			t.Errorf("the app holds %d credentials after the agent's write, want %d: %q", got, want, thumbprintsOf(app.KeyCredentials))
		}
		if k, ok := byKeyID(app.KeyCredentials)[r.KeyID]; !ok || k.Thumbprint != agentThumb || count(app.KeyCredentials, agentCert.DER) != 1 {
			t.Errorf("the app does not hold the agent's certificate once under keyId %s: %q", r.KeyID, thumbprintsOf(app.KeyCredentials))
		}

		listed, _, err := az.ListCertificates(ctx, info.TargetAppID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := azView(listed), emuView(app.KeyCredentials); !reflect.DeepEqual(got, want) {
			t.Errorf("az lists (keyId: thumbprint) %v, the emulator holds %v", got, want)
		}

		// The agent's own view tells az's certificate from its own.
		l, err := agent.Client.Certificates(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range l.Items {
			switch c.Thumbprint {
			case azThumb:
				seen[azThumb] = true
				if c.AddedByAgent || c.KeyID != azKeyID {
					t.Errorf("agent lists az's certificate as keyId %s addedByAgent %v; want %s, false", c.KeyID, c.AddedByAgent, azKeyID)
				}
			case agentThumb:
				seen[agentThumb] = true
				if !c.AddedByAgent || c.KeyID != r.KeyID {
					t.Errorf("agent lists its certificate as keyId %s addedByAgent %v; want %s, true", c.KeyID, c.AddedByAgent, r.KeyID)
				}
			}
		}
		if !seen[azThumb] || !seen[agentThumb] {
			t.Errorf("GET /api/v1/certificates?refresh=true lacks az's (%v) or the agent's (%v) certificate", seen[azThumb], seen[agentThumb])
		}
	})

	step("4_drop_az_certificate", func(t *testing.T) {
		before := application(t, emu, info.TargetAppID)
		mark := len(emu.Requests())
		writeTemp(t, env.Config.DropFolder, "az-added.cer", azCert.PEM())
		r := waitThumbprint(t, agent, azThumb, 30*time.Second)
		if r.State != "applied" || !r.AlreadyPresent || r.KeyID != azKeyID || r.Source.Kind != "drop_folder" {
			t.Errorf("rotation = state %s alreadyPresent %v keyId %s source %s; want applied, true, %s, drop_folder",
				r.State, r.AlreadyPresent, r.KeyID, r.Source.Kind, azKeyID)
		}
		agent.WaitForT(t, "az-added.cer filed in processed/", 30*time.Second, func() bool {
			m, _ := filepath.Glob(filepath.Join(env.Config.DropFolder, "processed", "*_az-added.cer"))
			return len(m) == 1
		})
		after := application(t, emu, info.TargetAppID)
		if after.Version != before.Version {
			t.Errorf("the app was written (version %d -> %d) for a certificate it already held", before.Version, after.Version)
		}
		checkKept(t, before.KeyCredentials, after.KeyCredentials)
		if n := count(after.KeyCredentials, azCert.DER); n != 1 || len(after.KeyCredentials) != len(before.KeyCredentials) {
			t.Errorf("the app holds az's certificate %d times among %d credentials; want once among %d", n, len(after.KeyCredentials), len(before.KeyCredentials))
		}
		for _, req := range emu.Requests()[mark:] {
			if strings.HasPrefix(req.Path, "/v1.0/") && req.Method != http.MethodGet {
				t.Errorf("a write reached Graph for a certificate already present: %s %s -> %d (%s)", req.Method, req.Path, req.Status, req.UserAgent)
			}
		}
		listed, _, err := az.ListCertificates(ctx, info.TargetAppID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := azView(listed), emuView(afterAgent); !reflect.DeepEqual(got, want) {
			t.Errorf("az lists (keyId: thumbprint) %v, want what was there before the drop: %v", got, want)
		}
	})

	step("5_refusals", func(t *testing.T) {
		stranger := certtest.New(now, certtest.CommonName("registered nowhere"))
		strangerBoth := writeTemp(t, work, "stranger.pem", stranger.CertAndKeyPEM())
		strangerCert := writeTemp(t, work, "stranger.cer", stranger.PEM())

		// A certificate the app does not hold: Entra's AADSTS700027.
		mark := len(emu.Requests())
		_, res, err := az.Login(ctx, info.AgentAppID, strangerBoth, info.TenantID)
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("az login with an unregistered certificate: err = %v, want az to fail", err)
		}
		if msg := strings.Join(res.Errors(), "\n"); !strings.Contains(msg, "AADSTS700027") || !strings.Contains(msg, certs.ThumbprintSHA1(stranger.DER)) {
			t.Errorf("az login printed %q; want AADSTS700027 naming the thumbprint %s", msg, certs.ThumbprintSHA1(stranger.DER))
		}
		if !loggedError(emu, mark, http.MethodPost, "/adfs/oauth2/token", http.StatusUnauthorized, "AADSTS700027") {
			t.Errorf("the emulator did not answer 401 AADSTS700027 to az's token request:\n%s", requestLog(emu, mark))
		}

		// The certificate az uploaded (base64 with line breaks) is the one the token endpoint
		// checks: the target app signs in with it.
		azBoth := writeTemp(t, work, "az-both.pem", azCert.CertAndKeyPEM())
		if _, _, err := az.Login(ctx, info.TargetAppID, azBoth, info.TenantID); err != nil {
			t.Fatalf("az login as the target app with the certificate az added: %v", err)
		}
		if si := lastSignIn(t, emu, info.TargetAppID); si.Thumbprint != azThumb {
			t.Errorf("the target app signed in with %s, want az's certificate %s", si.Thumbprint, azThumb)
		}

		// The target app has no Graph permission: Graph refuses its write to another app.
		agentApp := application(t, emu, info.AgentAppID)
		mark = len(emu.Requests())
		res, err = az.AppendCertificate(ctx, info.AgentAppID, strangerCert)
		if !errors.As(err, &ee) {
			t.Fatalf("az credential reset without permission: err = %v, want az to fail", err)
		}
		if msg := strings.Join(res.Errors(), "\n"); !strings.Contains(msg, "Insufficient privileges to complete the operation.") {
			t.Errorf("az printed %q, want Graph's \"Insufficient privileges to complete the operation.\"", msg)
		}
		if !loggedError(emu, mark, http.MethodGet, "/v1.0/applications", http.StatusForbidden, "Authorization_RequestDenied") {
			t.Errorf("the emulator did not answer 403 Authorization_RequestDenied to az:\n%s", requestLog(emu, mark))
		}
		if after := application(t, emu, info.AgentAppID); after.Version != agentApp.Version {
			t.Errorf("the agent's app was written (version %d -> %d) by a caller without permission", agentApp.Version, after.Version)
		}
	})
}

// checkAzPatch checks the PATCH az logged against docs/graph.md: one PATCH of the app answered
// 204, echoing every credential that was there by keyId with "key": null, and adding the
// certificate der as base64 with line breaks, without customKeyIdentifier, under the keyId
// the emulator then holds (Graph keeps a keyId the client chose).
func checkAzPatch(t *testing.T, res Result, before emulator.ApplicationView, der []byte, storedKeyID string) {
	t.Helper()
	var patches []Exchange
	for _, x := range Exchanges(res.Stderr) {
		if x.Method == http.MethodPatch {
			patches = append(patches, x)
		}
	}
	if len(patches) != 1 {
		t.Fatalf("az sent %d PATCH requests, want 1: %v", len(patches), patches)
	}
	p := patches[0]
	u, err := url.Parse(p.URL)
	if err != nil || u.Path != "/v1.0/applications/"+before.ObjectID || p.Status != http.StatusNoContent {
		t.Errorf("az sent PATCH %s answered %d, want PATCH /v1.0/applications/%s answered 204", p.URL, p.Status, before.ObjectID)
	}
	var body struct {
		KeyCredentials []map[string]any `json:"keyCredentials"`
	}
	if err := json.Unmarshal([]byte(p.RequestBody), &body); err != nil {
		t.Fatalf("az's PATCH body %q: %v", cut(p.RequestBody, 500), err)
	}
	old := byKeyID(before.KeyCredentials)
	sent := map[string]bool{}
	var added []map[string]any
	for _, k := range body.KeyCredentials {
		id, _ := k["keyId"].(string)
		if _, ok := old[id]; !ok {
			added = append(added, k)
			continue
		}
		sent[id] = true
		if v, ok := k["key"]; !ok || v != nil {
			t.Errorf("az echoed credential %s with key %v; docs/graph.md says it sends \"key\": null", id, v)
		}
	}
	for id := range old {
		if !sent[id] {
			t.Errorf("az's PATCH left out the existing credential %s", id)
		}
	}
	if len(added) != 1 {
		t.Fatalf("az's PATCH adds %d credentials, want 1", len(added))
	}
	n := added[0]
	key, _ := n["key"].(string)
	if !strings.Contains(key, "\n") {
		t.Errorf("az sent the new key without line breaks; docs/graph.md says it breaks the base64 every 64 characters (the emulator's path for that is then untested)")
	}
	if b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(key)); err != nil || !slices.Equal(b, der) {
		t.Errorf("the key az sent is not the certificate's DER in base64 (err %v)", err)
	}
	if v, ok := n["customKeyIdentifier"]; ok && v != nil {
		t.Errorf("az sent customKeyIdentifier %v; docs/graph.md says it leaves it to Graph", v)
	}
	if id, _ := n["keyId"].(string); id != "" && id != storedKeyID {
		t.Errorf("az sent keyId %s for the new credential, the emulator stored it as %s; Graph keeps the client's keyId", id, storedKeyID)
	}
}

// lastSignIn returns the last successful token request of the client appID.
func lastSignIn(t *testing.T, emu *emulator.Emulator, appID string) emulator.SignInView {
	t.Helper()
	for _, ten := range emu.State().Tenants {
		for _, c := range ten.Clients {
			if c.AppID == appID && c.LastSignIn != nil {
				return *c.LastSignIn
			}
		}
	}
	t.Fatalf("the emulator records no sign-in of %s", appID)
	return emulator.SignInView{}
}

// loggedError reports whether emu answered a request method path (prefix) with status and
// error code since the request at index from.
func loggedError(emu *emulator.Emulator, from int, method, path string, status int, code string) bool {
	for _, r := range emu.Requests()[from:] {
		if r.Method == method && strings.HasPrefix(r.Path, path) && r.Status == status && r.ErrorCode == code {
			return true
		}
	}
	return false
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExchanges(t *testing.T) {
	type want struct {
		method, path string
		status       int
		body         bool // whether a request body was logged
	}
	tests := []struct {
		fixture string
		want    []want
	}{
		{"reset-append.debug.txt", []want{
			{"POST", "/adfs/oauth2/token", 200, false},
			{"GET", "/v1.0/applications", 200, false},
			{"GET", "/v1.0/applications/", 200, false},
			{"PATCH", "/v1.0/applications/", 204, true},
		}},
		{"login-700027.debug.txt", []want{
			{"POST", "/adfs/oauth2/token", 401, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got := Exchanges(readFixture(t, tt.fixture))
			if len(got) != len(tt.want) {
				t.Fatalf("Exchanges(%s) = %d exchanges, want %d:\n%v", tt.fixture, len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				u, err := url.Parse(g.URL)
				if err != nil {
					t.Fatalf("exchange %d: URL %q: %v", i, g.URL, err)
				}
				if g.Method != w.method || !strings.HasPrefix(u.Path, w.path) || g.Status != w.status || (g.RequestBody != "") != w.body {
					t.Errorf("exchange %d = %s %s %d body %q, want %s %s... %d body %v", i, g.Method, u.Path, g.Status, cut(g.RequestBody, 40), w.method, w.path, w.status, w.body)
				}
			}
		})
	}

	// The PATCH body is the JSON az sent, whole.
	x := Exchanges(readFixture(t, "reset-append.debug.txt"))[3]
	var body struct {
		KeyCredentials []struct {
			KeyID string  `json:"keyId"`
			Key   *string `json:"key"`
		} `json:"keyCredentials"`
	}
	if err := json.Unmarshal([]byte(x.RequestBody), &body); err != nil {
		t.Fatalf("PATCH body: %v", err)
	}
	if len(body.KeyCredentials) != 2 || body.KeyCredentials[0].Key != nil || body.KeyCredentials[1].Key == nil {
		t.Errorf("PATCH body holds %d credentials %+v, want 2: the demo's echoed with key null, the new one with a key", len(body.KeyCredentials), body.KeyCredentials)
	}
	if x.ResponseBody != "" {
		t.Errorf("204 answer's body = %q, want empty", x.ResponseBody)
	}
}

func TestErrorLines(t *testing.T) {
	tests := []struct {
		name   string
		stderr string
		want   []string
	}{
		{"none", "WARNING: something\n", nil},
		{"plain", "ERROR: Insufficient privileges to complete the operation.\n", []string{"Insufficient privileges to complete the operation."}},
		{"code looks like a logger", "ERROR: AADSTS700027: The certificate ...\nInteractive authentication is needed.\n", []string{"AADSTS700027: The certificate ..."}},
		{"debug prints it twice", "ERROR: cli.azure.cli.core.azclierror: AADSTS700027: x\nERROR: az_command_data_logger: AADSTS700027: x\n", []string{"AADSTS700027: x"}},
		{"crlf", "ERROR: a\r\nERROR: b\r\n", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorLines([]byte(tt.stderr)); !slices.Equal(got, tt.want) {
				t.Errorf("ErrorLines(%q) = %q, want %q", tt.stderr, got, tt.want)
			}
		})
	}
	for _, f := range []string{"login-700027.txt", "login-700027.debug.txt"} {
		got := ErrorLines(readFixture(t, f))
		if len(got) != 1 || !strings.HasPrefix(got[0], "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.") {
			t.Errorf("ErrorLines(%s) = %q, want the one AADSTS700027 message", f, got)
		}
	}
}

func TestThumbprintOfCKI(t *testing.T) {
	const thumb = "CC8B31C715D123BDD38EA725F8B7631ED8EC6667"
	raw := []byte{0xcc, 0x8b, 0x31, 0xc7, 0x15, 0xd1, 0x23, 0xbd, 0xd3, 0x8e, 0xa7, 0x25, 0xf8, 0xb7, 0x63, 0x1e, 0xd8, 0xec, 0x66, 0x67}
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		cki  *string
		want string
	}{
		{"nil", nil, ""},
		{"hex as Graph shows it", s(thumb), thumb},
		{"lower-case hex", s(strings.ToLower(thumb)), thumb},
		{"base64 of the raw bytes", s(base64.StdEncoding.EncodeToString(raw)), thumb},
		{"something else", s("bXkta2V5"), ""},
		{"empty", s(""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ThumbprintOfCKI(tt.cki); got != tt.want {
				t.Errorf("ThumbprintOfCKI(%v) = %q, want %q", tt.cki, got, tt.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	parent := []string{
		"PATH=/usr/bin", "HOME=/root", "AZURE_CONFIG_DIR=/root/.azure", "azure_core_output=table",
		"https_proxy=http://corp:3128", "NO_PROXY=corp", "REQUESTS_CA_BUNDLE=/etc/ssl/x.pem", "SSL_CERT_FILE=/x",
	}
	env := Environ(parent, "/tmp/az", "/tmp/ca.pem", "http://127.0.0.1:9")
	vals := map[string][]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = append(vals[k], v)
	}
	want := map[string]string{
		"PATH": "/usr/bin", "HOME": "/root", "AZURE_CONFIG_DIR": "/tmp/az", "AZURE_CORE_OUTPUT": "json",
		"AZURE_CORE_COLLECT_TELEMETRY": "false", "REQUESTS_CA_BUNDLE": "/tmp/ca.pem",
		"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost,::1",
	}
	for k, v := range want {
		if got := vals[k]; len(got) != 1 || got[0] != v {
			t.Errorf("Environ: %s = %q, want [%q]", k, got, v)
		}
	}
	for _, k := range []string{"azure_core_output", "SSL_CERT_FILE"} {
		if got, ok := vals[k]; ok {
			t.Errorf("Environ kept %s = %q", k, got)
		}
	}
}

func TestSentinel(t *testing.T) {
	s, err := NewSentinel()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proxy, _ := url.Parse(s.URL())
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	defer hc.CloseIdleConnections()

	// Plain HTTP through the proxy: the sentinel answers 403 itself.
	resp, err := hc.Get("http://login.microsoftonline.com/common/discovery/instance")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET through the sentinel: status %d, want 403", resp.StatusCode)
	}
	// HTTPS: the CONNECT is refused, so the request fails.
	if _, err := hc.Get("https://graph.microsoft.com/v1.0/applications"); err == nil {
		t.Errorf("an HTTPS request through the sentinel succeeded")
	}
	want := []string{"GET http://login.microsoftonline.com/common/discovery/instance", "CONNECT graph.microsoft.com:443"}
	if got := s.Stray(); !slices.Equal(got, want) {
		t.Errorf("Stray() = %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	s.Close() // twice is fine
}

func TestNewRequiresFields(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{EmulatorURL: "https://127.0.0.1:1", CAFile: ca}, "Dir"},
		{"no url", Config{Dir: t.TempDir(), CAFile: ca}, "EmulatorURL"},
		{"no ca", Config{Dir: t.TempDir(), EmulatorURL: "https://127.0.0.1:1"}, "CAFile"},
		{"missing az", Config{Dir: t.TempDir(), EmulatorURL: "https://127.0.0.1:1", CAFile: ca, Bin: "az-does-not-exist"}, "apt-get install -y azure-cli"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("New(%+v) = nil error, want one naming %s", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
			}
		})
	}
}
