package intake

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestArchiveName(t *testing.T) {
	const stamp = "20261125T193000Z"
	long := strings.Repeat("n", 300)
	tests := []struct {
		name string
		k    int
		want string
	}{
		{"a.cer", 1, stamp + "_a.cer"},
		{"a.cer", 2, stamp + "_a-2.cer"},
		{"a.b.pem", 12, stamp + "_a.b-12.pem"},
		{"noext", 3, stamp + "_noext-3"},
		{"x.toolongtobeanextensionreallyreallylong", 2, stamp + "_x.toolongtobeanextensionreallyreallylong-2"},
		{long + ".cer", 1, stamp + "_" + long[:maxArchivedLen-len(stamp)-1-4] + ".cer"},
		{long + ".cer", 7, stamp + "_" + long[:maxArchivedLen-len(stamp)-1-4-2] + "-7.cer"},
	}
	for _, tt := range tests {
		got := archiveName(stamp, tt.name, tt.k)
		if got != tt.want {
			t.Errorf("archiveName(%q, %d) = %q, want %q", tt.name, tt.k, got, tt.want)
		}
		if len(got) > maxArchivedLen {
			t.Errorf("archiveName(%q, %d) has %d bytes, more than %d", tt.name, tt.k, len(got), maxArchivedLen)
		}
	}
	// A long name of multi-byte characters is cut between characters.
	got := archiveName(stamp, strings.Repeat("é", 200)+".cer", 1)
	if !utf8.ValidString(got) || len(got) > maxArchivedLen || !strings.HasSuffix(got, ".cer") {
		t.Errorf("archiveName(200×é.cer) = %q (%d bytes), want valid UTF-8 within %d bytes", got, len(got), maxArchivedLen)
	}
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for p, data := range map[string]string{a: "A", b: "B"} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := renameNoReplace(a, b); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("renameNoReplace onto an existing file = %v, want an fs.ErrExist error", err)
	}
	for p, want := range map[string]string{a: "A", b: "B"} {
		if got, err := os.ReadFile(p); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v after a refused rename; want %q", filepath.Base(p), got, err, want)
		}
	}
	if err := renameNoReplace(a, c); err != nil {
		t.Fatalf("renameNoReplace to a free name = %v", err)
	}
	if got, err := os.ReadFile(c); err != nil || string(got) != "A" {
		t.Errorf("c = %q, %v; want A", got, err)
	}
	if _, err := os.Lstat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a still exists after the rename: %v", err)
	}
	if err := renameNoReplace(a, filepath.Join(dir, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("renameNoReplace of a missing file = %v, want an fs.ErrNotExist error", err)
	}
}

func TestWriteNoteNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x"+ReasonSuffix)
	if err := writeNote(p, "first"); err != nil {
		t.Fatal(err)
	}
	if err := writeNote(p, "second"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second writeNote = %v, want an fs.ErrExist error", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "first" {
		t.Errorf("note = %q, want the first one kept", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries, want only the note (no temporary left)", len(ents))
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	h := newHarness(t, pollCfg())
	stale := filepath.Join(h.dir, RejectedDir, notePrefix+"123.tmp")
	keep := filepath.Join(h.dir, RejectedDir, "20261125T193000Z_x.tmp")
	for _, p := range []string{stale, keep} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.in.removeStaleTemps()
	if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary note still there: %v", err)
	}
	if _, err := os.Lstat(keep); err != nil {
		t.Errorf("an archived file was removed: %v", err)
	}
}

func TestReasonTextGolden(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	// Facts written out rather than minted, so the golden file stays the same.
	cert := certs.Certificate{
		Thumbprint:   "3F2A0C6B9D1E4F5A6B7C8D9E0F1A2B3C4D5E6F70",
		SHA256:       "AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12",
		Subject:      "CN=backup.example.com,O=Provider Ltd",
		Issuer:       "CN=Provider Issuing CA,O=Provider Ltd",
		SerialNumber: "1A2B3C",
		NotBefore:    time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		KeyAlgorithm: "RSA",
		KeyBits:      2048,
	}
	f := File{Name: "backup.cer", Size: 1234, ModTime: now.Add(-5 * time.Second)}
	d := Decision{
		Reason:     &certs.Reason{Code: certs.Expired, Message: "the certificate expired on 2026-11-01"},
		RotationID: "rot-0001",
		Cert:       &cert,
	}
	got := strings.ReplaceAll(reasonText(f, d, "20261125T193000Z_backup.cer", now), "\r\n", "\n")
	golden := filepath.Join("testdata", "reason.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("reasonText differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func TestReasonTextContent(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	c := certtest.New(now, certtest.CommonName("provider.example"))
	facts := certs.FactsOf(c.Cert)
	keyPEM := string(c.KeyPEM())
	tests := []struct {
		name string
		f    File
		d    Decision
		want []string // must appear
	}{
		{
			name: "with certificate",
			f:    File{Name: "p.cer", Size: 2000, ModTime: now},
			d:    Decision{Reason: &certs.Reason{Code: certs.ContainsPrivateKey, Message: "the file holds a private key"}, Cert: &facts, RotationID: "r1"},
			want: []string{"p.cer", "contains_private_key", "the file holds a private key", facts.Thumbprint, "CN=provider.example", "r1", "Delete this copy securely", "2026-11-25T19:30:00Z"},
		},
		{
			name: "refused by name, odd file name",
			f:    File{Name: "bad\nname.pfx", Size: 10, ModTime: now},
			d:    Decision{Reason: &certs.Reason{Code: certs.UnsupportedFile, Message: "m"}},
			want: []string{`"bad\nname.pfx"`, "unsupported_file", ".cer, .crt, .pem or .der"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Data = []byte(keyPEM) // never in a note, even if a caller left it set
			got := reasonText(tt.f, tt.d, "20261125T193000Z_x", now)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("note lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "PRIVATE KEY") || strings.Contains(got, keyPEM[40:80]) {
				t.Errorf("note holds key material:\n%s", got)
			}
			if strings.Count(got, "bad\nname") > 0 {
				t.Errorf("note holds a raw newline from the file name:\n%s", got)
			}
		})
	}
	for _, code := range certs.VerdictCodes {
		if a := advice(code); a == advice("") {
			t.Errorf("advice(%s) is the generic text", code)
		}
	}
}
