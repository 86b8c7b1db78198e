//go:build !windows

// The tests here sign with the openssl command line, as the provider does; they run where CI
// runs them, on Linux (Wine has no openssl). A missing openssl fails them.

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

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
