package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergeKeepsEverythingElse(t *testing.T) {
	in := []byte(`# my comment
tenant_id: ""   # the tenant
cloud:
  name: custom
  authority_host: https://127.0.0.1:9/
  graph_url: https://127.0.0.1:9
auth:
  key_bits: 4096
policy:
  approval: manual
`)
	set := []Setting{{"tenant_id", "11111111-1111-1111-1111-111111111111"}, {"auth.client_id", "22222222-2222-2222-2222-222222222222"},
		{"target.app_id", "33333333-3333-3333-3333-333333333333"}}
	out, changed, err := Merge(in, set)
	if err != nil || !changed {
		t.Fatalf("Merge = %v, %v", changed, err)
	}
	for _, want := range []string{"# my comment", "# the tenant", "key_bits: 4096", "approval: manual", "name: custom",
		`tenant_id: "11111111-1111-1111-1111-111111111111"`, `client_id: "22222222-2222-2222-2222-222222222222"`, `app_id: "33333333-3333-3333-3333-333333333333"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("merged config lacks %q:\n%s", want, out)
		}
	}
	c, err := Parse("x.yaml", out)
	if err != nil {
		t.Fatalf("the merged config does not load: %v\n%s", err, out)
	}
	if c.Auth.KeyBits != 4096 || c.Auth.ClientID != "22222222-2222-2222-2222-222222222222" || c.Policy.Approval != ApprovalManual {
		t.Errorf("merged config = %+v", c)
	}
	again, changed, err := Merge(out, set)
	if err != nil || changed || string(again) != string(out) {
		t.Errorf("second Merge changed %v (%v)", changed, err)
	}
}

func TestMergeNewFileAndLoadIncomplete(t *testing.T) {
	out, changed, err := Merge(nil, []Setting{{"tenant_id", "contoso.onmicrosoft.com"}, {"auth.client_id", "22222222-2222-2222-2222-222222222222"}, {"target.app_id", "33333333-3333-3333-3333-333333333333"}})
	if err != nil || !changed || !strings.HasPrefix(string(out), "# certagent configuration") {
		t.Fatalf("Merge(nil) = %q %v %v", out, changed, err)
	}
	if _, err := Parse("x.yaml", out); err != nil {
		t.Errorf("new config does not load: %v", err)
	}
	p := filepath.Join(t.TempDir(), "certagent.yaml")
	if err := os.WriteFile(p, []byte("policy:\n  approval: manual\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil {
		t.Error("Load accepted a config without tenant_id")
	}
	c, _, err := LoadIncomplete(p)
	if err != nil || c.Policy.Approval != ApprovalManual {
		t.Errorf("LoadIncomplete = %v", err)
	}
	if err := os.WriteFile(p, []byte("policy:\n  approval: sometimes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadIncomplete(p); err == nil || !strings.Contains(err.Error(), "approval") {
		t.Errorf("LoadIncomplete accepted a bad value: %v", err)
	}
	if _, _, err := LoadIncomplete(filepath.Join(t.TempDir(), "none.yaml")); !IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := Merge([]byte("auth: 3\n"), []Setting{{"auth.client_id", "x"}}); err == nil {
		t.Error("Merge into a scalar section succeeded")
	}
}
