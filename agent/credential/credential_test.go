package credential

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/securefile"
)

func testFiles(t *testing.T) Files {
	dir := t.TempDir()
	return Files{Cert: filepath.Join(dir, "agent.pem"), Key: filepath.Join(dir, "agent.key")}
}

func TestInitCreatesOnceThenLoads(t *testing.T) {
	f := testFiles(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	opts := Options{Bits: 2048, Validity: 30 * 24 * time.Hour, Now: func() time.Time { return now }, CommonName: "certagent test"}
	c1, created, err := Init(f, opts)
	if err != nil || !created {
		t.Fatalf("first Init = created %v, err %v; want created", created, err)
	}
	if got, want := c1.Cert.NotAfter, now.Add(30*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", got, want)
	}
	if c1.Cert.Subject.CommonName != "certagent test" {
		t.Errorf("CN = %q", c1.Cert.Subject.CommonName)
	}
	c2, created, err := Init(f, opts)
	if err != nil || created {
		t.Fatalf("second Init = created %v, err %v; want loaded", created, err)
	}
	if !bytes.Equal(c1.Cert.Raw, c2.Cert.Raw) {
		t.Error("second Init returned a different certificate: an existing credential was replaced")
	}
	if err := securefile.Check(f.Key); err != nil {
		t.Errorf("key file not private: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(testFiles(t))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Load of nothing = %v, want ErrNotFound", err)
	}
}

func TestLoadRefusesMismatchedPair(t *testing.T) {
	f := testFiles(t)
	a, err := Generate(Options{Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(Options{Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(f, &Credential{Cert: a.Cert, Key: b.Key}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("Load of mismatched pair = %v, want a 'does not belong' error", err)
	}
}

func TestLoadRepairsLoosenedKey(t *testing.T) {
	if os.PathSeparator == '\\' {
		t.Skip("mode bits: Unix only; securefile's Windows tests cover the DACL")
	}
	f := testFiles(t)
	if _, _, err := Init(f, Options{Bits: 2048}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); err != nil {
		t.Fatal(err)
	}
	if err := securefile.Check(f.Key); err != nil {
		t.Errorf("after Load the key is still loose: %v", err)
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	c, err := Generate(Options{Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "cred", c)
	out := buf.String() + fmt.Sprint(c) + fmt.Sprintf("%v %s", c, c)
	if strings.Contains(out, "PRIVATE") || strings.Contains(out, "\"D\"") || strings.Contains(out, "Primes") {
		t.Errorf("key material printed: %s", out)
	}
	if !strings.Contains(buf.String(), "thumbprint") {
		t.Errorf("log lacks the thumbprint: %s", buf.String())
	}
}
