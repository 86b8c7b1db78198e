package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "certagent.yaml")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadIncomplete(t *testing.T) {
	tests := []struct {
		name, data  string
		wantMissing []string
		wantErr     string // a substring of the error; "" for none
	}{
		{"empty file", "", []string{"tenant_id", "auth.client_id", "target.app_id"}, ""},
		{"empty values", "tenant_id: \"\"\nauth:\n  client_id: \"\"\ntarget:\n  app_id: \"\"\n",
			[]string{"tenant_id", "auth.client_id", "target.app_id"}, ""},
		{"one missing", "tenant_id: contoso.onmicrosoft.com\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\n",
			[]string{"target.app_id"}, ""},
		{"custom cloud without endpoints", "cloud:\n  name: custom\ntenant_id: contoso.onmicrosoft.com\n",
			[]string{"cloud.authority_host", "cloud.graph_url", "auth.client_id", "target.app_id"}, ""},
		{"complete", "tenant_id: contoso.onmicrosoft.com\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333\n",
			nil, ""},
		{"missing and invalid", "tenant_id: common\n", nil, ":1: tenant_id: \"common\" names no tenant"},
		{"unknown key", "tenant_id: x.example.com\nlisten: 1\n", nil, ":2: listen: unknown key"},
		{"syntax error", "tenant_id: [\n", nil, "certagent.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, tt.data)
			c, missing, err := LoadIncomplete(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadIncomplete error = %v, want one containing %q", err, tt.wantErr)
				}
				if c != nil || missing != nil {
					t.Errorf("LoadIncomplete returned a config or missing keys with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadIncomplete: %v", err)
			}
			if !slices.Equal(missing, tt.wantMissing) {
				t.Errorf("missing = %q, want %q", missing, tt.wantMissing)
			}
			if c.API.Listen != DefaultListen || c.StateDir == "" || c.API.TokenFile == "" || c.File != path {
				t.Errorf("defaults not applied: listen %q, state %q, token %q, file %q", c.API.Listen, c.StateDir, c.API.TokenFile, c.File)
			}
		})
	}
	_, _, err := LoadIncomplete(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadIncomplete(missing file) = %v, want fs.ErrNotExist", err)
	}
}

// TestInitialRender writes every value and reads it back through the real loader.
func TestInitialRender(t *testing.T) {
	dir := t.TempDir()
	v := Initial{
		TenantID: "11111111-1111-1111-1111-111111111111", ClientID: "22222222-2222-2222-2222-222222222222",
		TargetAppID: "33333333-3333-3333-3333-333333333333", Cloud: CloudCustom,
		AuthorityHost: "https://127.0.0.1:8443/", GraphURL: "https://127.0.0.1:8443", CAFile: filepath.Join(dir, `ca "quoted".pem`),
		DropFolder: filepath.Join(dir, "drop: here"), Approval: ApprovalManual, APIListen: "127.0.0.1:9471",
		WebhookURL: "https://provider.example.com/hook?key=a",
	}
	b, err := v.Render("written by a test\nsecond line")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# written by a test\n# second line\n") {
		t.Errorf("header missing:\n%s", b)
	}
	c, err := Parse(filepath.Join(dir, "certagent.yaml"), b)
	if err != nil {
		t.Fatalf("Parse(Render()): %v\n%s", err, b)
	}
	got := Initial{c.TenantID, c.Auth.ClientID, c.Target.AppID, c.Cloud.Name, c.Cloud.AuthorityHost, c.Cloud.GraphURL,
		c.Cloud.CAFile, c.DropFolder, c.Policy.Approval, c.API.Listen, c.Notify.WebhookURL}
	if got != v {
		t.Errorf("read back %+v\nwant       %+v\nfile:\n%s", got, v, b)
	}

	// Nothing given: the three required keys, empty, and nothing else.
	b, err = Initial{}.Render("h")
	if err != nil {
		t.Fatal(err)
	}
	c, missing, err := LoadIncomplete(writeTemp(t, string(b)))
	if err != nil || len(missing) != 3 {
		t.Fatalf("LoadIncomplete(Render of nothing) = %v, %q\n%s", err, missing, b)
	}
	if c.Cloud.Name != CloudPublic || c.Policy.Approval != ApprovalAuto {
		t.Errorf("defaults changed by an empty Initial:\n%s", b)
	}
}
