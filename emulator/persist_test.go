package emulator

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

func quiet() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	owner := certtest.New(now, certtest.CommonName("owner"))
	seed := Seed{Applications: []SeedApplication{
		{DisplayName: "target", Owners: []string{"owner"}},
		{DisplayName: "owner", GraphRoles: []string{RoleApplicationReadWriteOwned}, KeyCredentials: []SeedKeyCredential{{Certificate: owner.DER}}},
	}}
	e1, err := New(dir, WithSeed(seed), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ca1, err := os.ReadFile(e1.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	tid := e1.TenantID()
	st1 := e1.State()
	target := st1.Tenants[0].Applications[0]

	// An acknowledged write through Graph survives.
	tok, err := e1.AccessToken(st1.Tenants[0].Applications[1].AppID, "https://graph.microsoft.com")
	if err != nil {
		t.Fatal(err)
	}
	added := certtest.New(now, certtest.CommonName("added"))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e1.CertPool()}}}
	req, _ := http.NewRequest(http.MethodPatch, e1.URL()+"/v1.0/applications/"+target.ObjectID,
		strings.NewReader(`{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","key":"`+base64.StdEncoding.EncodeToString(added.DER)+`"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("PATCH = %d", resp.StatusCode)
	}
	hc.CloseIdleConnections()
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e1.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	// A different seed is ignored: state.json wins.
	e2, err := New(dir, WithSeed(Seed{Applications: []SeedApplication{{DisplayName: "other"}}}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	ca2, err := os.ReadFile(e2.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1, ca2) {
		t.Error("the CA changed across a restart")
	}
	if e2.TenantID() != tid {
		t.Errorf("tenant = %s, want %s", e2.TenantID(), tid)
	}
	v, err := e2.Application(target.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.KeyCredentials) != 1 || v.KeyCredentials[0].Thumbprint != certs.ThumbprintSHA1(added.DER) || v.ObjectID != target.ObjectID {
		t.Errorf("after restart: %+v, want the PATCHed credential", v)
	}
	if len(v.Owners) != 1 || v.Owners[0].DisplayName != "owner" {
		t.Errorf("owners after restart = %+v", v.Owners)
	}

	if runtime.GOOS != "windows" {
		for _, f := range []string{fileCAKey, fileServerKey, fileSigningKey, fileState} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode = %v, want 0600", f, fi.Mode().Perm())
			}
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestTLS(t *testing.T) {
	e, err := New(t.TempDir(), WithSeed(Seed{}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	if !strings.HasPrefix(e.URL(), "https://127.0.0.1:") {
		t.Errorf("URL = %q", e.URL())
	}
	port := strings.TrimPrefix(e.URL(), "https://127.0.0.1:")
	pemBytes, err := os.ReadFile(e.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.NotAfter.Before(time.Now().AddDate(9, 0, 0)) {
		t.Errorf("CA = IsCA %v, NotAfter %s; want a 10-year CA", ca.IsCA, ca.NotAfter)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + host + ":" + port + "/" + e.TenantID() + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("GET via %s: %v", host, err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 {
			t.Errorf("GET via %s = %d", host, resp.StatusCode)
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool(), MaxVersion: tls.VersionTLS11}}
	if resp, err := (&http.Client{Transport: tr}).Get(e.URL() + "/"); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
}

func TestDemoTenant(t *testing.T) {
	dir := t.TempDir()
	e, err := New(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info, ok := e.DemoInfo()
	if !ok {
		t.Fatal("no demo info")
	}
	target, err := e.Application(info.TargetAppID)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := e.Application(info.AgentAppID)
	if err != nil {
		t.Fatal(err)
	}
	if target.DisplayName != DemoTargetDisplayName || len(target.KeyCredentials) != 1 {
		t.Fatalf("target = %+v", target)
	}
	left := time.Until(target.KeyCredentials[0].EndDateTime)
	if left < 19*24*time.Hour || left > 21*24*time.Hour {
		t.Errorf("provider certificate expires in %s, want about 20 days", left)
	}
	c, err := x509.ParseCertificate(target.KeyCredentials[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if alg, bits := certs.KeyOf(c); alg != "RSA" || bits != 2048 || !strings.HasPrefix(c.Subject.CommonName, "AUCloud VB365 ") {
		t.Errorf("provider certificate = %s %s %d", c.Subject.CommonName, alg, bits)
	}
	if len(target.Owners) != 1 || target.Owners[0].AppID != agent.AppID {
		t.Errorf("target owners = %+v, want the agent", target.Owners)
	}
	if len(agent.Roles) != 1 || agent.Roles[0] != RoleApplicationReadWriteOwned {
		t.Errorf("agent roles = %v", agent.Roles)
	}

	// demo-agent.pem holds the certificate and its key, and signs in.
	b, err := os.ReadFile(info.AgentCredentialFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(info.AgentCredentialFile); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", DemoAgentFile, fi.Mode().Perm())
	}
	cb, rest := pem.Decode(b)
	kb, _ := pem.Decode(rest)
	if cb == nil || kb == nil || cb.Type != "CERTIFICATE" || kb.Type != "PRIVATE KEY" {
		t.Fatalf("%s does not hold a certificate then a key", DemoAgentFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(cb.Bytes)
	env := &testEnv{t: t, e: e, clk: &testClock{t: time.Now()}, base: e.URL(), tid: e.TenantID(),
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}}}
	as := env.msalGoAssertion(certtest.Cert{Cert: cert, DER: cb.Bytes, Key: key.(crypto.Signer)}, agent.AppID, env.tokenURL())
	if status, body := env.postToken(env.tokenURL(), certForm(agent.AppID, as.sign(t), "https://graph.microsoft.com/.default")); status != 200 {
		t.Errorf("sign-in with %s = %d %v", DemoAgentFile, status, body)
	}
	if _, err := os.Stat(info.NextProviderCertFile); err != nil {
		t.Errorf("next provider certificate: %v", err)
	}

	// A restart keeps the demo (and does not make a new one).
	e.Close()
	e2, err := New(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	info2, ok := e2.DemoInfo()
	if !ok || info2 != info {
		t.Errorf("demo info after restart = %+v, want %+v", info2, info)
	}
}

// TestMultiTenantPersistence: consents and sign-in audiences survive a restart; a state file
// of version 1 (before multitenant applications) still loads, every application in it
// single-tenant; a state file of a newer version is refused.
func TestMultiTenantPersistence(t *testing.T) {
	dir := t.TempDir()
	e1, err := New(dir, WithSeed(Seed{Applications: []SeedApplication{
		{DisplayName: "provider", SignInAudience: SignInAudienceMultipleOrgs},
		{DisplayName: "local"},
	}}), quiet())
	if err != nil {
		t.Fatal(err)
	}
	provider, _ := e1.Application(e1.State().Tenants[0].Applications[0].AppID)
	b, err := e1.AddTenant(Seed{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := e1.ConsentApplication(b.ID, provider.AppID, RoleApplicationReadWriteOwned)
	if err != nil {
		t.Fatal(err)
	}
	owned, err := e1.AddApplication(b.ID, SeedApplication{DisplayName: "owned", Owners: []string{provider.AppID}})
	if err != nil {
		t.Fatal(err)
	}
	e1.Close()

	e2, err := New(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	st := e2.State()
	if a := st.Tenants[0].Applications[0]; a.SignInAudience != SignInAudienceMultipleOrgs {
		t.Errorf("after restart, provider's signInAudience = %q", a.SignInAudience)
	}
	if cs := st.Tenants[1].Clients; len(cs) != 2 || cs[1].ServicePrincipalID != sp || cs[1].HomeTenantID != st.Tenants[0].ID || len(cs[1].Roles) != 1 {
		t.Errorf("after restart, tenant B's clients = %+v", cs)
	}
	if v, _ := e2.Application(owned.AppID); len(v.Owners) != 1 || v.Owners[0].ServicePrincipalID != sp || v.Owners[0].AppID != provider.AppID {
		t.Errorf("after restart, owners = %+v", v.Owners)
	}
	e2.Close()

	// The same state as version 1 wrote it: no signInAudience, no foreign service principals.
	path := filepath.Join(dir, fileState)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["version"] != float64(stateVersion) {
		t.Errorf("state.json version = %v, want %d", m["version"], stateVersion)
	}
	m["version"] = 1
	tenants := m["tenants"].([]any)
	for _, tv := range tenants {
		tm := tv.(map[string]any)
		delete(tm, "foreignServicePrincipals")
		for _, av := range tm["applications"].([]any) {
			am := av.(map[string]any)
			delete(am, "signInAudience")
			am["owners"] = []any{}
		}
	}
	old, _ := json.Marshal(m)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	e3, err := New(dir, quiet())
	if err != nil {
		t.Fatalf("loading a version 1 state: %v", err)
	}
	if a := e3.State().Tenants[0].Applications[0]; a.SignInAudience != SignInAudienceMyOrg {
		t.Errorf("version 1 app: signInAudience %q, want %s", a.SignInAudience, SignInAudienceMyOrg)
	}
	if _, err := e3.AddUser("", SeedUser{UserPrincipalName: "someone"}); err != nil {
		t.Fatal(err)
	}
	e3.Close()
	if raw, _ := os.ReadFile(path); !strings.Contains(string(raw), `"version": 2`) {
		t.Errorf("state.json after a write is not version 2: %.80s", raw)
	}

	m["version"] = stateVersion + 1
	newer, _ := json.Marshal(m)
	if err := os.WriteFile(path, newer, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir, quiet()); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("loading a newer state = %v, want an error naming version 3", err)
	}
}

func TestNewErrors(t *testing.T) {
	now := time.Now()
	c := certtest.New(now)
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"bad role", []Option{WithSeed(Seed{Applications: []SeedApplication{{DisplayName: "a", GraphRoles: []string{"Application.ReadWrite.Everything"}}}})}, "unknown Graph role"},
		{"bad owner", []Option{WithSeed(Seed{Applications: []SeedApplication{{DisplayName: "a", Owners: []string{"nobody"}}}})}, "no application with appId or displayName \"nobody\""},
		{"bad tenant id", []Option{WithSeed(Seed{TenantID: "contoso"})}, "not a GUID"},
		{"duplicate appId", []Option{WithSeed(Seed{Applications: []SeedApplication{
			{DisplayName: "a", AppID: "11111111-1111-1111-1111-111111111111"}, {DisplayName: "b", AppID: "11111111-1111-1111-1111-111111111111"},
		}})}, "already used"},
		{"end after the certificate", []Option{WithSeed(Seed{Applications: []SeedApplication{{DisplayName: "a", KeyCredentials: []SeedKeyCredential{{Certificate: c.DER, EndDateTime: c.Cert.NotAfter.Add(time.Hour)}}}}})}, "keyCredentials[0].endDateTime"},
		{"not a certificate", []Option{WithSeed(Seed{Applications: []SeedApplication{{DisplayName: "a", KeyCredentials: []SeedKeyCredential{{Certificate: []byte("nope")}}}}})}, "not a certificate"},
		{"size limit", []Option{WithObjectSizeLimit(0)}, "objectSizeLimit"},
		{"size limit status", []Option{WithSettings(Settings{ObjectSizeLimit: 1, SizeLimitStatus: 500, ValidityErrorCode: ValidityError700027})}, "sizeLimitStatus"},
		{"validity code", []Option{WithValidityErrorCode(50012)}, "validityErrorCode"},
		{"unconsented code", []Option{WithUnconsentedErrorCode(50012)}, "unconsentedErrorCode"},
		{"negative delay", []Option{WithSignInPropagation(-time.Second, 0)}, "signInAddDelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.TempDir(), append(tc.opts, quiet())...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
}

func TestHelpers(t *testing.T) {
	env := newEnv(t)
	if _, err := env.e.Application(newGUID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Application(unknown) = %v, want ErrNotFound", err)
	}
	v, err := env.e.AddApplication("", SeedApplication{DisplayName: "late", Owners: []string{"admin"}, GraphRoles: []string{RoleApplicationReadAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Owners) != 1 || v.Owners[0].DisplayName != "admin" {
		t.Errorf("added app owners = %+v", v.Owners)
	}
	if err := env.e.SetGraphRoles(v.AppID, RoleApplicationReadWriteAll); err != nil {
		t.Fatal(err)
	}
	tok, err := env.e.AccessToken(v.AppID, "https://graph.microsoft.com")
	if err != nil {
		t.Fatal(err)
	}
	if roles := decodeClaims(t, tok)["roles"].([]any); len(roles) != 1 || roles[0] != RoleApplicationReadWriteAll {
		t.Errorf("roles = %v", roles)
	}
	if err := env.e.RemoveKeyCredential(v.AppID, newGUID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveKeyCredential(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := env.e.AccessToken(v.AppID, "https://vault.azure.net"); err == nil {
		t.Error("AccessToken for an unknown resource succeeded")
	}
	if _, err := env.e.AddApplication(newGUID(), SeedApplication{DisplayName: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddApplication to an unknown tenant = %v, want ErrNotFound", err)
	}
}
