package certpolicy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

// testNow is the fixed clock every test judges at.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// corpusCase is one input with the verdict the default policy must give at testNow.
type corpusCase struct {
	name string
	in   []byte
	want certs.Code // "" for accepted
	// der is the certificate the verdict must carry (accepted inputs, and refused ones that
	// hold exactly one certificate); nil when it must carry none.
	der []byte
	// msg, when set, must be part of the reason's message.
	msg string
}

var (
	corpusOnce sync.Once
	corpusData []corpusCase
	leafCert   certtest.Cert // the accepted RSA-2048 certificate of the corpus
)

// corpus returns the shared corpus, minted once per test binary relative to testNow.
func corpus() []corpusCase {
	corpusOnce.Do(func() { corpusData = buildCorpus() })
	return corpusData
}

func buildCorpus() []corpusCase {
	now := testNow
	leaf := certtest.New(now, certtest.CommonName("app.contoso.com"), certtest.Organization("Contoso"))
	leafCert = leaf
	other := certtest.New(now, certtest.CommonName("other.contoso.com"))
	ca := certtest.New(now, certtest.CommonName("Contoso Issuing CA"), certtest.AsCA())
	issued := certtest.New(now, certtest.CommonName("issued.contoso.com"), certtest.IssuedBy(ca))
	future := certtest.New(now, certtest.CommonName("next year"), certtest.Validity(now.AddDate(0, 2, 0), now.AddDate(1, 2, 0)))
	weak := certtest.New(now, certtest.CommonName("weak"), certtest.RSA(1024))
	ec := certtest.New(now, certtest.CommonName("ecdsa"), certtest.ECDSA())
	ed := certtest.New(now, certtest.CommonName("ed25519"), certtest.Ed25519())
	expired := certtest.New(now, certtest.CommonName("expired"), certtest.Validity(now.AddDate(-1, 0, 0), now.AddDate(0, 0, -55)))
	soon := certtest.New(now, certtest.CommonName("soon"), certtest.Validity(now.AddDate(0, 0, -300), now.Add(12*24*time.Hour)))

	pemLF := leaf.PEM()
	pemCRLF := bytes.ReplaceAll(pemLF, []byte("\n"), []byte("\r\n"))
	b64 := base64.StdEncoding.EncodeToString(leaf.DER)

	rsaKey := leaf.Key.(*rsa.PrivateKey)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ecKey := ec.Key.(*ecdsa.PrivateKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(ed.Key.(ed25519.PrivateKey))
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr"}}, rsaKey)
	spki, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())

	bad := pemLF[:len(pemLF)-40] // cut into the base64 and the END line
	brokenBody := bytes.Replace(pemLF, []byte("M"), []byte("!"), 1)

	garbage := make([]byte, 1024)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/3)
	}

	cases := []corpusCase{
		// Accepted shapes.
		{name: "der", in: leaf.DER, der: leaf.DER},
		{name: "der with trailing newline", in: append(clone(leaf.DER), '\r', '\n'), der: leaf.DER},
		{name: "pem lf", in: pemLF, der: leaf.DER},
		{name: "pem crlf", in: pemCRLF, der: leaf.DER},
		{name: "pem cr only", in: bytes.ReplaceAll(pemLF, []byte("\n"), []byte("\r")), der: leaf.DER},
		{name: "pem with bom", in: append([]byte("\ufeff"), pemCRLF...), der: leaf.DER},
		{name: "pem utf-16le with bom", in: utf16LE("\ufeff" + string(pemCRLF)), der: leaf.DER},
		{name: "pem with text around", in: join("Bag Attributes\n    localKeyID: 01 00 00 00 \n    friendlyName: app\nsubject=CN = app.contoso.com, O = Contoso\n\nissuer=CN = app.contoso.com\n", pemLF, "\nCertificate delivered 2026-11-20.\n"), der: leaf.DER},
		{name: "pem indented with trailing spaces", in: indent(pemLF), der: leaf.DER},
		{name: "pem x509 certificate type", in: pemBlock("X509 CERTIFICATE", leaf.DER), der: leaf.DER},
		{name: "pem trusted certificate", in: pemBlock("TRUSTED CERTIFICATE", append(clone(leaf.DER), trustAux()...)), der: leaf.DER},
		{name: "base64 one line", in: []byte(b64), der: leaf.DER},
		{name: "base64 one line with whitespace around", in: []byte("\n\t  " + b64 + "  \r\n\n"), der: leaf.DER},
		{name: "base64 wrapped at 64", in: []byte(wrap(b64, 64, "\n")), der: leaf.DER},
		{name: "base64 wrapped at 76 crlf", in: []byte(wrap(b64, 76, "\r\n")), der: leaf.DER},
		{name: "base64 without padding", in: []byte(strings.TrimRight(b64, "=")), der: leaf.DER},
		{name: "issued by a ca", in: issued.PEM(), der: issued.DER},
		{name: "notBefore in the future", in: future.PEM(), der: future.DER},
		{name: "pkcs7 with one certificate", in: pkcs7(leaf.DER), der: leaf.DER},
		{name: "pem pkcs7 with one certificate", in: pemBlock("PKCS7", pkcs7(leaf.DER)), der: leaf.DER},
		{name: "pem with a csr block too", in: join("", pemBlock("CERTIFICATE REQUEST", csr), pemLF), der: leaf.DER},

		// contains_private_key.
		{name: "pem certificate and pkcs8 key", in: leaf.CertAndKeyPEM(), want: certs.ContainsPrivateKey, der: leaf.DER, msg: "a certificate and a private key"},
		{name: "chain and key", in: join("", pemLF, other.PEM(), leaf.KeyPEM()), want: certs.ContainsPrivateKey, msg: "holds 2 certificates and a private key"},
		{name: "pem key before certificate", in: join("", leaf.KeyPEM(), pemLF), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "pem rsa private key", in: leaf.PKCS1KeyPEM(), want: certs.ContainsPrivateKey, msg: `"RSA PRIVATE KEY" block`},
		{name: "pem ec private key", in: pemBlock("EC PRIVATE KEY", sec1), want: certs.ContainsPrivateKey},
		{name: "pem dsa private key marker", in: []byte("-----BEGIN DSA PRIVATE KEY-----\nMIIBuw==\n-----END DSA PRIVATE KEY-----\n"), want: certs.ContainsPrivateKey},
		{name: "pem encrypted private key", in: pemBlock("ENCRYPTED PRIVATE KEY", encryptedPKCS8()), want: certs.ContainsPrivateKey},
		{name: "pem openssh private key", in: pemBlock("OPENSSH PRIVATE KEY", append([]byte("openssh-key-v1\x00"), garbage[:64]...)), want: certs.ContainsPrivateKey},
		{name: "pem key with headers", in: []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), want: certs.ContainsPrivateKey},
		{name: "pem key end line only", in: join("", pemLF, "AAAA\n-----END PRIVATE KEY-----\n"), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "ssh2 encrypted private key", in: []byte("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"x\"\nP2/56wAAAA==\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n"), want: certs.ContainsPrivateKey},
		{name: "pgp private key block", in: []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF==\n-----END PGP PRIVATE KEY BLOCK-----\n"), want: certs.ContainsPrivateKey},
		{name: "putty key file", in: []byte("PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: x\nPublic-Lines: 1\nAAAA\nPrivate-Lines: 1\nAAAA\n"), want: certs.ContainsPrivateKey, msg: "PuTTY"},
		{name: "der pkcs1 key", in: pkcs1, want: certs.ContainsPrivateKey, msg: "PKCS#1"},
		{name: "der pkcs8 key", in: pkcs8, want: certs.ContainsPrivateKey, msg: "PKCS#8"},
		{name: "der pkcs8 ed25519 key", in: edPKCS8, want: certs.ContainsPrivateKey},
		{name: "der sec1 key", in: sec1, want: certs.ContainsPrivateKey, msg: "SEC 1"},
		{name: "der encrypted pkcs8", in: encryptedPKCS8(), want: certs.ContainsPrivateKey, msg: "encrypted"},
		{name: "der pkcs12 shape", in: pkcs12Shape(false), want: certs.ContainsPrivateKey, msg: "holds a PKCS#12/PFX bundle (certificate with its private key); send only the public certificate (.cer)"},
		{name: "ber pkcs12 indefinite length", in: pkcs12Shape(true), want: certs.ContainsPrivateKey},
		{name: "base64 pkcs12", in: []byte(wrap(base64.StdEncoding.EncodeToString(pkcs12Shape(false)), 64, "\n")), want: certs.ContainsPrivateKey},
		{name: "base64 pkcs8 key", in: []byte(wrap(base64.StdEncoding.EncodeToString(pkcs8), 76, "\r\n")), want: certs.ContainsPrivateKey, msg: "base64-encoded"},
		{name: "base64 key next to pem certificate", in: join("", pemLF, "\n"+wrap(base64.StdEncoding.EncodeToString(pkcs1), 64, "\n")), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "base64 certificate then base64 key on the next line", in: []byte(padded(leaf.DER) + "\n" + base64.StdEncoding.EncodeToString(pkcs1) + "\n"), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "der certificate followed by pem key", in: append(clone(leaf.DER), leaf.KeyPEM()...), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "der certificate followed by der key", in: append(clone(leaf.DER), pkcs1...), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "certificate block holding a key", in: pemBlock("CERTIFICATE", pkcs8), want: certs.ContainsPrivateKey, msg: "in PEM block 1 (CERTIFICATE)"},
		{name: "key in a pkcs7 bundle", in: pkcs7(leaf.DER, pkcs1), want: certs.ContainsPrivateKey, der: leaf.DER},
		{name: "utf-16 pem key", in: utf16LE("\ufeff" + string(leaf.KeyPEM())), want: certs.ContainsPrivateKey},

		// multiple_certificates.
		{name: "two pem blocks", in: join("", pemLF, other.PEM()), want: certs.MultipleCertificates, msg: `holds 2 certificates ("CN=app.contoso.com,O=Contoso", "CN=other.contoso.com")`},
		{name: "leaf and its ca", in: join("", issued.PEM(), ca.PEM()), want: certs.MultipleCertificates},
		{name: "der followed by der", in: append(clone(leaf.DER), other.DER...), want: certs.MultipleCertificates},
		{name: "one pem block with two certificates", in: pemBlock("CERTIFICATE", append(clone(leaf.DER), other.DER...)), want: certs.MultipleCertificates},
		{name: "pkcs7 with two certificates", in: pkcs7(issued.DER, ca.DER), want: certs.MultipleCertificates, msg: "PKCS#7 bundle of 2 certificates"},
		{name: "base64 certificate and pem certificate", in: join(b64+"\n\n", other.PEM()), want: certs.MultipleCertificates},

		// not_a_certificate.
		{name: "empty", in: []byte{}, want: certs.NotACertificate, msg: "is empty"},
		{name: "whitespace", in: []byte(" \r\n\t\n"), want: certs.NotACertificate, msg: "only whitespace"},
		{name: "bom only", in: []byte("\ufeff"), want: certs.NotACertificate},
		{name: "garbage", in: garbage, want: certs.NotACertificate},
		{name: "prose", in: []byte("Dear customer, please find the certificate attached.\n"), want: certs.NotACertificate, msg: "neither PEM nor base64"},
		{name: "truncated der", in: leaf.DER[:len(leaf.DER)/2], want: certs.NotACertificate, msg: "truncated"},
		{name: "truncated base64", in: []byte(b64[:len(b64)/2]), want: certs.NotACertificate},
		{name: "pem csr", in: pemBlock("CERTIFICATE REQUEST", csr), want: certs.NotACertificate, msg: "certificate signing request"},
		{name: "der csr", in: csr, want: certs.NotACertificate, msg: "certificate signing request"},
		{name: "pem public key", in: pemBlock("PUBLIC KEY", spki), want: certs.NotACertificate, msg: "public key"},
		{name: "der public key", in: spki, want: certs.NotACertificate, msg: "public key"},
		{name: "der rsa public key", in: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey), want: certs.NotACertificate, msg: "public key"},
		{name: "der crl", in: crlShape(), want: certs.NotACertificate, msg: "revocation list"},
		{name: "pem broken body", in: brokenBody, want: certs.NotACertificate, msg: "does not decode"},
		{name: "pem without end", in: bad, want: certs.NotACertificate, msg: "no END line"},
		{name: "pem end of another type", in: bytes.Replace(pemLF, []byte("END CERTIFICATE"), []byte("END CERTIFICATE REQUEST"), 1), want: certs.NotACertificate, msg: "END line of another type"},
		{name: "pem empty block", in: []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), want: certs.NotACertificate, msg: "is empty"},
		{name: "pem good and broken certificate", in: join("", pemLF, brokenBody), want: certs.NotACertificate, der: leaf.DER},
		{name: "der certificate and trailing garbage", in: append(clone(leaf.DER), garbage[:100]...), want: certs.NotACertificate, der: leaf.DER, msg: "followed by"},
		{name: "damaged certificate", in: damagedCert(leaf.DER), want: certs.NotACertificate, msg: "damaged certificate"},
		{name: "pkcs7 without certificates", in: pkcs7(), want: certs.NotACertificate, msg: "without any certificate"},
		{name: "pem begin line only", in: []byte("-----BEGIN CERTIFICATE\nMIIB\n"), want: certs.NotACertificate},
		{name: "huge der length", in: []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x01}, want: certs.NotACertificate},

		// The certificate rules.
		{name: "ecdsa", in: ec.PEM(), want: certs.UnsupportedKeyType, der: ec.DER, msg: "ECDSA key on curve P-256"},
		{name: "ed25519", in: ed.PEM(), want: certs.UnsupportedKeyType, der: ed.DER, msg: "Ed25519"},
		{name: "weak rsa", in: weak.PEM(), want: certs.WeakKey, der: weak.DER, msg: "RSA key of 1024 bits; policy.min_rsa_bits is 2048"},
		{name: "expired", in: expired.DER, want: certs.Expired, der: expired.DER, msg: "expired on 2026-10-01 (55 days ago)"},
		{name: "expires too soon", in: soon.PEM(), want: certs.ExpiresTooSoon, der: soon.DER, msg: "expires on 2026-12-07, in 12 days; policy.min_validity_days is 30"},
		{name: "too large", in: append(bytes.Repeat([]byte("\n"), certs.MaxFileSize), pemLF...), want: certs.TooLarge, msg: "input is 1.1 MiB; the limit is 1 MiB"},
	}
	return cases
}

// padded returns the base64 of d. With d's usual length it ends in padding, which is what
// the case using it is about; without, the two blobs decode as one and the verdict is the same.
func padded(d []byte) string {
	return base64.StdEncoding.EncodeToString(d)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// join concatenates strings and byte slices.
func join(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		}
	}
	return b
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func wrap(s string, width int, nl string) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + nl)
		s = s[width:]
	}
	b.WriteString(s + nl)
	return b.String()
}

func indent(p []byte) []byte {
	var b []byte
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		b = append(b, "    "...)
		b = append(b, bytes.TrimSuffix(line, []byte("\n"))...)
		b = append(b, "  \n"...)
	}
	return b
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// DER builders for structures the standard library does not write.

func der(tag byte, parts ...[]byte) []byte {
	var content []byte
	for _, p := range parts {
		content = append(content, p...)
	}
	n := len(content)
	switch {
	case n < 0x80:
		return append([]byte{tag, byte(n)}, content...)
	case n < 0x100:
		return append([]byte{tag, 0x81, byte(n)}, content...)
	case n < 0x10000:
		return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, content...)
	}
	return append([]byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}, content...)
}

func seq(parts ...[]byte) []byte { return der(0x30, parts...) }
func oid(b ...byte) []byte       { return der(0x06, b) }
func integer(v byte) []byte      { return []byte{0x02, 0x01, v} }

// pkcs7 builds a degenerate PKCS#7 SignedData (a .p7b) holding the given DER elements.
func pkcs7(elems ...[]byte) []byte {
	sd := [][]byte{integer(1), der(0x31), seq(oid(oidPKCS7Data...))}
	if len(elems) > 0 {
		sd = append(sd, der(0xa0, elems...))
	}
	sd = append(sd, der(0x31))
	return seq(oid(oidPKCS7SignedData...), der(0xa0, seq(sd...)))
}

// pkcs12Shape builds the outer structure of a PFX: SEQUENCE { INTEGER 3, ContentInfo data,
// MacData }, in DER or with BER indefinite lengths as some writers produce.
func pkcs12Shape(indefinite bool) []byte {
	payload := der(0x04, bytes.Repeat([]byte{0x5a}, 300))
	if !indefinite {
		return seq(integer(3), seq(oid(oidPKCS7Data...), der(0xa0, payload)), seq(seq(seq(oid(0x2b, 0x0e, 0x03, 0x02, 0x1a)), der(0x04, make([]byte, 20))), der(0x04, make([]byte, 8))))
	}
	b := []byte{0x30, 0x80}
	b = append(b, integer(3)...)
	b = append(b, 0x30, 0x80)
	b = append(b, oid(oidPKCS7Data...)...)
	b = append(b, 0xa0, 0x80)
	b = append(b, payload...)
	return append(b, 0, 0, 0, 0, 0, 0)
}

// encryptedPKCS8 builds an EncryptedPrivateKeyInfo with a PBES2 algorithm identifier.
func encryptedPKCS8() []byte {
	return seq(seq(oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d), seq()), der(0x04, bytes.Repeat([]byte{0xa5}, 1200)))
}

// crlShape builds the shape of a v2 CRL: SEQUENCE { SEQUENCE { INTEGER 1, SEQUENCE alg,
// SEQUENCE issuer, UTCTime }, SEQUENCE alg, BIT STRING }.
func crlShape() []byte {
	alg := seq(oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b))
	tbs := seq(integer(1), alg, seq(), der(0x17, []byte("261125120000Z")))
	return seq(tbs, alg, der(0x03, []byte{0, 1, 2, 3}))
}

// trustAux builds OpenSSL's X509_CERT_AUX: trusted uses and an alias.
func trustAux() []byte {
	return seq(seq(oid(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02)), der(0x0c, []byte("app alias")))
}

// damagedCert keeps a certificate's outer shape but breaks its validity (the tag of notBefore).
func damagedCert(d []byte) []byte {
	c, err := x509.ParseCertificate(d)
	if err != nil {
		panic(err)
	}
	out := clone(d)
	i := bytes.Index(out, c.RawTBSCertificate)
	j := bytes.Index(out[i:], []byte{0x17, 0x0d}) // UTCTime notBefore
	out[i+j] = 0x04
	return out
}
