package certpolicy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

var update = flag.Bool("update", false, "rewrite testdata/regress and the seeds in testdata/fuzz/FuzzCheck")

// pathological is an input built to hurt a parser. gen makes it of about n bytes: the fixture
// stored in testdata/regress is small, and TestPathologicalInputs makes each one 1 MiB, where
// anything worse than linear time would not finish.
type pathological struct {
	name string
	gen  func(n int) []byte
	want certs.Code
}

func repeatTo(unit string, n int) []byte {
	return bytes.Repeat([]byte(unit), max(1, n/len(unit)))
}

func pathologicalInputs() []pathological {
	leaf := func() []byte { corpus(); return leafCert.DER }
	return []pathological{
		{"many-begins.txt", func(n int) []byte { return repeatTo("-----BEGIN ", n) }, certs.NotACertificate},
		{"begin-lines-without-end.txt", func(n int) []byte { return repeatTo("-----BEGIN CERTIFICATE-----\n", n) }, certs.NotACertificate},
		{"begins-on-one-line.txt", func(n int) []byte { return repeatTo("-----BEGIN CERTIFICATE-----", n) }, certs.NotACertificate},
		{"ends-without-begin.txt", func(n int) []byte { return repeatTo("-----END CERTIFICATE-----\n", n) }, certs.NotACertificate},
		{"empty-blocks.txt", func(n int) []byte { return repeatTo("-----BEGIN X-----\n-----END X-----\n", n) }, certs.NotACertificate},
		{"private-key-words.txt", func(n int) []byte { return repeatTo("PRIVATE KEY", n) }, certs.NotACertificate},
		{"dashes-and-private-key.txt", func(n int) []byte { return repeatTo("----- PRIVATE KEY ", n) }, certs.NotACertificate},
		{"dashes.txt", func(n int) []byte { return repeatTo("-", n) }, certs.NotACertificate},
		{"indented-key-line.txt", func(n int) []byte {
			return []byte(strings.Repeat(" ", 300) + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}, certs.ContainsPrivateKey},
		{"text-before-key-line.txt", func(n int) []byte {
			return []byte("key: -----BEGIN RSA PRIVATE KEY-----\nAAAA\n")
		}, certs.ContainsPrivateKey},
		{"base64-lines.txt", func(n int) []byte { return repeatTo(strings.Repeat("A", 64)+"\n", n) }, certs.NotACertificate},
		{"base64-padding-inside.txt", func(n int) []byte { return repeatTo("MIIB==", n) }, certs.NotACertificate},
		{"base64-words.txt", func(n int) []byte { return repeatTo("Attributes\n", n) }, certs.NotACertificate},
		{"indefinite-nesting.bin", func(n int) []byte { return repeatTo("\x30\x80", n) }, certs.NotACertificate},
		{"definite-nesting.bin", func(n int) []byte { return nested(n) }, certs.NotACertificate},
		{"huge-length.bin", func(int) []byte { return []byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00} }, certs.NotACertificate},
		{"length-too-long.bin", func(int) []byte { return []byte{0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9} }, certs.NotACertificate},
		{"high-tag.bin", func(int) []byte { return []byte{0x30, 0x03, 0x1f, 0x81, 0x00} }, certs.NotACertificate},
		{"signed-shape-empty.bin", func(int) []byte { return seq(seq(), seq(), der(0x03)) }, certs.NotACertificate},
		{"many-certificate-shapes.bin", func(n int) []byte { return repeatTo(string(seq(seq(), seq(), der(0x03))), n) }, certs.MultipleCertificates},
		{"pkcs7-indefinite.bin", func(int) []byte {
			b := []byte{0x30, 0x80}
			b = append(b, oid(oidPKCS7SignedData...)...)
			b = append(b, 0xa0, 0x80, 0x30, 0x80)
			return append(b, 0, 0, 0, 0, 0, 0)
		}, certs.NotACertificate},
		{"pkcs12-ber.bin", func(int) []byte { return pkcs12Shape(true) }, certs.ContainsPrivateKey},
		{"utf16-odd-length.bin", func(int) []byte { return []byte{0xff, 0xfe, 'M', 0, 'I'} }, certs.NotACertificate},
		{"utf16-lone-surrogates.bin", func(n int) []byte { return append([]byte{0xfe, 0xff}, repeatTo("\xd8\x00", n)...) }, certs.NotACertificate},
		{"utf16be-pem.txt", func(int) []byte {
			b := utf16LE("\ufeff" + string(pemBlock("CERTIFICATE", leaf())))
			for i := 0; i+1 < len(b); i += 2 { // to big-endian
				b[i], b[i+1] = b[i+1], b[i]
			}
			return b
		}, ""},
		{"nul-padded-der.bin", func(int) []byte { return append(clone(leaf()), make([]byte, 512)...) }, ""},
		{"crcrlf.pem", func(int) []byte {
			return bytes.ReplaceAll(pemBlock("CERTIFICATE", leaf()), []byte("\n"), []byte("\r\r\n"))
		}, ""},
		{"nested-begin.pem", func(int) []byte {
			return append([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), pemBlock("CERTIFICATE", leaf())...)
		}, certs.NotACertificate},
		{"begin-without-type.txt", func(int) []byte { return []byte("-----BEGIN -----\nMIIB\n-----END -----\n") }, certs.NotACertificate},
		{"label-of-base64.txt", func(int) []byte {
			return []byte("-----BEGIN " + strings.Repeat("QUJD", 10) + "-----\nAAAA\n-----END " + strings.Repeat("QUJD", 10) + "-----\n")
		}, certs.NotACertificate},
	}
}

// nested returns about n bytes of SEQUENCEs nested in each other around a NULL, all with
// definite lengths. It lays the headers out from the inside, in linear time.
func nested(n int) []byte {
	var headers [][]byte
	size := 2
	for size < n {
		h := []byte{0x30, byte(size)}
		switch {
		case size >= 0x10000:
			h = []byte{0x30, 0x83, byte(size >> 16), byte(size >> 8), byte(size)}
		case size >= 0x100:
			h = []byte{0x30, 0x82, byte(size >> 8), byte(size)}
		case size >= 0x80:
			h = []byte{0x30, 0x81, byte(size)}
		}
		headers = append(headers, h)
		size += len(h)
	}
	out := make([]byte, 0, size)
	for i := len(headers) - 1; i >= 0; i-- {
		out = append(out, headers[i]...)
	}
	return append(out, 0x05, 0x00)
}

// TestRegressionFixtures judges the stored fixtures; -update rewrites them.
func TestRegressionFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "regress")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, pi := range pathologicalInputs() {
			if err := os.WriteFile(filepath.Join(dir, pi.name), pi.gen(4096), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeFuzzSeeds(t)
	}
	for _, pi := range pathologicalInputs() {
		data := readFixture(t, "regress/"+pi.name)
		v := Default().Check(data, testNow)
		if got := codeOf(v); got != pi.want {
			t.Errorf("Check(%s) = %s, want %s", pi.name, describe(v), orAccepted(pi.want))
		}
		checkVerdictInvariants(t, pi.name, data, v)
	}
}

// TestPathologicalInputs judges each pathological input at 1 MiB, the largest Check reads.
// Nothing here measures time: a parser that is quadratic on one of them would take hours and
// fail the test by its timeout.
func TestPathologicalInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("1 MiB inputs")
	}
	for _, pi := range pathologicalInputs() {
		data := pi.gen(certs.MaxFileSize)
		if len(data) > certs.MaxFileSize {
			data = data[:certs.MaxFileSize]
		}
		v := Default().Check(data, testNow)
		checkVerdictInvariants(t, pi.name, data, v)
	}
}

// fuzzSeeds are hand-made inputs for testdata/fuzz/FuzzCheck: near misses of the formats,
// where a mutation is likely to find a mistake.
func fuzzSeeds() map[string][]byte {
	corpus()
	return map[string][]byte{
		"pem-cert-then-key-end":  append(pemBlock("CERTIFICATE", leafCert.DER), "-----END RSA PRIVATE KEY-----\n"...),
		"trusted-with-two-certs": pemBlock("TRUSTED CERTIFICATE", append(clone(leafCert.DER), leafCert.DER...)),
		"pkcs7-cert-and-junk":    pkcs7(leafCert.DER, []byte{0x02, 0x01, 0x00}),
		"base64-cert-and-text":   []byte("Certificate:\n" + wrap(base64Of(leafCert.DER), 64, "\n") + "Thumbprint: " + certs.ThumbprintSHA1(leafCert.DER) + "\n"),
		"openssh-binary-base64":  []byte(base64Of(append([]byte("openssh-key-v1\x00"), make([]byte, 40)...))),
		"sec1-in-pem-cert":       pemBlock("CERTIFICATE", seq(integer(1), der(0x04, make([]byte, 32)))),
		"dsa-key-shape":          seq(integer(0), integer(1), integer(2), integer(3), integer(4), integer(5)),
		"crl-v1-shape":           seq(seq(seq(oid(1)), seq(), der(0x17, []byte("261125120000Z"))), seq(oid(1)), der(0x03, []byte{0})),
	}
}

func writeFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzCheck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
