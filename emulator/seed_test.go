package emulator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

func TestLoadSeed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	provider := certtest.New(now, certtest.CommonName("AUCloud VB365 2026"))
	agent := certtest.New(now, certtest.CommonName("certagent"))
	writeFile(t, dir, "provider.cer", string(provider.DER))
	end := provider.Cert.NotAfter.Add(-time.Hour).Format(time.RFC3339)
	path := writeFile(t, dir, "seed.yaml", `tenantId: 2F6D8A0E-6A3C-4C5E-9A55-1D0A7F1B2C3D
domain: contoso.onmicrosoft.com
applications:
  - displayName: Veeam Backup for Microsoft 365
    owners: [certagent]
    keyCredentials:
      - certificateFile: provider.cer
        displayName: CN=AUCloud VB365 2026
        keyId: 0f0f0f0f-0000-4000-8000-000000000001
        endDateTime: `+end+`
  - displayName: certagent
    appId: 7a1b2c3d-0000-4000-8000-000000000002
    signInAudience: AzureADMultipleOrgs
    graphRoles: [Application.ReadWrite.OwnedBy]
    keyCredentials:
      - certificate: |
`+indent(string(agent.CertAndKeyPEM()), "          ")+`
    passwordCredentials:
      - secret: hunter2
        displayName: ci
`)
	s, err := LoadSeed(path)
	if err != nil {
		t.Fatalf("LoadSeed: %v", err)
	}
	e, err := New(t.TempDir(), WithSeed(s), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st := e.State().Tenants[0]
	if st.ID != "2f6d8a0e-6a3c-4c5e-9a55-1d0a7f1b2c3d" || st.Domain != "contoso.onmicrosoft.com" || len(st.Applications) != 2 {
		t.Fatalf("tenant = %+v", st)
	}
	vb, ag := st.Applications[0], st.Applications[1]
	if len(vb.KeyCredentials) != 1 || vb.KeyCredentials[0].Thumbprint != certs.ThumbprintSHA1(provider.DER) ||
		vb.KeyCredentials[0].KeyID != "0f0f0f0f-0000-4000-8000-000000000001" || vb.KeyCredentials[0].EndDateTime.Format(time.RFC3339) != end {
		t.Errorf("provider credential = %+v", vb.KeyCredentials)
	}
	if len(vb.Owners) != 1 || vb.Owners[0].AppID != "7a1b2c3d-0000-4000-8000-000000000002" {
		t.Errorf("owners = %+v", vb.Owners)
	}
	if len(ag.KeyCredentials) != 1 || ag.KeyCredentials[0].Thumbprint != certs.ThumbprintSHA1(agent.DER) || len(ag.PasswordCredentials) != 1 {
		t.Errorf("agent = %+v", ag)
	}
	if vb.SignInAudience != SignInAudienceMyOrg || ag.SignInAudience != SignInAudienceMultipleOrgs {
		t.Errorf("signInAudience: provider %q, agent %q; want the default %s and %s", vb.SignInAudience, ag.SignInAudience, SignInAudienceMyOrg, SignInAudienceMultipleOrgs)
	}
}

func TestLoadSeedErrors(t *testing.T) {
	dir := t.TempDir()
	c := certtest.New(time.Now())
	writeFile(t, dir, "ok.cer", string(c.PEM()))
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", "tenantId: \napplications:\n  - displayName: a\n    colour: blue\n", []string{"bad.yaml", "line 4", "colour"}},
		{"missing certificate file", "applications:\n  - displayName: a\n    keyCredentials:\n      - certificateFile: nope.cer\n", []string{"bad.yaml", "applications[0].keyCredentials[0].certificateFile", "nope.cer"}},
		{"no certificate", "applications:\n  - displayName: a\n    keyCredentials:\n      - displayName: x\n", []string{"applications[0].keyCredentials[0]", "certificateFile or certificate is required"}},
		{"both certificate forms", "applications:\n  - displayName: a\n    keyCredentials:\n      - certificateFile: ok.cer\n        certificate: x\n", []string{"not both"}},
		{"bad time", "applications:\n  - displayName: a\n    keyCredentials:\n      - certificateFile: ok.cer\n        startDateTime: yesterday\n", []string{"applications[0].keyCredentials[0].startDateTime", "RFC 3339"}},
		{"bad inline certificate", "applications:\n  - displayName: a\n    keyCredentials:\n      - certificate: hello\n", []string{"applications[0].keyCredentials[0].certificate: not a certificate"}},
		{"unknown owner", "applications:\n  - displayName: a\n    owners: [b]\n", []string{"applications[0].owners[0]", `"b"`}},
		{"unknown role", "applications:\n  - displayName: a\n    graphRoles: [Application.ReadWrite.Al]\n", []string{"unknown Graph role", "Application.ReadWrite.Al"}},
		{"bad appId", "applications:\n  - displayName: a\n    appId: abc\n", []string{"applications[0].appId", "not a GUID"}},
		{"bad signInAudience", "applications:\n  - displayName: a\n    signInAudience: PersonalMicrosoftAccount\n", []string{"applications[0].signInAudience", "PersonalMicrosoftAccount"}},
		{"no displayName", "applications:\n  - appId: 7a1b2c3d-0000-4000-8000-000000000002\n", []string{"applications[0].displayName: required"}},
		{"password without secret", "applications:\n  - displayName: a\n    passwordCredentials:\n      - displayName: x\n", []string{"applications[0].passwordCredentials[0].secret: required"}},
		{"not YAML", "applications: [\n", []string{"bad.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSeed(writeFile(t, dir, "bad.yaml", tc.yaml))
			if err == nil {
				t.Fatal("LoadSeed succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadSeed error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := LoadSeed(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("LoadSeed(missing) = %v", err)
	}
}
