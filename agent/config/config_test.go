package config

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWindowsPaths(t *testing.T) {
	tests := []struct {
		programData string
		wantRoot    string
	}{
		{`C:\ProgramData`, `C:\ProgramData\CertAgent`},
		{`D:\Data\`, `D:\Data\CertAgent`},
		{`d:/data`, `d:/data\CertAgent`},
		{`\\server\share\pd`, `\\server\share\pd\CertAgent`},
		{"", `C:\ProgramData\CertAgent`},            // unset: a thin service environment
		{`ProgramData`, `C:\ProgramData\CertAgent`}, // not absolute
		{`C:\`, `C:\CertAgent`},                     // as %ProgramData%\CertAgent would expand
		{`\ProgramData`, `C:\ProgramData\CertAgent`},
	}
	for _, tt := range tests {
		getenv := func(k string) string {
			if k != "ProgramData" {
				t.Errorf("windowsPaths read %q, want ProgramData", k)
			}
			return tt.programData
		}
		got := windowsPaths(getenv)
		want := osPaths{
			configFile: tt.wantRoot + `\certagent.yaml`,
			stateDir:   tt.wantRoot + `\state`,
			dropFolder: tt.wantRoot + `\drop`,
		}
		if got != want {
			t.Errorf("windowsPaths(ProgramData=%q) = %+v, want %+v", tt.programData, got, want)
		}
	}
}

func TestDefaultPaths(t *testing.T) {
	c := Default()
	want := unixPaths
	if runtime.GOOS == "windows" {
		want = windowsPaths(func(k string) string { return lookupEnv(k) })
	}
	if DefaultPath() != want.configFile {
		t.Errorf("DefaultPath() = %q, want %q", DefaultPath(), want.configFile)
	}
	tests := []struct{ key, got, want string }{
		{"state_dir", c.StateDir, want.stateDir},
		{"drop_folder", c.DropFolder, want.dropFolder},
		{"auth.certificate_file", c.Auth.CertificateFile, filepath.Join(want.stateDir, "agent.pem")},
		{"auth.key_file", c.Auth.KeyFile, filepath.Join(want.stateDir, "agent.key")},
		{"api.token_file", c.API.TokenFile, filepath.Join(want.stateDir, "api.token")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("Default().%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}
	if runtime.GOOS != "windows" && (c.StateDir != "/var/lib/certagent" || c.DropFolder != "/var/lib/certagent/drop" || DefaultPath() != "/etc/certagent/certagent.yaml") {
		t.Errorf("Unix defaults = %q %q %q", DefaultPath(), c.StateDir, c.DropFolder)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.File != "" || c.lines != nil {
		t.Errorf("Default() has a file: %q", c.File)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"cloud.name", c.Cloud.Name, CloudPublic},
		{"auth.method", c.Auth.Method, AuthCertificate},
		{"auth.key_bits", c.Auth.KeyBits, 3072},
		{"auth.validity", c.Auth.Validity.Duration(), 365 * day},
		{"auth.renew_before", c.Auth.RenewBefore.Duration(), 30 * day},
		{"intake.settle", c.Intake.Settle.Duration(), 2 * time.Second},
		{"intake.rescan_interval", c.Intake.RescanInterval.Duration(), 60 * time.Second},
		{"intake.poll", c.Intake.Poll, false},
		{"intake.poll_interval", c.Intake.PollInterval.Duration(), 5 * time.Second},
		{"policy.approval", c.Policy.Approval, ApprovalAuto},
		{"policy.min_rsa_bits", c.Policy.MinRSABits, 2048},
		{"policy.min_validity_days", c.Policy.MinValidityDays, 30},
		{"policy.display_name_template", c.Policy.DisplayNameTemplate, ""},
		{"api.listen", c.API.Listen, "127.0.0.1:8471"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, LogText},
		{"log.file", c.Log.File, ""},
		{"graph.timeout", c.Graph.Timeout.Duration(), 30 * time.Second},
		{"graph.max_attempts", c.Graph.MaxAttempts, 6},
		{"monitor.sync_interval", c.Monitor.SyncInterval.Duration(), time.Hour},
		{"monitor.expiry_warning", c.Monitor.ExpiryWarning.Duration(), 30 * day},
		{"notify.webhook_url", c.Notify.WebhookURL, ""},
		{"notify.timeout", c.Notify.Timeout.Duration(), 10 * time.Second},
		{"notify.secret_file", c.Notify.SecretFile, ""},
		{"monitor.expiry_thresholds", fmt.Sprint(c.Monitor.ExpiryThresholds), "[30d 14d 7d 1d]"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("Default() %s = %v, want %v", ck.key, ck.got, ck.want)
		}
	}
	// Default has no IDs: Validate names exactly the three required keys, without lines.
	err := c.Validate()
	es, ok := err.(Errors)
	if !ok || len(es) != 3 {
		t.Fatalf("Default().Validate() = %v, want the three required keys", err)
	}
	for i, key := range []string{"tenant_id", "auth.client_id", "target.app_id"} {
		if es[i].Key != key || es[i].Line != 0 || es[i].File != "" {
			t.Errorf("problem %d = %#v, want key %s without a place", i, es[i], key)
		}
	}
	// Default returns a fresh value each time.
	c.Policy.AllowedSubjects = append(c.Policy.AllowedSubjects, "x")
	if Default().Policy.AllowedSubjects != nil {
		t.Error("Default() shares state between calls")
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		cloud                    Cloud
		wantAuthority, wantGraph string
	}{
		{Cloud{Name: CloudPublic}, "https://login.microsoftonline.com/", "https://graph.microsoft.com"},
		{Cloud{Name: CloudUSGovernment}, "https://login.microsoftonline.us/", "https://graph.microsoft.us"},
		{Cloud{Name: CloudChina}, "https://login.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn"},
		{Cloud{Name: CloudCustom, AuthorityHost: "https://127.0.0.1:8443", GraphURL: "https://127.0.0.1:8443/"},
			"https://127.0.0.1:8443/", "https://127.0.0.1:8443"},
		{Cloud{Name: CloudPublic, AuthorityHost: "https://login.proxy.example/", GraphURL: "https://graph.proxy.example"},
			"https://login.proxy.example/", "https://graph.proxy.example"},
		{Cloud{Name: CloudCustom}, "", ""},
	}
	for _, tt := range tests {
		c := &Config{Cloud: tt.cloud}
		if got := c.AuthorityHost(); got != tt.wantAuthority {
			t.Errorf("AuthorityHost(%+v) = %q, want %q", tt.cloud, got, tt.wantAuthority)
		}
		if got := c.GraphURL(); got != tt.wantGraph {
			t.Errorf("GraphURL(%+v) = %q, want %q", tt.cloud, got, tt.wantGraph)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := mustParse(t, `tenant_id: contoso.onmicrosoft.com
target:
  app_id: 33333333-3333-3333-3333-333333333333
cloud:
  name: custom
  authority_host: https://127.0.0.1:8443/
  graph_url: https://127.0.0.1:8443
  ca_file: `+filepath.Join(dir, "ca.pem")+`
auth:
  client_id: 22222222-2222-2222-2222-222222222222
  key_bits: 4096
  validity: 1d12h
  renew_before: 90m
intake:
  poll: true
  settle: 1.5s
policy:
  approval: manual
  min_validity_days: 0
  allowed_subjects: ["CN=*.example.com", "CN=a: b"]
  allowed_thumbprints: ["3a:7f:09:c2:ab:3a:7f:09:c2:ab:3a:7f:09:c2:ab:3a:7f:09:c2:ab"]
  display_name_template: "{{.CommonName}} until {{.NotAfter}} # not a comment"
notify:
  webhook_url: https://h.example/hook?code=x
  headers:
    Authorization: "Bearer abc: def"
    X-Empty: ""
log:
  level: debug
  format: json
  file: `+filepath.Join(dir, "log", "agent.log")+`
monitor:
  expiry_warning: 0s
`)
	c.Target.AppID = "44444444-4444-4444-4444-444444444444" // set in code, as certagent dev does
	for _, in := range []*Config{c, mustParse(t, valid)} {
		b, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out, err := Parse("marshalled.yaml", b)
		if err != nil {
			t.Fatalf("Parse(Marshal()):\n%v\n%s", err, b)
		}
		if diff := diffConfigs(in, out); diff != "" {
			t.Errorf("Parse(Marshal()) differs:\n%s\nYAML:\n%s", diff, b)
		}
		// Every key is written, so the output documents the effective config in full.
		for _, k := range schemaKeys() {
			if _, ok := out.lines[k.path]; !ok {
				t.Errorf("Marshal() left out %s:\n%s", k.path, b)
			}
		}
	}
	b, _ := c.Marshal()
	for _, s := range []string{"validity: 1d12h\n", "renew_before: 1h30m\n", "settle: 1.5s\n", "min_validity_days: 0\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("Marshal() lacks %q:\n%s", s, b)
		}
	}
}
