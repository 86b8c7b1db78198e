package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// runCmd runs the command line in-process and returns stdout, stderr and the exit code.
func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := exitCode(env, dispatch(context.Background(), env, args))
	return out.String(), errb.String(), code
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"inspect"},
		{"inspect", "--nope", "x.cer"},
		{"config"},
		{"config", "lint"},
		{"credential"},
		{"store"},
		{"store", "repair"},
		{"audit"},
		{"audit", "check"},
		{"doctor", "--nope"},
	} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("certagent %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if out, _, code := runCmd(t, "help"); code != 0 || !strings.Contains(out, "inspect") {
		t.Errorf("certagent help: exit %d, output %q", code, out)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good := certtest.New(now, certtest.CommonName("good provider"))
	expired := certtest.New(now, certtest.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour)))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := write("good.cer", good.PEM())
	e := write("expired.cer", expired.PEM())
	k := write("key.pem", append(good.PEM(), good.KeyPEM()...))

	out, _, code := runCmd(t, "inspect", g)
	if code != 0 || !strings.Contains(out, "accepted") || !strings.Contains(out, good.Cert.Subject.CommonName) {
		t.Errorf("inspect good: exit %d\n%s", code, out)
	}

	out, _, code = runCmd(t, "inspect", g, e, k, "--json")
	if code != 1 {
		t.Errorf("inspect with rejections: exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("inspect --json printed %d lines, want one per file:\n%s", len(lines), out)
	}
	want := []struct{ verdict, code string }{{"accepted", ""}, {"rejected", "expired"}, {"rejected", "contains_private_key"}}
	for i, line := range lines {
		var r struct {
			File    string `json:"file"`
			Verdict string `json:"verdict"`
			Reason  *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"reason"`
			Certificate *struct {
				Thumbprint string `json:"thumbprint"`
			} `json:"certificate"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		if r.Verdict != want[i].verdict {
			t.Errorf("line %d verdict = %s, want %s", i, r.Verdict, want[i].verdict)
		}
		if want[i].code == "" && r.Reason != nil || want[i].code != "" && (r.Reason == nil || r.Reason.Code != want[i].code) {
			t.Errorf("line %d reason = %+v, want %q", i, r.Reason, want[i].code)
		}
		if r.Certificate == nil {
			t.Errorf("line %d has no certificate facts", i)
		}
	}
	if strings.Contains(out, "PRIVATE KEY-----") {
		t.Error("inspect echoed key material")
	}
}

func TestConfigCheck(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := runCmd(t, "config", "check", "-c", filepath.Join(root, "configs", "certagent.example.yaml"))
	if code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("config check of the example: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("tenant_id: contoso.onmicrosoft.com\ncloud:\n  nmae: public\npolicy:\n  min_rsa_bits: 512\n  approval: sometimes\napi:\n  listen: 0.0.0.0:8471\n"), 0o644)
	out, errOut, code := runCmd(t, "config", "check", "-c", bad)
	if code != 1 {
		t.Errorf("config check of a bad file: exit %d, want 1", code)
	}
	for _, want := range []string{bad + ":3: cloud.nmae", bad + ":5: policy.min_rsa_bits", bad + ":6: policy.approval", bad + ":8: api.listen", "auth.client_id", "target.app_id"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "problem") {
		t.Errorf("stderr = %q, want a count of problems", errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "certagent ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
