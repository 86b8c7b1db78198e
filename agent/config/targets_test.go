package config

import (
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
