package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// want is one expected problem: its line, key, and the message or a part of it.
type want struct {
	line int
	key  string
	msg  string // the whole message, or a part of it when part is set
	part bool
}

func checkErrors(t *testing.T, data string, es Errors, wants []want) {
	t.Helper()
	if len(es) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v\ninput:\n%s", len(es), len(wants), es, data)
	}
	for i, w := range wants {
		e := es[i]
		msgOK := e.Msg == w.msg || w.part && strings.Contains(e.Msg, w.msg)
		if e.File != "x.yaml" || e.Line != w.line || e.Key != w.key || !msgOK {
			t.Errorf("problem %d = %s (line %d, key %q), want line %d, key %q, message %q", i, e, e.Line, e.Key, w.line, w.key, w.msg)
		}
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []want
	}{
		{
			name: "unknown key",
			in:   valid + "cloud:\n  nmae: public\n",
			want: []want{{7, "cloud.nmae", `unknown key (did you mean "name"?)`, false}},
		},
		{
			name: "unknown key in the wrong case",
			in:   valid + "Drop_Folder: /srv/drop\n",
			want: []want{{6, "Drop_Folder", `unknown key (did you mean "drop_folder"?)`, false}},
		},
		{
			name: "key of another section",
			in:   valid + "min_rsa_bits: 4096\n",
			want: []want{{6, "min_rsa_bits", `unknown key (did you mean "policy.min_rsa_bits"?)`, false}},
		},
		{
			name: "key of two other sections",
			in:   valid + "timeout: 5s\n",
			want: []want{{6, "timeout", `unknown key (did you mean "graph.timeout" or "notify.timeout"?)`, false}},
		},
		{
			name: "dotted key written flat",
			in:   valid + "policy.approval: manual\n",
			want: []want{{6, "policy.approval", `unknown key (did you mean "approval" nested under "policy"?)`, false}},
		},
		{
			name: "unknown key without a likely meaning",
			in:   valid + "log:\n  colour: true\n",
			want: []want{{7, "log.colour", "unknown key", false}},
		},
		{
			name: "wrong type: string for a number",
			in:   valid + "policy:\n  min_rsa_bits: abc\n",
			want: []want{{7, "policy.min_rsa_bits", `must be a whole number, not the string "abc"`, false}},
		},
		{
			name: "wrong type: quoted number",
			in:   valid + "graph:\n  max_attempts: \"6\"\n",
			want: []want{{7, "graph.max_attempts", `must be a whole number, not the string "6"`, false}},
		},
		{
			name: "wrong type: float for a number",
			in:   valid + "graph:\n  max_attempts: 2.5\n",
			want: []want{{7, "graph.max_attempts", "must be a whole number, not the number 2.5", false}},
		},
		{
			name: "number out of range",
			in:   valid + "graph:\n  max_attempts: 99999999999999999999\n",
			want: []want{{7, "graph.max_attempts", "must be a whole number, not the number 99999999999999999999", false}},
		},
		{
			name: "wrong type: list for a string",
			in:   "tenant_id: [a, b]\n" + valid[strings.IndexByte(valid, '\n')+1:],
			want: []want{{1, "tenant_id", "must be a string, not a list", false}},
		},
		{
			name: "wrong type: string for a section",
			in:   valid + "policy: manual\n",
			want: []want{{6, "policy", `must be a section of keys, not the string "manual"`, false}},
		},
		{
			name: "wrong type: string for a list",
			in:   valid + "policy:\n  allowed_subjects: CN=app\n",
			want: []want{{7, "policy.allowed_subjects", `must be a list, not the string "CN=app"; for one item write ["CN=app"]`, false}},
		},
		{
			name: "wrong type: list item",
			in:   valid + "policy:\n  allowed_issuers:\n    - CN=ok\n    - {cn: x}\n",
			want: []want{{9, "policy.allowed_issuers[1]", "must be a string, not a section of keys", false}},
		},
		{
			name: "wrong type: bool",
			in:   valid + "intake:\n  poll: yes\n",
			want: []want{{7, "intake.poll", `must be true or false, not the string "yes"`, false}},
		},
		{
			name: "bad duration",
			in:   valid + "intake:\n  settle: 2x\n",
			want: []want{{7, "intake.settle", `invalid duration "2x": unknown unit "x"`, true}},
		},
		{
			name: "duration without unit",
			in:   valid + "graph:\n  timeout: 30\n",
			want: []want{{7, "graph.timeout", `must be a duration with a unit, such as "30s" or "30d", not the number 30`, false}},
		},
		{
			name: "duration as a list",
			in:   valid + "graph:\n  timeout: [30s]\n",
			want: []want{{7, "graph.timeout", `must be a duration such as "30s" or "1d", not a list`, false}},
		},
		{
			name: "days as a duration that is not whole days",
			in:   valid + "policy:\n  min_validity_days: 36h\n",
			want: []want{{7, "policy.min_validity_days", "must be whole days, not 1d12h", false}},
		},
		{
			name: "days as nonsense",
			in:   valid + "policy:\n  min_validity_days: month\n",
			want: []want{{7, "policy.min_validity_days", `must be a number of days (30) or a duration in whole days ("30d"), not the string "month"`, false}},
		},
		{
			name: "non-loopback listen",
			in:   valid + "api:\n  listen: 0.0.0.0:8471\n",
			want: []want{{7, "api.listen", "0.0.0.0 is not a loopback address; the API listens on loopback only (127.0.0.1, ::1 or localhost)", false}},
		},
		{
			name: "listen on a name",
			in:   valid + "api:\n  listen: myhost:8471\n",
			want: []want{{7, "api.listen", `"myhost" is not an IP address or localhost (names are not looked up)`, true}},
		},
		{
			name: "duplicate key",
			in:   valid + "log:\n  level: info\n  level: debug\n",
			want: []want{{8, "log.level", "duplicate key (first at line 7)", false}},
		},
		{
			name: "duplicate section",
			in:   valid + "auth:\n  key_bits: 4096\n",
			want: []want{{6, "auth", "duplicate key (first at line 2)", false}},
		},
		{
			name: "duplicate header name in another case",
			in:   valid + "notify:\n  webhook_url: https://h.example/x\n  headers:\n    X-Key: a\n    x-key: b\n",
			want: []want{{10, "notify.headers.x-key", "duplicate name (first at line 9; case does not matter)", false}},
		},
		{
			name: "missing required keys at line 1",
			in:   "drop_folder: /srv/drop\n",
			want: []want{
				{1, "tenant_id", "is required: ", true},
				{1, "auth.client_id", "is required: ", true},
				{1, "target.app_id", "is required: ", true},
			},
		},
		{
			name: "missing required key at its section",
			in:   "tenant_id: contoso.onmicrosoft.com\nauth:\n  key_bits: 4096\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333\n",
			want: []want{{2, "auth.client_id", "is required: the application (client) ID of the agent's own app registration (`certagent setup` creates it and writes it here)", false}},
		},
		{
			name: "duplicate top-level key",
			in:   valid + "tenant_id: \"\"\n",
			want: []want{{6, "tenant_id", "duplicate key (first at line 1)", false}},
		},
		{
			name: "required key empty",
			in:   "tenant_id: \"\"\n" + valid[strings.IndexByte(valid, '\n')+1:],
			want: []want{{1, "tenant_id", "is required: ", true}},
		},
		{
			name: "required key null",
			in:   "tenant_id:\n" + valid[strings.IndexByte(valid, '\n')+1:],
			want: []want{{1, "tenant_id", "is required: ", true}},
		},
		{
			name: "bad GUIDs and tenant",
			in:   "tenant_id: common\nauth:\n  client_id: 2222\ntarget:\n  app_id: \"{33333333-3333-3333-3333-333333333333}\"\n",
			want: []want{
				{1, "tenant_id", `"common" names no tenant`, true},
				{3, "auth.client_id", `"2222" is not a GUID (8-4-4-4-12 hex digits, as the Azure portal shows it)`, false},
				{5, "target.app_id", `"{33333333-3333-3333-3333-333333333333}" must be written without braces`, false},
			},
		},
		{
			name: "target is the agent's own app",
			in:   "tenant_id: contoso.onmicrosoft.com\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\ntarget:\n  app_id: 22222222-2222-2222-2222-222222222222\n",
			want: []want{{5, "target.app_id", "must not be auth.client_id", true}},
		},
		{
			name: "custom cloud without endpoints",
			in:   valid + "cloud:\n  name: custom\n",
			want: []want{
				{6, "cloud.authority_host", "is required: with cloud.name custom", true},
				{6, "cloud.graph_url", "is required: with cloud.name custom", true},
			},
		},
		{
			name: "unknown cloud and plain http",
			in:   valid + "cloud:\n  name: azure\n  authority_host: http://127.0.0.1:8443/\n  graph_url: https://graph.microsoft.com/v1.0\n",
			want: []want{
				{7, "cloud.name", `must be public, usgovernment, china or custom, not "azure"`, false},
				{8, "cloud.authority_host", `must be an https:// URL, not "http://127.0.0.1:8443/"`, false},
				{9, "cloud.graph_url", "must not include the API version (v1.0)", true},
			},
		},
		{
			name: "renew_before not shorter than validity",
			in: "tenant_id: contoso.onmicrosoft.com\nauth:\n  client_id: 22222222-2222-2222-2222-222222222222\n" +
				"  method: password\n  key_bits: 1024\n  validity: 30d\n  renew_before: 30d\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333\n",
			want: []want{
				{4, "auth.method", `must be "certificate" (the only method today), not "password"`, false},
				{5, "auth.key_bits", "must be 2048, 3072 or 4096, not 1024", false},
				{7, "auth.renew_before", "must be shorter than auth.validity (30d), not 30d", true},
			},
		},
		{
			name: "zero and negative intervals",
			in:   valid + "intake:\n  settle: 0s\n  rescan_interval: -1m\n  poll_interval: 0\nmonitor:\n  sync_interval: 30s\n  expiry_warning: -1d\nnotify:\n  timeout: 0s\n",
			want: []want{
				{7, "intake.settle", "must be positive, not 0s", false},
				{8, "intake.rescan_interval", "must be positive, not -1m", false},
				{9, "intake.poll_interval", "must be positive, not 0s", false},
				{11, "monitor.sync_interval", "must be at least 1m, not 30s", false},
				{12, "monitor.expiry_warning", "must not be negative", true},
				{14, "notify.timeout", "must be positive, not 0s", false},
			},
		},
		{
			name: "policy problems",
			in: valid + "policy:\n  approval: Manual\n  min_rsa_bits: 512\n  min_validity_days: -1\n" +
				"  allowed_thumbprints:\n    - 3A7F09C2AB3A7F09C2AB3A7F09C2AB3A7F09C2AB\n    - nope\n" +
				"  display_name_template: \"{{.Nmae}}\"\n",
			want: []want{
				{7, "policy.approval", `must be auto or manual, not "Manual"`, false},
				{8, "policy.min_rsa_bits", "512 is below 1024", true},
				{9, "policy.min_validity_days", "must not be negative", true},
				{12, "policy.allowed_thumbprints[1]", `"nope" is not a SHA-1 thumbprint (40 hex digits)`, false},
				{13, "policy.display_name_template", "Nmae", true},
			},
		},
		{
			name: "template syntax error",
			in:   valid + "policy:\n  display_name_template: \"{{.CommonName\"\n",
			want: []want{{7, "policy.display_name_template", "unclosed action", true}},
		},
		{
			name: "log, graph and notify values",
			in: valid + "log:\n  level: verbose\n  format: xml\ngraph:\n  timeout: 100ms\n  max_attempts: 0\n" +
				"notify:\n  webhook_url: https://user:pw@h.example/hook\n  headers:\n    Bad Name: x\n    Host: h\n",
			want: []want{
				{7, "log.level", `must be debug, info, warn or error, not "verbose"`, false},
				{8, "log.format", `must be text or json, not "xml"`, false},
				{10, "graph.timeout", "must be at least 1s, not 100ms", false},
				{11, "graph.max_attempts", "must be from 1 to 100, not 0", false},
				{13, "notify.webhook_url", "must not hold a user name or password", false},
				{15, `notify.headers["Bad Name"]`, `"Bad Name" is not a valid HTTP header name`, false},
				{16, "notify.headers.Host", "is set by the HTTP client and cannot be configured", false},
			},
		},
		{
			name: "expiry thresholds and webhook headers",
			in:   valid + "monitor:\n  expiry_thresholds: [30d, 12h, 30d, 1.5d, 0, -1d]\nnotify:\n  headers:\n    Webhook-Signature: x\n    content-type: text/plain\n",
			want: []want{
				{7, "monitor.expiry_thresholds[1]", "must be whole days, at least 1d, not 12h", false},
				{7, "monitor.expiry_thresholds[2]", "30d is listed twice", false},
				{7, "monitor.expiry_thresholds[3]", "must be whole days, at least 1d, not 1d12h", false},
				{7, "monitor.expiry_thresholds[4]", "must be whole days, at least 1d, not 0s", false},
				{7, "monitor.expiry_thresholds[5]", "must be whole days, at least 1d, not -1d", false},
				{10, "notify.headers.Webhook-Signature", "is set by certagent (Standard Webhooks) and cannot be configured", false},
				{11, "notify.headers.content-type", "is set by certagent (Standard Webhooks) and cannot be configured", false},
			},
		},
		{
			name: "expiry thresholds not a list of durations",
			in:   valid + "monitor:\n  expiry_thresholds: 30d\n",
			want: []want{{7, "monitor.expiry_thresholds", "must be a list, not", true}},
		},
		{
			name: "expiry threshold without a unit",
			in:   valid + "monitor:\n  expiry_thresholds:\n    - 30\n    - 7d\n",
			want: []want{{8, "monitor.expiry_thresholds[0]", `must be a duration with a unit, such as "30s" or "30d", not the number 30`, false}},
		},
		{
			name: "paths on top of each other",
			in:   valid + "state_dir: /srv/ca\ndrop_folder: /srv/ca\napi:\n  token_file: /srv/ca/agent.key\n",
			want: []want{
				// Paths in messages are resolved: C:\srv\ca on Windows.
				{7, "drop_folder", "must not be state_dir (", true},
				{9, "api.token_file", "is the same file as auth.key_file (", true},
			},
		},
		{
			name: "log file in the drop folder",
			in:   valid + "drop_folder: /srv/drop\nlog:\n  file: /srv/drop/agent.log\n",
			want: []want{{6, "drop_folder", "must not hold log.file (", true}},
		},
		{
			name: "several problems reported together in line order",
			in: "tenant_id: 11111111-1111-1111-1111-111111111111\n" + // 1
				"cloud:\n" + // 2
				"  nmae: public\n" + // 3: unknown key (decode)
				"auth:\n" + // 4
				"  client_id: 22222222-2222-2222-2222-222222222222\n" + // 5
				"  key_bits: 1000\n" + // 6: bad value (validate)
				"target:\n" + // 7
				"  app_id: 33333333-3333-3333-3333-333333333333\n" + // 8
				"intake:\n" + // 9
				"  settle: soon\n" + // 10: bad duration (decode)
				"policy:\n" + // 11
				"  min_rsa_bits: 512\n" + // 12: bad value (validate)
				"api:\n" + // 13
				"  listen: 10.0.0.1:8471\n", // 14: non-loopback (validate)
			want: []want{
				{3, "cloud.nmae", `unknown key (did you mean "name"?)`, false},
				{6, "auth.key_bits", "must be 2048, 3072 or 4096, not 1000", false},
				{10, "intake.settle", "invalid duration", true},
				{12, "policy.min_rsa_bits", "512 is below 1024", true},
				{14, "api.listen", "10.0.0.1 is not a loopback address", true},
			},
		},
		{
			name: "a value that failed to decode is not validated again",
			in:   "tenant_id: {a: b}\nauth: [x]\ntarget:\n  app_id: 33333333-3333-3333-3333-333333333333\n",
			want: []want{
				{1, "tenant_id", "must be a string, not a section of keys", false},
				{2, "auth", "must be a section of keys, not a list", false},
			},
		},
		{
			name: "not a mapping",
			in:   "- tenant_id: x\n",
			want: []want{{1, "", "the file must be a mapping of keys (tenant_id: ..., auth: ...), not a list", false}},
		},
		{
			name: "not a mapping: a scalar",
			in:   "\n\nhello\n",
			want: []want{{3, "", `the file must be a mapping of keys (tenant_id: ..., auth: ...), not the string "hello"`, false}},
		},
		{
			name: "syntax error with its line",
			in:   valid + "log:\n  level: info\n format: json\n",
			want: []want{{8, "", "syntax error: did not find expected key", false}},
		},
		{
			name: "syntax error: tab indentation",
			in:   valid + "log:\n\tlevel: info\n",
			want: []want{{7, "", "syntax error: found character that cannot start any token (YAML indentation must be spaces, not tabs)", false}},
		},
		{
			name: "syntax error: unclosed quote",
			in:   valid + "drop_folder: \"C:\\drop\n",
			want: []want{{6, "", "syntax error: ", true}},
		},
		{
			name: "syntax error on line 1",
			in:   "tenant_id: a: b\n",
			want: []want{{1, "", "syntax error: mapping values are not allowed in this context", false}},
		},
		{
			name: "syntax error: list item in a mapping",
			in:   valid + "log:\n  level: info\n- file: x\n",
			want: []want{{8, "", "syntax error: did not find expected key", false}},
		},
		{
			name: "syntax error: indented list item in a mapping",
			in:   valid + "log:\n  level: info\n  format: json\n  - file: x\n  file: y\n",
			want: []want{{9, "", "syntax error: did not find expected key", false}},
		},
		{
			name: "syntax error: unclosed flow list",
			in:   valid + "policy:\n  allowed_subjects: [CN=a, CN=b\n  approval: auto\n",
			want: []want{{7, "", "syntax error: did not find expected ',' or ']'", false}},
		},
		{
			name: "syntax error: unknown anchor",
			in:   valid + "log:\n  level: *lvl\n",
			want: []want{{7, "", "syntax error: unknown anchor 'lvl' referenced", false}},
		},
		{
			name: "control character",
			in:   valid + "drop_folder: /srv/\x01drop\n",
			want: []want{{6, "", "syntax error: control characters are not allowed", false}},
		},
		{
			name: "invalid UTF-8",
			in:   valid + "log:\n  file: /var/log/\xff.log\n",
			want: []want{{7, "", "syntax error: ", true}},
		},
		{
			name: "second document",
			in:   valid + "---\ntenant_id: x\n",
			want: []want{{6, "", "a second YAML document starts at this ---; a config file holds one", false}},
		},
		{
			name: "merge key",
			in:   valid + "x-defaults: &d\n  level: info\nlog:\n  <<: *d\n",
			want: []want{
				{6, "x-defaults", "unknown key", false},
				{9, "log.<<", "merge keys (<<) are not supported; write the keys out", false},
			},
		},
		{
			name: "non-string key",
			in:   valid + "? [a, b]\n: c\n",
			want: []want{{6, "", "a key must be a plain name, not a list", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, tt.in, parseErrors(t, tt.in), tt.want)
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "/etc/certagent/certagent.yaml", Line: 12, Key: "policy.min_rsa_bits", Msg: "must be at least 1024, got 512"},
			"/etc/certagent/certagent.yaml:12: policy.min_rsa_bits: must be at least 1024, got 512"},
		{Error{File: "x.yaml", Key: "auth.key_file", Msg: "m"}, "x.yaml: auth.key_file: m"},
		{Error{File: "x.yaml", Line: 3, Msg: "syntax error: s"}, "x.yaml:3: syntax error: s"},
		{Error{Key: "tenant_id", Msg: "m"}, "tenant_id: m"},
		{Error{Line: 2, Key: "k", Msg: "m"}, "line 2: k: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	es := Errors{{File: "a", Line: 1, Key: "k", Msg: "one"}, {File: "a", Line: 2, Key: "l", Msg: "two"}}
	if got, want := es.Error(), "a:1: k: one\na:2: l: two"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(es), &e) || e.Msg != "one" {
		t.Errorf("errors.As(Errors, *Error) = %v", e)
	}
}

func TestParseEncodings(t *testing.T) {
	bom := "\xEF\xBB\xBF" + valid
	mustParse(t, bom)
	mustParse(t, strings.ReplaceAll(valid, "\n", "\r\n"))

	// Windows PowerShell 5.1's Out-File writes UTF-16 LE with a BOM.
	u := utf16.Encode([]rune(valid + "log:\n  level: warn\n"))
	b := []byte{0xFF, 0xFE}
	for _, r := range u {
		b = append(b, byte(r), byte(r>>8))
	}
	c, err := Parse("x.yaml", b)
	if err != nil {
		t.Fatalf("Parse(UTF-16): %v", err)
	}
	if c.Log.Level != "warn" {
		t.Errorf("UTF-16: log.level = %q, want warn", c.Log.Level)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		es := parseErrors(t, in)
		if len(es) != 3 {
			t.Errorf("Parse(%q) = %v, want the 3 required keys missing", in, es)
			continue
		}
		for _, e := range es {
			if e.Line != 1 || !strings.HasPrefix(e.Msg, "is required") {
				t.Errorf("Parse(%q): %v, want line 1, is required", in, e)
			}
		}
	}
}

func TestParseValues(t *testing.T) {
	c := mustParse(t, valid+`
cloud:
  name: usgovernment
log:
drop_folder: /srv/drop
intake:
  poll: true
  poll_interval: 1m30s
policy:
  approval: manual
  min_validity_days: 14d
  allowed_subjects: ["CN=*.example.com"]
  allowed_issuers:
    - CN=Issuer A
    - CN=Issuer B
  allowed_thumbprints: []
notify:
  webhook_url: https://provider.example.com/hook?code=abc
  headers:
    Authorization: Bearer x
graph:
  max_attempts: 0x0A
monitor:
  expiry_warning: 0
`)
	if c.Cloud.Name != CloudUSGovernment || c.AuthorityHost() != "https://login.microsoftonline.us/" {
		t.Errorf("cloud = %+v, authority %s", c.Cloud, c.AuthorityHost())
	}
	if c.Log.Level != "info" || c.Log.Format != LogText {
		t.Errorf("a null log section lost its defaults: %+v", c.Log)
	}
	if !c.Intake.Poll || c.Intake.PollInterval.Duration().Seconds() != 90 {
		t.Errorf("intake = %+v", c.Intake)
	}
	if c.Policy.Approval != ApprovalManual || c.Policy.MinValidityDays != 14 {
		t.Errorf("policy = %+v", c.Policy)
	}
	if len(c.Policy.AllowedSubjects) != 1 || len(c.Policy.AllowedIssuers) != 2 || c.Policy.AllowedIssuers[1] != "CN=Issuer B" || c.Policy.AllowedThumbprints != nil {
		t.Errorf("allow-lists = %q %q %q", c.Policy.AllowedSubjects, c.Policy.AllowedIssuers, c.Policy.AllowedThumbprints)
	}
	if c.Notify.Headers["Authorization"] != "Bearer x" {
		t.Errorf("headers = %v", c.Notify.Headers)
	}
	if c.Graph.MaxAttempts != 10 {
		t.Errorf("max_attempts = %d, want 10", c.Graph.MaxAttempts)
	}
	if c.Monitor.ExpiryWarning != 0 {
		t.Errorf("expiry_warning = %s, want 0s", c.Monitor.ExpiryWarning)
	}
	if got := c.Policy.CertPolicy(); got.MinValidity.Hours() != 14*24 || got.MinRSABits != 2048 {
		t.Errorf("CertPolicy() = %+v", got)
	}
}

func TestParseAliasesAndNormalizing(t *testing.T) {
	c := mustParse(t, `
tenant_id: &t 1111AAAA-1111-1111-1111-111111111111
auth:
  client_id: 2222BBBB-2222-2222-2222-222222222222
target:
  app_id: 33333333-3333-3333-3333-333333333333
policy:
  allowed_subjects: &names ["CN=a", "CN=b"]
  allowed_issuers: *names
`)
	if c.TenantID != "1111aaaa-1111-1111-1111-111111111111" || c.Auth.ClientID != "2222bbbb-2222-2222-2222-222222222222" {
		t.Errorf("GUIDs not lower-cased: %s %s", c.TenantID, c.Auth.ClientID)
	}
	if len(c.Policy.AllowedIssuers) != 2 || c.Policy.AllowedIssuers[1] != "CN=b" {
		t.Errorf("alias not followed: %q", c.Policy.AllowedIssuers)
	}
}

// TestParseSelfAlias checks that an alias to the mapping holding it does not loop.
func TestParseSelfAlias(t *testing.T) {
	es := parseErrors(t, valid+"log: &l\n  file: *l\n")
	checkErrors(t, "", es, []want{{6, "log.file", "must be a string, not a section of keys", false}})
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "certagent.yaml")
	in := valid + `
state_dir: state
drop_folder: ../drop
cloud:
  ca_file: ca/emulator.pem
log:
  file: ./logs/agent.log
`
	c, err := Parse(file, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "conf")
	tests := []struct{ key, got, want string }{
		{"state_dir", c.StateDir, filepath.Join(confDir, "state")},
		{"drop_folder", c.DropFolder, filepath.Join(dir, "drop")},
		{"cloud.ca_file", c.Cloud.CAFile, filepath.Join(confDir, "ca", "emulator.pem")},
		{"log.file", c.Log.File, filepath.Join(confDir, "logs", "agent.log")},
		// Derived from the resolved state_dir.
		{"auth.certificate_file", c.Auth.CertificateFile, filepath.Join(confDir, "state", "agent.pem")},
		{"auth.key_file", c.Auth.KeyFile, filepath.Join(confDir, "state", "agent.key")},
		{"api.token_file", c.API.TokenFile, filepath.Join(confDir, "state", "api.token")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}

	// Load resolves against the file's directory too, whatever the current directory.
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.StateDir != filepath.Join(confDir, "state") || loaded.File != file {
		t.Errorf("Load: state_dir = %q, File = %q", loaded.StateDir, loaded.File)
	}
}

func TestResolvePath(t *testing.T) {
	base := filepath.FromSlash("/etc/certagent")
	tests := []struct{ in, want string }{
		{"", ""},
		{"state", filepath.FromSlash("/etc/certagent/state")},
		{"./a/../b", filepath.FromSlash("/etc/certagent/b")},
		{"../x", filepath.FromSlash("/etc/x")},
	}
	if filepath.Separator == '/' {
		tests = append(tests, struct{ in, want string }{"/var/lib//x/", "/var/lib/x"})
	}
	for _, tt := range tests {
		if got, msg := resolvePath(base, tt.in); got != tt.want || msg != "" {
			t.Errorf("resolvePath(%q, %q) = %q, %q, want %q", base, tt.in, got, msg, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, ok := err.(Errors); ok {
		t.Errorf("Load(missing) returned Errors, want a read error")
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(valid+strings.Repeat("# padding\n", maxFileSize/10+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if es, ok := err.(Errors); !ok || len(es) != 1 || !strings.Contains(es[0].Msg, "larger than 1 MiB") {
		t.Errorf("Load(big) = %v, want one problem: larger than 1 MiB", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(valid+"api:\n  listen: 0.0.0.0:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if es, ok := err.(Errors); !ok || len(es) != 1 || es[0].File != bad || es[0].Line != 7 {
		t.Errorf("Load(bad) = %#v, want one problem at %s:7", err, bad)
	}
}

func TestYAMLLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\rb\r", []string{"a", "b"}},
		{"a\n\nb", []string{"a", "", "b"}},
		{"a\u0085b\u2028c\u2029d", []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		var got []string
		for _, l := range yamlLines([]byte(tt.in)) {
			got = append(got, string(l))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("yamlLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseLineBreaks checks that lines are counted the way YAML counts them, with old Mac
// line breaks too.
func TestParseLineBreaks(t *testing.T) {
	in := strings.ReplaceAll(valid+"log:\n  level: loud\n", "\n", "\r")
	checkErrors(t, in, parseErrors(t, in), []want{{7, "log.level", `must be debug, info, warn or error, not "loud"`, false}})
	in = strings.ReplaceAll(valid+"log:\n  level: info\n  - x\n", "\n", "\r\n")
	checkErrors(t, in, parseErrors(t, in), []want{{8, "", "syntax error: did not find expected key", false}})
}

func TestParseBadUTF16(t *testing.T) {
	es := parseErrors(t, "\xff\xfea\x00:")
	checkErrors(t, "", es, []want{{1, "", "not UTF-16 (odd length)", true}})
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(examplePath, data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseEmptyStringsKeepDefaults(t *testing.T) {
	c := mustParse(t, `tenant_id: contoso.onmicrosoft.com
target:
  app_id: 33333333-3333-3333-3333-333333333333
cloud:
  name: ""
auth:
  client_id: 22222222-2222-2222-2222-222222222222
  method: ""
policy:
  approval: ""
api:
  listen: ""
log:
  level: ""
  format: ""
`)
	d := Default()
	if c.Cloud.Name != d.Cloud.Name || c.Auth.Method != d.Auth.Method || c.Policy.Approval != d.Policy.Approval ||
		c.API.Listen != d.API.Listen || c.Log.Level != d.Log.Level || c.Log.Format != d.Log.Format {
		t.Errorf(`"" did not keep the defaults: %+v %+v %+v %+v %+v`, c.Cloud, c.Auth, c.Policy, c.API, c.Log)
	}
}
