package certpolicy

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

func TestReadFile(t *testing.T) {
	corpus()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemData := leafCert.PEM()
	atLimit := append(clone(pemData), bytes.Repeat([]byte("\n"), certs.MaxFileSize-len(pemData))...)
	dirCer := filepath.Join(dir, "folder.cer")
	if err := os.Mkdir(dirCer, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want certs.Code
		msg  string
	}{
		{"pem .cer", write("app.cer", pemData), "", ""},
		{"der .der", write("app.der", leafCert.DER), "", ""},
		{"upper-case extension", write("APP.CRT", pemData), "", ""},
		{".pem", write("app.pem", pemData), "", ""},
		{"exactly the limit", write("limit.cer", atLimit), "", ""},
		{"one byte over the limit", write("over.cer", append(atLimit, '\n')), certs.TooLarge, "file is 1.1 MiB; the limit is 1 MiB"},
		{"pkcs12 named .cer", write("renamed.cer", readFixture(t, "openssl/pkcs12-aes.der")), certs.ContainsPrivateKey, "PKCS#12/PFX"},
		{"certificate and key", write("both.pem", leafCert.CertAndKeyPEM()), certs.ContainsPrivateKey, ""},
		{".pfx by name", write("bundle.pfx", pemData), certs.ContainsPrivateKey, "a .pfx file holds a PKCS#12/PFX bundle (certificate with its private key), so it was not read"},
		{".p12 by name", write("bundle.P12", pemData), certs.ContainsPrivateKey, "a .p12 file"},
		{".key by name", write("app.key", pemData), certs.ContainsPrivateKey, "a .key file holds a private key"},
		{"unknown extension", write("app.txt", pemData), certs.UnsupportedFile, "the agent reads only .cer, .crt, .pem and .der files, not .txt"},
		{".p7b extension", write("app.p7b", pkcs7(leafCert.DER)), certs.UnsupportedFile, "not .p7b"},
		{"no extension", write("certificate", pemData), certs.UnsupportedFile, "has no extension"},
		{"copy in progress", write("app.cer.part", pemData), certs.UnsupportedFile, "waits for the copy to finish"},
		{"office lock name", write("~$app.cer", pemData), certs.UnsupportedFile, "waits for the copy to finish"},
		{"hidden name", write(".app.cer", pemData), certs.UnsupportedFile, "waits for the copy to finish"},
		{"directory", dirCer, certs.UnsupportedFile, "is a directory, not a regular file"},
		{"empty file", write("empty.cer", nil), certs.NotACertificate, "is empty"},
		{"text", write("garbage.cer", []byte("not a certificate\n")), certs.NotACertificate, "neither PEM nor base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Default().ReadFile(tc.path, testNow)
			if got := codeOf(v); got != tc.want {
				t.Fatalf("ReadFile(%s) = %s, want %s", tc.name, describe(v), orAccepted(tc.want))
			}
			if tc.msg != "" && !strings.Contains(v.Reason.Message, tc.msg) {
				t.Errorf("ReadFile(%s) message = %q, want it to contain %q", tc.name, v.Reason.Message, tc.msg)
			}
			if v.Err != nil {
				t.Errorf("ReadFile(%s) Err = %v, want nil", tc.name, v.Err)
			}
			if tc.want == "" && !bytes.Equal(v.DER, leafCert.DER) {
				t.Errorf("ReadFile(%s) DER is not the certificate's", tc.name)
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gone.cer")
	v := Default().ReadFile(p, testNow)
	if codeOf(v) != certs.UnsupportedFile || !errors.Is(v.Err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %s, Err %v; want %s and fs.ErrNotExist", describe(v), v.Err, certs.UnsupportedFile)
	}
	if !strings.HasPrefix(v.Reason.Message, "reading "+p+": ") {
		t.Errorf("ReadFile(missing) message = %q, want it to name the file", v.Reason.Message)
	}
}

func TestReadFileSymlink(t *testing.T) {
	corpus()
	dir := t.TempDir()
	target := filepath.Join(dir, "target.cer")
	if err := os.WriteFile(target, leafCert.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.cer")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create a symbolic link here: %v", err)
	}
	v := Default().ReadFile(link, testNow)
	if codeOf(v) != certs.UnsupportedFile || !strings.Contains(v.Reason.Message, "a symbolic link") {
		t.Fatalf("ReadFile(symlink) = %s, want %s naming a symbolic link", describe(v), certs.UnsupportedFile)
	}
	if v.Certificate != nil {
		t.Errorf("ReadFile(symlink) read the link's target")
	}
}

// TestReadFileTooLarge uses a sparse file of 8 GiB: were it read, the test would run out of
// time or memory. It is refused from its size alone.
func TestReadFileTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.cer")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(8 << 30)
	if err := f.Truncate(size); err != nil {
		size = 64 << 20 // a file system without sparse files
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	v := Default().ReadFile(p, testNow)
	if codeOf(v) != certs.TooLarge || !strings.Contains(v.Reason.Message, "; the limit is 1 MiB") {
		t.Fatalf("ReadFile(huge) = %s, want %s", describe(v), certs.TooLarge)
	}
}

func TestClassifyName(t *testing.T) {
	tests := []struct {
		name string
		want NameKind
	}{
		{"app.cer", NameCertificate},
		{"APP.CER", NameCertificate},
		{"app.crt", NameCertificate},
		{"app.pem", NameCertificate},
		{"app.der", NameCertificate},
		{filepath.Join("drop", "app.cer"), NameCertificate},
		{"app.pfx", NamePrivateKey},
		{"app.P12", NamePrivateKey},
		{"app.key", NamePrivateKey},
		{"app.cer.tmp", NameTemporary},
		{"app.cer.part", NameTemporary},
		{"app.partial", NameTemporary},
		{"app.cer.crdownload", NameTemporary},
		{".app.cer", NameTemporary},
		{"~$app.cer", NameTemporary},
		{"app.txt", NameUnsupported},
		{"app.p7b", NameUnsupported},
		{"app", NameUnsupported},
		{"app.cer.bak", NameUnsupported},
		{"app.cer.sig", NameSignature},
		{"app.pem.SIG", NameSignature},
		{"app.sig", NameSignature},
		{".app.cer.sig", NameTemporary},
		{"app.cer.sig.part", NameTemporary},
	}
	for _, tc := range tests {
		if got := ClassifyName(tc.name); got != tc.want {
			t.Errorf("ClassifyName(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}
