package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const twoTargets = `tenant_id: 11111111-1111-1111-1111-111111111111
auth:
  client_id: 22222222-2222-2222-2222-222222222222
drop_folder: /srv/drop
state_dir: /var/lib/certagent
policy:
  approval: manual
  allowed_issuers: ["CN=AUCloud CA"]
targets:
  - name: exchange
    app_id: 33333333-3333-3333-3333-333333333333
    policy:
      allowed_subjects: ["CN=AUCloud VB365 *"]
    retire:
      enabled: true
  - name: teams
    tenant_id: fabrikam.onmicrosoft.com
    app_id: 44444444-4444-4444-4444-444444444444
    policy:
      approval: auto
    retire:
      after: 30d
      dry_run: true
`

func TestTargets(t *testing.T) {
	c := mustParse(t, twoTargets)
	ts := c.EffectiveTargets()
	if len(ts) != 2 {
		t.Fatalf("EffectiveTargets = %+v", ts)
	}
	ex, tm := ts[0], ts[1]
	if ex.Name != "exchange" || ex.TenantID != c.TenantID || ex.Approval != ApprovalManual || ex.DropFolder != filepath.Join(c.DropFolder, "exchange") || !strings.HasSuffix(filepath.ToSlash(c.DropFolder), "/srv/drop") {
		t.Errorf("exchange = %+v", ex)
	}
	if len(ex.Policy.AllowedSubjects) != 1 || len(ex.Policy.AllowedIssuers) != 1 || !ex.Retire.Enabled || ex.Retire.After.Duration() != 14*24*time.Hour {
		t.Errorf("exchange policy/retire = %+v / %+v (want its subjects, the top-level issuers, retire on after 14d)", ex.Policy, ex.Retire)
	}
	if tm.TenantID != "fabrikam.onmicrosoft.com" || tm.Approval != ApprovalAuto || tm.Retire.After.Duration() != 30*24*time.Hour || !tm.Retire.DryRun {
		t.Errorf("teams = %+v", tm)
	}

	// The single target of an older config is "default", dropping into the folder itself.
	c1 := mustParse(t, "tenant_id: 11111111-1111-1111-1111-111111111111\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333\ndrop_folder: /srv/drop\n")
	one := c1.EffectiveTargets()
	if len(one) != 1 || one[0].Name != DefaultTargetName || one[0].DropFolder != c1.DropFolder || one[0].AppID != "33333333-3333-3333-3333-333333333333" {
		t.Errorf("single target = %+v", one)
	}
}

func TestTargetsInvalid(t *testing.T) {
	base := "tenant_id: 11111111-1111-1111-1111-111111111111\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"both", base + "target:\n  app_id: 33333333-3333-3333-3333-333333333333\ntargets:\n  - name: a\n    app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"x.yaml:6: targets: use target or targets, not both"}},
		{"no name", base + "targets:\n  - app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"targets[0].name: is required"}},
		{"bad name", base + "targets:\n  - name: Exchange Online\n    app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"x.yaml:5: targets[0].name: must be 1 to 40 lower-case"}},
		{"reserved name", base + "targets:\n  - name: processed\n    app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"targets[0].name: \"processed\" is taken"}},
		{"duplicates", base + "targets:\n  - name: a\n    app_id: 44444444-4444-4444-4444-444444444444\n  - name: a\n    app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"targets[1].name: \"a\" is the name of targets[0]", "targets[1].app_id: is the app_id of targets[0]"}},
		{"own app", base + "targets:\n  - name: a\n    app_id: 22222222-2222-2222-2222-222222222222\n",
			[]string{"targets[0].app_id: must not be auth.client_id"}},
		{"retire without allow-list", base + "targets:\n  - name: a\n    app_id: 44444444-4444-4444-4444-444444444444\n    retire:\n      enabled: true\n",
			[]string{"x.yaml:8: targets[0].retire.enabled: needs an allow-list"}},
		{"bad approval", base + "target:\n  app_id: 33333333-3333-3333-3333-333333333333\n  policy:\n    approval: sometimes\n",
			[]string{"x.yaml:7: target.policy.approval: must be auto or manual"}},
		{"short after", base + "target:\n  app_id: 33333333-3333-3333-3333-333333333333\n  retire:\n    after: 1h\n",
			[]string{"target.retire.after: must be at least 1d"}},
		{"bad tenant", base + "targets:\n  - name: a\n    tenant_id: not a tenant\n    app_id: 44444444-4444-4444-4444-444444444444\n",
			[]string{"targets[0].tenant_id: must be a GUID or a verified domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q:\n%v", w, err)
				}
			}
		})
	}
}

// testKeyPEM is an ECDSA P-256 public key, as a provider hands it out.
const testKeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZNvBmVAJqhv6lX/EcsB8+CnxtL03
i0H8M6oEpFgxyWNtdLmODmofPSND9mFy3xK6XESaYduwnascZuYPYCVFKA==
-----END PUBLIC KEY-----`

// TestProvenanceAndSource: the top-level provenance is every target's, a target may require
// it and pin its own keys, key files resolve against the config file, PEM written in place
// stays as it is, and source takes its interval default.
func TestProvenanceAndSource(t *testing.T) {
	c := mustParse(t, `tenant_id: 11111111-1111-1111-1111-111111111111
auth:
  client_id: 22222222-2222-2222-2222-222222222222
provenance:
  keys: [keys/provider.pub]
  wait: 1m
targets:
  - name: exchange
    app_id: 33333333-3333-3333-3333-333333333333
    provenance:
      required: true
    source:
      url: https://certs.example.com/contoso/next.cer?customer=1
      ca_file: provider-ca.pem
  - name: teams
    app_id: 44444444-4444-4444-4444-444444444444
    provenance:
      keys:
        - |
`+indent(testKeyPEM, "          ")+`
      wait: 30s
`)
	dir, _ := filepath.Abs(".")
	ts := c.EffectiveTargets()
	ex, tm := ts[0], ts[1]
	if !ex.Provenance.Required || len(ex.Provenance.Keys) != 1 || ex.Provenance.Keys[0] != filepath.Join(dir, "keys", "provider.pub") || ex.Provenance.Wait.Duration() != time.Minute {
		t.Errorf("exchange provenance = %+v", ex.Provenance)
	}
	if ex.Source.URL != "https://certs.example.com/contoso/next.cer?customer=1" || ex.Source.Interval.Duration() != 24*time.Hour || ex.Source.CAFile != filepath.Join(dir, "provider-ca.pem") {
		t.Errorf("exchange source = %+v", ex.Source)
	}
	if tm.Provenance.Required || len(tm.Provenance.Keys) != 1 || !strings.HasPrefix(tm.Provenance.Keys[0], "-----BEGIN PUBLIC KEY-----") || tm.Provenance.Wait.Duration() != 30*time.Second {
		t.Errorf("teams provenance = %+v", tm.Provenance)
	}
	if tm.Source.URL != "" {
		t.Errorf("teams source = %+v", tm.Source)
	}
	// A target cannot waive what the top level requires.
	one := mustParse(t, valid+"provenance:\n  required: true\n  keys: [/etc/certagent/provider.pub]\n").EffectiveTargets()[0]
	if !one.Provenance.Required || one.Provenance.Wait != DefaultProvenanceWait {
		t.Errorf("single target provenance = %+v", one.Provenance)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func TestProvenanceAndSourceInvalid(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"required without keys", valid + "provenance:\n  required: true\n",
			[]string{"x.yaml:7: provenance.required: needs a key"}},
		{"target required without keys", valid + "  provenance:\n    required: true\n",
			[]string{"target.provenance.required: needs a key"}},
		{"bad inline key", valid + "provenance:\n  keys: [\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"]\n",
			[]string{"provenance.keys[0]: key 1: the public key does not parse"}},
		{"private key inline", valid + "provenance:\n  keys: [\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"]\n",
			[]string{"provenance.keys[0]: holds a private key"}},
		{"empty key", valid + "provenance:\n  keys: [\" \"]\n", []string{"provenance.keys[0]: must not be empty"}},
		{"short wait", valid + "provenance:\n  wait: 100ms\n", []string{"provenance.wait: must be at least 1s"}},
		{"long wait", valid + "  provenance:\n    wait: 30d\n", []string{"target.provenance.wait: must be at most 7d"}},
		{"http source", valid + "  source:\n    url: http://certs.example.com/next.cer\n", []string{"target.source.url: must be an https:// URL"}},
		{"folder source", valid + "  source:\n    url: https://certs.example.com/contoso/\n", []string{"target.source.url: must name the certificate itself"}},
		{"short interval", valid + "  source:\n    url: https://certs.example.com/next.cer\n    interval: 10s\n", []string{"target.source.interval: must be from 1m to 30d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestProvenanceKeyFiles: config check reads the key files and the pinned CA.
func TestProvenanceKeyFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.pub"), []byte(testKeyPEM+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
	file := filepath.Join(dir, "certagent.yaml")
	os.WriteFile(file, []byte(valid+"  source:\n    url: https://certs.example.com/next.cer\n    ca_file: missing-ca.pem\nprovenance:\n  keys: [good.pub, missing.pub, cert.pem]\nstate_dir: "+filepath.Join(dir, "state")+"\ndrop_folder: "+filepath.Join(dir, "drop")+"\n"), 0o600)
	_, err := Check(file)
	if err == nil {
		t.Fatal("Check succeeded")
	}
	for _, w := range []string{"provenance.keys[1]: reading provenance key file", "provenance.keys[2]: provenance key file " + filepath.Join(dir, "cert.pem") + ": holds a certificate", "target.source.ca_file: " + filepath.Join(dir, "missing-ca.pem") + " does not exist"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "keys[0]") {
		t.Errorf("the good key file is reported:\n%v", err)
	}
}
