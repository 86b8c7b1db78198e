package config

import (
	"strings"
	"testing"
)

func TestListenProblem(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8471", true},
		{"127.0.0.2:8471", true},
		{"[::1]:8471", true},
		{"localhost:8471", true},
		{"LOCALHOST:1", true},
		{"[::ffff:127.0.0.1]:8471", true},
		{"0.0.0.0:8471", false},
		{":8471", false},
		{"[::]:8471", false},
		{"10.1.2.3:8471", false},
		{"[fe80::1%eth0]:8471", false},
		{"localhost.example.com:8471", false},
		{"myhost:8471", false},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:http", false},
		{"", false},
	}
	for _, tt := range tests {
		if msg := listenProblem(tt.addr); (msg == "") != tt.ok {
			t.Errorf("listenProblem(%q) = %q, want ok=%v", tt.addr, msg, tt.ok)
		}
	}
}

func TestURLProblem(t *testing.T) {
	tests := []struct {
		url       string
		withQuery bool
		want      string // "" for no problem, else part of the message
	}{
		{"https://login.microsoftonline.com/", false, ""},
		{"https://127.0.0.1:8443", false, ""},
		{"https://[::1]:8443/", false, ""},
		{"https://proxy.example/graph", false, ""},
		{"https://h.example/hook?code=x", true, ""},
		{"http://localhost:8443", false, "must be an https:// URL"},
		{"HTTPS://h.example", false, ""}, // url.Parse lower-cases the scheme
		{"login.microsoftonline.com", false, "must be an https:// URL"},
		{"https://", false, "has no host"},
		{"https://:443/", false, "has no host"},
		{"https://u:p@h.example/", false, "user name or password"},
		{"https://h.example/#x", false, "#fragment"},
		{"https://h.example/?a=b", false, "?query"},
		{"https://h.example:0/", false, "port must be"},
		{"https://h.example:99999/", false, "port must be"},
		{"https://h .example/", false, "is not a URL"},
	}
	for _, tt := range tests {
		got := urlProblem(tt.url, tt.withQuery)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("urlProblem(%q, %v) = %q, want %q", tt.url, tt.withQuery, got, tt.want)
		}
	}
}

func TestGUIDAndTenant(t *testing.T) {
	guids := []struct {
		in   string
		want string
	}{
		{"11111111-2222-3333-4444-555555555555", ""},
		{"AbCdEf01-2345-6789-abcd-ef0123456789", ""},
		{"00000000-0000-0000-0000-000000000000", "nil GUID"},
		{"{11111111-2222-3333-4444-555555555555}", "without braces"},
		{"11111111222233334444555555555555", "is not a GUID"},
		{"11111111-2222-3333-4444-55555555555g", "is not a GUID"},
		{"11111111-2222-3333-4444-5555555555555", "is not a GUID"},
		{"11111111_2222_3333_4444_555555555555", "is not a GUID"},
	}
	for _, tt := range guids {
		got := guidProblem(tt.in)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("guidProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	domains := []struct {
		in string
		ok bool
	}{
		{"contoso.onmicrosoft.com", true},
		{"Contoso.COM", true},
		{"sub-1.contoso.com.", true},
		{"contoso", false},
		{"-contoso.com", false},
		{"contoso-.com", false},
		{"con_toso.com", false},
		{"contoso..com", false},
		{"10.0.0.1", false},
		{"https://contoso.com", false},
		{strings.Repeat("a", 64) + ".com", false},
		{strings.Repeat("a.", 127) + "com", false},
	}
	for _, tt := range domains {
		if got := isDomain(tt.in); got != tt.ok {
			t.Errorf("isDomain(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"name", "name", 0},
		{"nmae", "name", 1},
		{"nam", "name", 1},
		{"nome", "name", 1},
		{"level", "file", 4},
		{"", "abc", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestValidateInCode checks a Config built in code, as certagent dev builds one: no lines,
// and paths that must be absolute.
func TestValidateInCode(t *testing.T) {
	c := Default()
	c.File = "dev.yaml"
	c.TenantID = "11111111-1111-1111-1111-111111111111"
	c.Auth.ClientID = "22222222-2222-2222-2222-222222222222"
	c.Target.AppID = "33333333-3333-3333-3333-333333333333"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	c.StateDir = "relative/state"
	c.Auth.KeyFile = ""
	c.Notify.Headers = map[string]string{"b\n": "x", "A": "line1\nline2"}
	err := c.Validate()
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("Validate() = %v, want Errors", err)
	}
	got := make([]string, len(es))
	for i, e := range es {
		got[i] = e.Error()
	}
	want := []string{
		`dev.yaml: state_dir: must be an absolute path, not "relative/state"`,
		`dev.yaml: auth.key_file: is required: the agent's private key file`,
		`dev.yaml: notify.headers.A: the value must be one line`,
		`dev.yaml: notify.headers["b\n"]: "b\n" is not a valid HTTP header name`,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
