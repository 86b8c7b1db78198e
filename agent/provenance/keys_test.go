package provenance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

func pubPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestParseKeysRefuses: what a person might paste instead of the provider's signing public
// key is refused with a message that says what to pin.
func TestParseKeysRefuses(t *testing.T) {
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p256)
	tmpl := &x509.Certificate{SerialNumber: big1()}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p256.Public(), p256)
	// Ed448's SubjectPublicKeyInfo (RFC 8410), which Go does not parse.
	ed448 := "-----BEGIN PUBLIC KEY-----\nMEMwBQYDK2VxAzoAX9dEm1m0Yf0s54fsYWrUah2hNCSFpw4fig6nXYDpZ3jt8SR2\nm0bHBhvWeD3x5Q9s0foavq/oJWGA\n-----END PUBLIC KEY-----\n"
	tests := []struct {
		name, pem, want string
	}{
		{"private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), "holds a private key"},
		{"certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})), "never the certificate being rotated"},
		{"p521", string(pubPEM(t, p521.Public())), "curve P-521"},
		{"rsa1024", string(pubPEM(t, rsa1024.Public())), "RSA key of 1024 bits"},
		{"ed448", ed448, "Ed448"},
		{"nothing", "just text", "holds no PEM public key"},
		{"other block", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", `"FOO"`},
		{"garbage key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "does not parse"},
	}
	for _, tt := range tests {
		_, err := ParseKeys("x.pub", []byte(tt.pem))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeys(%s) = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestParseKeysSeveral: one PEM may hold several keys (the provider's current and next); each
// has its own label.
func TestParseKeysSeveral(t *testing.T) {
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	text := append([]byte("# the provider's keys\n"), pubPEM(t, a.Public())...)
	text = append(text, pubPEM(t, b.Public())...)
	keys, err := ParseKeys("provider.pub", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Label != "provider.pub" || keys[1].Label != "provider.pub#2" || keys[1].Algorithm != "Ed25519" {
		t.Errorf("keys = %v", keys)
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	os.WriteFile(path, text, 0o600)
	if ks, err := ReadKeyFile(path); err != nil || len(ks) != 2 || ks[0].Label != "k.pem" {
		t.Errorf("ReadKeyFile = %v, %v", ks, err)
	}
	if _, err := ReadKeyFile(path + ".missing"); err == nil || !strings.Contains(err.Error(), "k.pem.missing") {
		t.Errorf("ReadKeyFile(missing) = %v", err)
	}
	// The same key twice is pinned once.
	if v := NewVerifier(append(keys, keys...), false); len(v.Keys()) != 2 {
		t.Errorf("duplicates kept: %v", v.Keys())
	}
}

// TestPSSOnlyKey: an RSA-PSS key (id-RSASSA-PSS) takes PSS signatures and refuses PKCS#1 v1.5
// ones made with the same modulus.
func TestPSSOnlyKey(t *testing.T) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	k := Key{Label: "pss", Algorithm: "RSA-PSS 2048", Fingerprint: "SHA256:x", pub: &priv.PublicKey, pssOnly: true}
	sum := sha256.Sum256(provider)
	v1, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	pss, _ := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, sum[:], nil)
	v := NewVerifier([]Key{k}, true)
	if r := v.Check(pss, provider); r.Signer == nil {
		t.Errorf("PSS signature refused: %v", r.Reason)
	}
	if r := v.Check(v1, provider); r.Signer != nil || r.Reason.Code != certs.SignatureInvalid {
		t.Errorf("PKCS#1 v1.5 signature by a PSS key: %+v %v", r.Signer, r.Reason)
	}
}

// TestCheckWithoutKeys: without a pinned key nothing can be checked; a signature that comes is
// noted as unchecked, and only a required signature that is missing refuses.
func TestCheckWithoutKeys(t *testing.T) {
	var none *Verifier
	if r := none.Check(nil, provider); r.Reason != nil || r.Unchecked {
		t.Errorf("nil verifier, no signature: %+v", r)
	}
	if r := none.Check([]byte("sig"), provider); r.Reason != nil || !r.Unchecked {
		t.Errorf("nil verifier, a signature: %+v", r)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys, _ := ParseKeys("k", pubPEM(t, p256.Public()))
	if r := NewVerifier(keys, false).Check(nil, provider); r.Reason != nil || r.Signer != nil {
		t.Errorf("optional, unsigned: %+v", r)
	}
	if r := NewVerifier(keys, false).Check([]byte("not a signature at all"), provider); r.Reason == nil || r.Reason.Code != certs.SignatureInvalid {
		t.Errorf("optional, a bad signature: %+v", r)
	}
	if r := NewVerifier(keys, true).Check(make([]byte, certs.MaxSignatureSize+1), provider); r.Reason == nil || r.Reason.Code != certs.SignatureInvalid {
		t.Errorf("huge signature: %+v", r)
	}
}

// TestCheckAlternativeInput: an API submission's certificate field may be the base64 of the
// signed file: a signature of the decoded bytes counts.
func TestCheckAlternativeInput(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys, _ := ParseKeys("k", pubPEM(t, p256.Public()))
	der := []byte{0x30, 0x82, 1, 2, 3}
	sum := sha256.Sum256(der)
	sig, _ := ecdsa.SignASN1(rand.Reader, p256, sum[:])
	if r := NewVerifier(keys, true).Check(sig, []byte("MIIBAgMA"), der); r.Signer == nil {
		t.Errorf("signature of the decoded form: %v", r.Reason)
	}
}

// FuzzCheck: no input makes Check panic, and nothing but a real signature passes.
func FuzzCheck(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	var keys []Key
	for _, pub := range []crypto.PublicKey{p256.Public(), rsaKey.Public(), ed} {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		ks, err := ParseKeys("k", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, ks...)
	}
	v := NewVerifier(keys, true)
	f.Add([]byte("MEUCIQ=="), []byte("x"))
	f.Add(make([]byte, 256), []byte("x"))
	f.Add(make([]byte, 64), []byte(""))
	f.Fuzz(func(t *testing.T, sig, data []byte) {
		if r := v.Check(sig, data); r.Signer != nil {
			t.Fatalf("a fuzzed signature verified: %x", sig)
		} else if r.Reason == nil {
			t.Fatal("no reason")
		}
	})
}

func big1() *big.Int { return big.NewInt(1) }
