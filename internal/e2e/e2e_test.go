package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// fastSettle keeps the tests quick; the settle logic itself is tested in agent/intake.
func fastSettle(c *config.Config) {
	c.Intake.Settle = config.Duration(150 * time.Millisecond)
}

// appCreds returns the target app's key credentials as the emulator holds them.
func appCreds(t *testing.T, e *Env) []emulator.KeyCredentialView {
	t.Helper()
	return e.Creds(e.Info.TargetAppID)
}

func countThumb(creds []emulator.KeyCredentialView, thumb string) int {
	return CountThumb(creds, thumb)
}

// countPatches counts the PATCH requests the emulator answered.
func countPatches(e *Env) int {
	n := 0
	for _, r := range e.Emu().Requests() {
		if r.Method == "PATCH" {
			n++
		}
	}
	return n
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// archived lists the names in processed/ or rejected/ that end with _<name>.
func archived(dir, sub, name string) []string {
	ents, _ := os.ReadDir(filepath.Join(dir, sub))
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "_"+name) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestDropFolderProcess drives a real agent process through the drop folder: a valid
// certificate, the same one again, one already on the app, refused and hostile files, a file
// written in two halves, and one renamed into the folder.
func TestDropFolderProcess(t *testing.T) {
	e := NewEnv(t, fastSettle)
	a := e.StartAgent()
	drop := e.Config.DropFolder
	before := appCreds(t, e)
	now := time.Now()

	// A valid provider certificate.
	next := certtest.New(now, certtest.CommonName("AUCloud VB365 next"), certtest.ValidFor(365*24*time.Hour))
	writeFile(t, filepath.Join(drop, "next.cer"), next.PEM())
	r := a.WaitRotation(certs.ThumbprintSHA1(next.DER), "applied", 20*time.Second)
	if r.AlreadyPresent || r.KeyID == "" {
		t.Errorf("rotation = alreadyPresent %v keyId %q; want a new keyId", r.AlreadyPresent, r.KeyID)
	}
	after := appCreds(t, e)
	if got := countThumb(after, certs.ThumbprintSHA1(next.DER)); got != 1 {
		t.Errorf("app holds the certificate %d times, want 1", got)
	}
	for _, old := range before {
		if countThumb(after, old.Thumbprint) != 1 {
			t.Errorf("old credential %s (%s) lost", old.KeyID, old.Thumbprint)
		}
	}
	a.WaitFor("next.cer filed", 10*time.Second, func() bool { return len(archived(drop, "processed", "next.cer")) == 1 })

	// The same certificate again, as DER under another name: no second upload.
	writeFile(t, filepath.Join(drop, "again.der"), next.DER)
	a.WaitFor("again.der filed", 10*time.Second, func() bool { return len(archived(drop, "processed", "again.der")) == 1 })
	if got := countThumb(appCreds(t, e), certs.ThumbprintSHA1(next.DER)); got != 1 {
		t.Errorf("after a duplicate drop the app holds the certificate %d times, want 1", got)
	}

	// A certificate a person already uploaded in the portal: recorded as applied with
	// alreadyPresent, nothing written.
	manual := certtest.New(now, certtest.CommonName("uploaded by hand"))
	kc, err := e.Emu().AddKeyCredential(e.Info.TargetAppID, emulator.SeedKeyCredential{Certificate: manual.DER, DisplayName: "uploaded in the portal"})
	if err != nil {
		t.Fatal(err)
	}
	patches := countPatches(e)
	writeFile(t, filepath.Join(drop, "present.cer"), manual.DER)
	rp := a.WaitRotation(kc.Thumbprint, "applied", 20*time.Second)
	if !rp.AlreadyPresent || rp.KeyID != kc.KeyID {
		t.Errorf("already-present rotation = alreadyPresent %v keyId %s; want true, %s", rp.AlreadyPresent, rp.KeyID, kc.KeyID)
	}
	if got := countPatches(e); got != patches {
		t.Errorf("the agent sent %d PATCH requests for a certificate already on the app, want 0", got-patches)
	}

	// Refused and hostile files.
	expired := certtest.New(now, certtest.Validity(now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	hostile := map[string]struct {
		data []byte
		code certs.Code
	}{
		"expired.cer":   {expired.PEM(), certs.Expired},
		"garbage.cer":   {garbage, certs.NotACertificate},
		"withkey.pem":   {append(next.PEM(), next.KeyPEM()...), certs.ContainsPrivateKey},
		"bundle.pfx":    {garbage, certs.ContainsPrivateKey},
		"notes.txt":     {[]byte("hello"), certs.UnsupportedFile},
		"huge.cer":      {make([]byte, certs.MaxFileSize+10), certs.TooLarge},
		"empty.crt":     {nil, certs.NotACertificate},
		"weak.cer":      {certtest.New(now, certtest.RSA(1024)).PEM(), certs.WeakKey},
		"ecdsa.cer":     {certtest.New(now, certtest.ECDSA()).PEM(), certs.UnsupportedKeyType},
		"two-certs.pem": {append(next.PEM(), expired.PEM()...), certs.MultipleCertificates},
	}
	for name, h := range hostile {
		writeFile(t, filepath.Join(drop, name), h.data)
	}
	for _, name := range makeSpecialFiles(t, drop) {
		hostile[name] = struct {
			data []byte
			code certs.Code
		}{nil, certs.UnsupportedFile}
	}
	keyPEM := string(next.KeyPEM())
	keyB64 := strings.Split(keyPEM, "\n")[2] // a line from the middle of the key's base64
	for name, h := range hostile {
		a.WaitFor(name+" rejected", 10*time.Second, func() bool { return len(archived(drop, "rejected", name)) == 1 })
		got := archived(drop, "rejected", name)[0]
		reason, err := os.ReadFile(filepath.Join(drop, "rejected", got+".reason.txt"))
		if err != nil {
			t.Errorf("%s: no reason file: %v", name, err)
			continue
		}
		if !strings.Contains(string(reason), string(h.code)) {
			t.Errorf("%s: reason file does not name %s:\n%s", name, h.code, reason)
		}
		if strings.Contains(string(reason), "-----BEGIN") || strings.Contains(string(reason), keyB64) {
			t.Errorf("%s: reason file echoes file contents or key material:\n%s", name, reason)
		}
	}
	// The agent survived all of it and kept serving.
	if _, err := a.Client.Status(context.Background()); err != nil {
		t.Fatalf("status after hostile files: %v", err)
	}

	// A file written in two halves with a pause shorter than the settle window: read once,
	// whole.
	half := certtest.New(now, certtest.CommonName("written in halves"))
	p := half.PEM()
	f, err := os.Create(filepath.Join(drop, "halves.cer"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(p[:len(p)/2])
	f.Sync()
	time.Sleep(60 * time.Millisecond)
	f.Write(p[len(p)/2:])
	f.Close()
	a.WaitRotation(certs.ThumbprintSHA1(half.DER), "applied", 20*time.Second)
	if n := len(archived(drop, "rejected", "halves.cer")); n != 0 {
		t.Errorf("halves.cer was rejected (read before it was whole)")
	}

	// A file copied under a temporary name and renamed into place.
	renamed := certtest.New(now, certtest.CommonName("renamed in"))
	tmp := filepath.Join(drop, "incoming.cer.part")
	writeFile(t, tmp, renamed.PEM())
	time.Sleep(400 * time.Millisecond) // longer than settle: a .part file must still be left alone
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the .part file was touched: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(drop, "incoming.cer")); err != nil {
		t.Fatal(err)
	}
	a.WaitRotation(certs.ThumbprintSHA1(renamed.DER), "applied", 20*time.Second)

	// Nothing is left in the folder; nothing was deleted.
	a.WaitFor("drop folder empty", 10*time.Second, func() bool { return CountFiles(drop) == 0 })
	entries, _ := os.ReadDir(drop)
	for _, en := range entries {
		if !en.IsDir() {
			t.Errorf("left in the drop folder: %s", en.Name())
		}
	}
	if err := a.Stop(20 * time.Second); err != nil {
		t.Error(err)
	}
}

// TestThousandFiles drops 1,000 files at once (a few valid certificates, their duplicates,
// and garbage) and checks that every one is filed exactly once and each certificate is
// uploaded once.
func TestThousandFiles(t *testing.T) {
	e := NewEnv(t, fastSettle)
	a := e.StartAgent()
	drop := e.Config.DropFolder
	now := time.Now()
	var valid []certtest.Cert
	for i := 0; i < 5; i++ {
		valid = append(valid, certtest.New(now, certtest.CommonName(fmt.Sprintf("flood %d", i))))
	}
	const n = 1000
	for i := 0; i < n; i++ {
		var data []byte
		name := fmt.Sprintf("f%04d.cer", i)
		switch {
		case i%100 == 0:
			data = valid[(i/100)%len(valid)].PEM() // each valid certificate twice
		case i%7 == 0:
			name = fmt.Sprintf("f%04d.txt", i)
			data = []byte("not a certificate")
		default:
			data = make([]byte, 200+i%500)
			rand.Read(data)
		}
		writeFile(t, filepath.Join(drop, name), data)
	}
	a.WaitFor("1,000 files filed", 120*time.Second, func() bool {
		return CountFiles(filepath.Join(drop, "processed"))+CountFiles(filepath.Join(drop, "rejected")) == n
	})
	if got := CountFiles(drop); got != 0 {
		t.Errorf("%d files left in the drop folder", got)
	}
	if got := CountFiles(filepath.Join(drop, "processed")); got != 10 {
		t.Errorf("processed/ holds %d files, want 10 (5 certificates, twice each)", got)
	}
	for _, c := range valid {
		a.WaitRotation(certs.ThumbprintSHA1(c.DER), "applied", 30*time.Second)
		if got := countThumb(appCreds(t, e), certs.ThumbprintSHA1(c.DER)); got != 1 {
			t.Errorf("certificate %s on the app %d times, want 1", c.Cert.Subject.CommonName, got)
		}
	}
}
