package config

import (
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

func TestCheckFiles(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ca := certtest.New(now, certtest.AsCA(), certtest.CommonName("emulator CA"))
	agent := certtest.New(now, certtest.CommonName("certagent"))
	other := certtest.New(now, certtest.RSA(3072)) // another key
	ec := certtest.New(now, certtest.ECDSA())
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})

	type file struct {
		name string
		data []byte // nil: a directory
	}
	tests := []struct {
		name  string
		files []file
		want  []want // line numbers in the config below
	}{
		{
			name:  "nothing but the CA file exists yet",
			files: []file{{"ca.pem", ca.PEM()}},
		},
		{
			name: "CA file missing",
			want: []want{{8, "cloud.ca_file", "ca.pem does not exist", true}},
		},
		{
			name:  "a good CA bundle and credential",
			files: []file{{"ca.pem", append(ca.PEM(), agent.PEM()...)}, {"state/agent.pem", agent.PEM()}, {"state/agent.key", agent.KeyPEM()}},
		},
		{
			name:  "a PKCS#1 key",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.pem", agent.PEM()}, {"state/agent.key", agent.PKCS1KeyPEM()}},
		},
		{
			name:  "a certificate without its key: the agent makes a new pair",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.pem", agent.PEM()}},
		},
		{
			name:  "CA file is not PEM",
			files: []file{{"ca.pem", agent.DER}},
			want:  []want{{8, "cloud.ca_file", "holds no PEM certificate", true}},
		},
		{
			name:  "CA file holds a private key",
			files: []file{{"ca.pem", ca.CertAndKeyPEM()}},
			want:  []want{{8, "cloud.ca_file", "holds a private key; a CA file holds certificates only", true}},
		},
		{
			name:  "CA file holds a broken certificate",
			files: []file{{"ca.pem", append(ca.PEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})...)}},
			want:  []want{{8, "cloud.ca_file", "PEM block 2 does not parse", true}},
		},
		{
			name:  "CA file is a folder",
			files: []file{{"ca.pem", nil}},
			want:  []want{{8, "cloud.ca_file", "is not a regular file", true}},
		},
		{
			name:  "key without its certificate",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.key", agent.KeyPEM()}},
			want:  []want{{2, "auth.certificate_file", "does not exist but auth.key_file", true}},
		},
		{
			name:  "key of another certificate",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.pem", agent.PEM()}, {"state/agent.key", other.KeyPEM()}},
			want:  []want{{2, "auth.key_file", "is not the key of auth.certificate_file", true}},
		},
		{
			name:  "not RSA, encrypted key",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.pem", ec.PEM()}, {"state/agent.key", encrypted}},
			want: []want{
				{2, "auth.certificate_file", "the key is ECDSA; Entra ID needs RSA", true},
				{2, "auth.key_file", "the private key is encrypted", true},
			},
		},
		{
			name:  "garbage credential",
			files: []file{{"ca.pem", ca.PEM()}, {"state/agent.pem", []byte("hello")}, {"state/agent.key", ec.KeyPEM()}},
			want: []want{
				{2, "auth.certificate_file", "no PEM certificate", true},
				{2, "auth.key_file", "the private key is not RSA", true},
			},
		},
		{
			name:  "a file where a folder belongs and the reverse",
			files: []file{{"ca.pem", ca.PEM()}, {"drop", []byte("x")}, {"state/api.token", nil}},
			want: []want{
				{9, "drop_folder", "is not a folder", true},
				{0, "api.token_file", "is not a regular file", true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, filepath.FromSlash(f.name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if f.data == nil {
					if err := os.Mkdir(p, 0o755); err != nil {
						t.Fatal(err)
					}
				} else if err := os.WriteFile(p, f.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in := valid + "state_dir: state\ncloud:\n  ca_file: ca.pem\ndrop_folder: drop\n"
			c, err := Parse(filepath.Join(dir, "x.yaml"), []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			c.File = "x.yaml" // as checkErrors expects
			var es Errors
			if err := c.CheckFiles(); err != nil {
				var ok bool
				if es, ok = err.(Errors); !ok {
					t.Fatalf("CheckFiles() = %T %v, want Errors", err, err)
				}
			}
			checkErrors(t, in, es, tt.want)
		})
	}
}

// TestCheckFilesWritesNothing checks that CheckFiles leaves a loosened key as it is (the agent
// repairs it when it loads the key; a check does not write).
func TestCheckFilesWritesNothing(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	agent := certtest.New(now)
	dir := t.TempDir()
	c := mustParse(t, valid+"state_dir: "+dir+"\n")
	if err := os.WriteFile(c.Auth.CertificateFile, agent.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Auth.KeyFile, agent.KeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(c.Auth.KeyFile)
	if err := c.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(c.Auth.KeyFile)
	if before.Mode() != after.Mode() || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("CheckFiles changed %s: %v -> %v", c.Auth.KeyFile, before.Mode(), after.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %s, want only the two files", strings.Join(names, ", "))
	}
}

// TestCheck checks that Check reports the problems of the values and of the files together,
// in line order, and does not check on disk a key whose value is wrong.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", valid+ // lines 1-5
		"cloud:\n"+ // 6
		"  ca_file: missing-ca.pem\n"+ // 7: file problem
		"policy:\n"+ // 8
		"  approval: sometimes\n"+ // 9: value problem
		"drop_folder: drop\n"+ // 10: a file where the folder belongs
		"log:\n"+ // 11
		"  file: [x]\n") // 12: value problem; not checked on disk
	write("drop", "not a folder")
	_, err := Check(bad)
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("Check = %v, want Errors", err)
	}
	for _, e := range es {
		e.File = "x.yaml"
	}
	checkErrors(t, "", es, []want{
		{7, "cloud.ca_file", "missing-ca.pem does not exist", true},
		{9, "policy.approval", `must be auto or manual, not "sometimes"`, false},
		{10, "drop_folder", "is not a folder", true},
		{12, "log.file", "must be a string, not a list", false},
	})

	syntax := write("syntax.yaml", valid+"cloud:\n  ca_file: missing.pem\n bad: x\n")
	_, err = Check(syntax)
	if es, ok := err.(Errors); !ok || len(es) != 1 || !strings.HasPrefix(es[0].Msg, "syntax error") {
		t.Errorf("Check(syntax error) = %v, want the syntax error alone", err)
	}

	good := write("good.yaml", valid+"state_dir: state\ndrop_folder: drop2\n")
	c, err := Check(good)
	if err != nil || c == nil || c.StateDir != filepath.Join(dir, "state") {
		t.Errorf("Check(good) = %v, %v", c, err)
	}

	if _, err := Check(filepath.Join(dir, "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestSecretFile: notify.secret_file is resolved against the config's folder, and
// CheckFiles wants it to exist as a regular file (a person writes it; the agent cannot).
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "certagent.yaml")
	c, err := Parse(file, []byte(valid+"state_dir: state\nnotify:\n  webhook_url: https://provider.example/hook\n  secret_file: webhook.secret\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "webhook.secret"); c.Notify.SecretFile != want {
		t.Fatalf("notify.secret_file = %q, want %q", c.Notify.SecretFile, want)
	}
	secretProblems := func() []string {
		var out []string
		for _, e := range c.checkFiles(nil) {
			if e.Key == "notify.secret_file" {
				out = append(out, e.Msg)
			}
		}
		return out
	}
	if ps := secretProblems(); len(ps) != 1 || !strings.Contains(ps[0], "webhook.secret") {
		t.Errorf("CheckFiles without the file = %q, want one problem naming it", ps)
	}
	if err := os.Mkdir(c.Notify.SecretFile, 0o700); err != nil {
		t.Fatal(err)
	}
	if ps := secretProblems(); len(ps) != 1 || !strings.Contains(ps[0], "not a regular file") {
		t.Errorf("CheckFiles with a folder = %q, want not a regular file", ps)
	}
	os.Remove(c.Notify.SecretFile)
	if err := os.WriteFile(c.Notify.SecretFile, []byte("whsec_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps := secretProblems(); len(ps) != 0 {
		t.Errorf("CheckFiles with the file = %q, want none", ps)
	}
}
