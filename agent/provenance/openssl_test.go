package provenance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

// The tests here sign with the real openssl command line, as a provider would: every key type,
// in binary and in base64 (`openssl base64`, wrapped at 64 columns). A missing openssl fails
// them (Debian: apt-get install openssl; .ci/run installs it): nothing is skipped.

// ossl runs openssl in dir and fails the test with its output when it fails.
func ossl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed by this test and is not on PATH (%v); install it (Debian: apt-get install openssl; .ci/run does)", err)
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// opensslKey is a key pair made by openssl in a folder, and how openssl signs with it.
type opensslKey struct {
	name string
	dir  string
	// sign signs file with the key, writing out (binary).
	sign func(t *testing.T, file, out string)
}

func (k opensslKey) pub(t *testing.T) []byte {
	t.Helper()
	ossl(t, k.dir, "pkey", "-in", k.name+".key", "-pubout", "-out", k.name+".pub")
	b, err := os.ReadFile(filepath.Join(k.dir, k.name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (k opensslKey) signed(t *testing.T, data []byte) []byte {
	t.Helper()
	f := filepath.Join(k.dir, "data-"+k.name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	k.sign(t, f, f+".sig")
	b, err := os.ReadFile(f + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newOpensslKey makes a key of kind with openssl genpkey.
func newOpensslKey(t *testing.T, dir, name, kind string) opensslKey {
	t.Helper()
	dgst := func(extra ...string) func(t *testing.T, file, out string) {
		return func(t *testing.T, file, out string) {
			args := append([]string{"dgst", "-sha256", "-sign", name + ".key"}, extra...)
			ossl(t, dir, append(args, "-out", out, file)...)
		}
	}
	k := opensslKey{name: name, dir: dir, sign: dgst()}
	gen := []string{"genpkey", "-out", name + ".key"}
	switch kind {
	case "p256":
		gen = append(gen, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
	case "p384":
		gen = append(gen, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
	case "ed25519":
		gen = append(gen, "-algorithm", "ED25519")
		// OpenSSL 3.0's dgst refuses Ed25519 keys; pkeyutl -rawin signs the bytes themselves.
		k.sign = func(t *testing.T, file, out string) {
			ossl(t, dir, "pkeyutl", "-sign", "-rawin", "-inkey", name+".key", "-in", file, "-out", out)
		}
	case "rsa2048":
		gen = append(gen, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
	case "rsa3072-pss":
		gen = append(gen, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072")
		k.sign = dgst("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32")
	case "rsa2048-pss-maxsalt":
		gen = append(gen, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
		k.sign = dgst("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max")
	case "rsapss-key":
		gen = append(gen, "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048")
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	ossl(t, dir, gen...)
	return k
}

// provider is what a provider delivers: a certificate file's bytes, as PEM.
var provider = []byte("-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA0example0not0a0real0certificate0but0bytes0all0the0same\n-----END CERTIFICATE-----\n")

func mustKeys(t *testing.T, label string, pemText []byte) []Key {
	t.Helper()
	keys, err := ParseKeys(label, pemText)
	if err != nil {
		t.Fatalf("ParseKeys(%s): %v", label, err)
	}
	return keys
}

// TestOpenSSLSignatures: for every key type, openssl's signature of the exact file bytes is
// accepted, in binary and in base64, and names its key; the same signature is refused for a
// changed file (signature_invalid), truncated (signature_invalid), and against a verifier
// pinning only another key (signer_not_pinned or, for a key of the same ECDSA or Ed25519 kind,
// signature_invalid: see the package documentation).
func TestOpenSSLSignatures(t *testing.T) {
	dir := t.TempDir()
	kinds := []string{"p256", "p384", "ed25519", "rsa2048", "rsa3072-pss", "rsa2048-pss-maxsalt", "rsapss-key"}
	type made struct {
		key  opensslKey
		pub  []Key
		kind string
	}
	var all []made
	for _, kind := range kinds {
		k := newOpensslKey(t, dir, kind, kind)
		all = append(all, made{k, mustKeys(t, kind+".pub", k.pub(t)), kind})
	}
	// Unpinned keys, made the same way: the same kinds as pinned ones, and another kind.
	otherP256 := newOpensslKey(t, dir, "other-p256", "p256")
	otherRSA := newOpensslKey(t, dir, "other-rsa2048", "rsa2048")
	otherEd := newOpensslKey(t, dir, "other-ed25519", "ed25519")

	for _, m := range all {
		t.Run(m.kind, func(t *testing.T) {
			v := NewVerifier(m.pub, true)
			sig := m.key.signed(t, provider)
			b64 := ossl(t, dir, "base64", "-in", filepath.Join(dir, "data-"+m.kind+".sig"))

			for name, s := range map[string][]byte{"binary": sig, "base64": b64, "base64 one line": []byte(base64.StdEncoding.EncodeToString(sig))} {
				r := v.Check(s, provider)
				if r.Reason != nil || r.Signer == nil {
					t.Fatalf("%s signature: %+v", name, r.Reason)
				}
				if r.Signer.Fingerprint != m.pub[0].Fingerprint || r.Signer.Label != m.kind+".pub" {
					t.Errorf("%s signature: signer %s, want %s", name, r.Signer, m.pub[0])
				}
			}

			changed := bytes.Replace(provider, []byte("example"), []byte("Example"), 1)
			if r := v.Check(sig, changed); r.Reason == nil || r.Reason.Code != certs.SignatureInvalid {
				t.Errorf("signature of other bytes: %+v, want signature_invalid", r.Reason)
			}
			for _, cut := range [][]byte{sig[:len(sig)-1], sig[:len(sig)/2], b64[:len(b64)/2]} {
				if r := v.Check(cut, provider); r.Reason == nil || r.Reason.Code != certs.SignatureInvalid {
					t.Errorf("truncated signature (%d of %d bytes): %+v, want signature_invalid", len(cut), len(sig), r.Reason)
				}
			}
			if r := v.Check(nil, provider); r.Reason == nil || r.Reason.Code != certs.SignatureMissing {
				t.Errorf("no signature: %+v, want signature_missing", r.Reason)
			}
		})
	}

	// A valid signature by a key that is not pinned.
	find := func(kind string) made {
		for _, m := range all {
			if m.kind == kind {
				return m
			}
		}
		t.Fatalf("no %s", kind)
		return made{}
	}
	tests := []struct {
		name   string
		pinned string
		signer opensslKey
		want   certs.Code
	}{
		// RSA: the padding shows that the pinned key of that size did not make it.
		{"rsa by another rsa of its size", "rsa2048", otherRSA, certs.SignerNotPinned},
		// Another kind or size than any pinned key.
		{"p256 with only p384 pinned", "p384", otherP256, certs.SignerNotPinned},
		{"ed25519 with only rsa pinned", "rsa2048", otherEd, certs.SignerNotPinned},
		{"rsa with only p256 pinned", "p256", otherRSA, certs.SignerNotPinned},
		// ECDSA and Ed25519 signatures do not say who made them: refused all the same.
		{"p256 by another p256", "p256", otherP256, certs.SignatureInvalid},
		{"ed25519 by another ed25519", "ed25519", otherEd, certs.SignatureInvalid},
	}
	for _, tt := range tests {
		t.Run("unpinned/"+tt.name, func(t *testing.T) {
			v := NewVerifier(find(tt.pinned).pub, false)
			r := v.Check(tt.signer.signed(t, provider), provider)
			if r.Reason == nil || r.Reason.Code != tt.want || r.Signer != nil {
				t.Errorf("Check = %+v, want %s", r.Reason, tt.want)
			}
		})
	}

	// An RSA signature by the pinned key over other bytes says that the key made it.
	rsa := find("rsa2048")
	r := NewVerifier(rsa.pub, true).Check(rsa.key.signed(t, []byte("another file")), provider)
	if r.Reason == nil || r.Reason.Code != certs.SignatureInvalid || !strings.Contains(r.Reason.Message, "made by pinned key rsa2048.pub") {
		t.Errorf("RSA signature of other bytes: %+v", r.Reason)
	}
}

// TestTwoPinnedKeys: while the provider changes its signing key, signatures by either pinned
// key are taken, and the result names the key that signed.
func TestTwoPinnedKeys(t *testing.T) {
	dir := t.TempDir()
	old := newOpensslKey(t, dir, "provider-2026", "p256")
	next := newOpensslKey(t, dir, "provider-2027", "p384")
	keys := append(mustKeys(t, "provider-2026.pub", old.pub(t)), mustKeys(t, "provider-2027.pub", next.pub(t))...)
	v := NewVerifier(keys, true)
	for _, k := range []opensslKey{old, next} {
		r := v.Check(k.signed(t, provider), provider)
		if r.Signer == nil || r.Signer.Label != k.name+".pub" {
			t.Errorf("signed by %s: %+v %v", k.name, r.Signer, r.Reason)
		}
	}
}

// TestCosignBlobSignature: the signature `cosign sign-blob --key cosign.key FILE` prints, as
// cosign makes it (SHA-256 of the blob, ecdsa.SignASN1 with the P-256 key cosign
// generate-key-pair makes, base64.StdEncoding; a newline after it on standard output, none
// with --output-signature): accepted with cosign.pub as cosign writes it. openssl verifies the
// same signature, which shows it is the form of `openssl dgst -sha256 -sign`.
func TestCosignBlobSignature(t *testing.T) {
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	cosignPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	digest := sha256.Sum256(provider)
	der, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	stdout := []byte(base64.StdEncoding.EncodeToString(der) + "\n")
	file := []byte(base64.StdEncoding.EncodeToString(der))

	v := NewVerifier(mustKeys(t, "cosign.pub", cosignPub), true)
	for name, sig := range map[string][]byte{"stdout": stdout, "--output-signature": file} {
		if r := v.Check(sig, provider); r.Signer == nil {
			t.Errorf("cosign signature (%s): %+v", name, r.Reason)
		}
	}

	for name, b := range map[string][]byte{"cosign.pub": cosignPub, "blob": provider, "blob.sig": der} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out := ossl(t, dir, "dgst", "-sha256", "-verify", "cosign.pub", "-signature", "blob.sig", "blob"); !strings.Contains(string(out), "Verified OK") {
		t.Errorf("openssl does not verify the cosign signature: %s", out)
	}
}

// TestFingerprintIsOpenSSLs: a key's fingerprint is the SHA-256 openssl computes over its
// DER SubjectPublicKeyInfo, for PUBLIC KEY and RSA PUBLIC KEY blocks alike.
func TestFingerprintIsOpenSSLs(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"p256", "ed25519", "rsa2048", "rsapss-key"} {
		k := newOpensslKey(t, dir, kind, kind)
		keys := mustKeys(t, kind, k.pub(t))
		out := ossl(t, dir, "pkey", "-pubin", "-in", kind+".pub", "-outform", "DER")
		sum := sha256.Sum256(out)
		if want := "SHA256:" + strings.ToLower(strings.TrimSpace(fmtHex(sum[:]))); keys[0].Fingerprint != want {
			t.Errorf("%s: fingerprint %s, openssl %s", kind, keys[0].Fingerprint, want)
		}
	}
	k := newOpensslKey(t, dir, "pkcs1", "rsa2048")
	ossl(t, dir, "rsa", "-in", "pkcs1.key", "-RSAPublicKey_out", "-out", "pkcs1.rsapub")
	b, _ := os.ReadFile(filepath.Join(dir, "pkcs1.rsapub"))
	if !bytes.Contains(b, []byte("RSA PUBLIC KEY")) {
		t.Fatalf("openssl wrote %s", b)
	}
	if a, b := mustKeys(t, "a", b)[0].Fingerprint, mustKeys(t, "b", k.pub(t))[0].Fingerprint; a != b {
		t.Errorf("RSA PUBLIC KEY fingerprint %s, PUBLIC KEY %s", a, b)
	}
}

func fmtHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
