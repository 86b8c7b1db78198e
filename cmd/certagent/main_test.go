package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
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

// openssl runs the openssl command line in dir (the provider's tool); a missing openssl fails
// the test.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestInspectSignature: `inspect FILE --signature FILE.sig` gives the drop folder's verdict
// with the config's provenance: accepted and naming the key for the provider's openssl
// signature (given, or found beside the file), refused without one, for other bytes, for
// another key, truncated; a signature file alone is not a certificate.
func TestInspectSignature(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert := certtest.New(now, certtest.CommonName("signed provider"))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.cer", cert.PEM())
	bare := write("unsigned.cer", cert.PEM())
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "provider.key")
	openssl(t, dir, "pkey", "-in", "provider.key", "-pubout", "-out", "provider.pub")
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "stranger.key")
	openssl(t, dir, "dgst", "-sha256", "-sign", "provider.key", "-out", "good.cer.sig", "good.cer")
	openssl(t, dir, "dgst", "-sha256", "-sign", "provider.key", "-out", "other.sig", "provider.pub")
	openssl(t, dir, "dgst", "-sha256", "-sign", "stranger.key", "-out", "stranger.sig", "good.cer")
	sig, _ := os.ReadFile(filepath.Join(dir, "good.cer.sig"))
	write("truncated.sig", sig[:len(sig)-5])
	cfg := write("certagent.yaml", []byte(`tenant_id: 11111111-1111-1111-1111-111111111111
auth:
  client_id: 22222222-2222-2222-2222-222222222222
target:
  app_id: 33333333-3333-3333-3333-333333333333
state_dir: `+filepath.Join(dir, "state")+`
drop_folder: `+filepath.Join(dir, "drop")+`
provenance:
  required: true
  keys: [provider.pub]
`))

	tests := []struct {
		name string
		args []string
		code string // "" accepted
	}{
		{"beside", []string{good}, ""},
		{"given", []string{bare, "--signature", filepath.Join(dir, "good.cer.sig")}, ""},
		{"missing", []string{bare}, "signature_missing"},
		{"other bytes", []string{good, "--signature", filepath.Join(dir, "other.sig")}, "signature_invalid"},
		{"unpinned key", []string{good, "--signature", filepath.Join(dir, "stranger.sig")}, "signer_not_pinned"},
		{"truncated", []string{good, "--signature", filepath.Join(dir, "truncated.sig")}, "signature_invalid"},
		{"signature alone", []string{filepath.Join(dir, "good.cer.sig")}, "unsupported_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCmd(t, append([]string{"inspect", "-c", cfg, "--json"}, tt.args...)...)
			var r inspectResult
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("exit %d, output %q %q", code, out, errOut)
			}
			switch {
			case tt.code == "" && (code != 0 || r.Verdict != "accepted" || r.SignedBy == "" || !strings.Contains(r.Signer, "provider.pub (ECDSA P-256, SHA256:")):
				t.Errorf("exit %d, %+v; want accepted, signed by provider.pub", code, r)
			case tt.code != "" && (code != 1 || r.Reason == nil || string(r.Reason.Code) != tt.code || r.SignedBy != ""):
				t.Errorf("exit %d, %+v; want %s", code, r, tt.code)
			}
		})
	}
	// The text form names the key; without provenance keys --signature is a usage error.
	if out, _, code := runCmd(t, "inspect", "-c", cfg, good); code != 0 || !strings.Contains(out, "signed by   provider.pub") {
		t.Errorf("inspect text: exit %d\n%s", code, out)
	}
	if _, _, code := runCmd(t, "inspect", good, "--signature", filepath.Join(dir, "good.cer.sig")); code != 2 {
		t.Errorf("--signature without -c: exit %d, want 2", code)
	}
}
