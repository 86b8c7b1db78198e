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
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// BenchmarkCheck measures a signature check per key type, with two keys pinned (the one that
// signed last, as during the provider's key change), on a 2 KiB certificate file in base64 as
// cosign and openssl base64 write it; and a refusal (the signature of other bytes).
func BenchmarkCheck(b *testing.B) {
	data := make([]byte, 2048)
	rand.Read(data)
	sum := sha256.Sum256(data)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 3072)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig := func(f func() ([]byte, error)) []byte {
		s, err := f()
		if err != nil {
			b.Fatal(err)
		}
		return []byte(base64.StdEncoding.EncodeToString(s))
	}
	pin := func(pub crypto.PublicKey) Key {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		ks, err := ParseKeys("k", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil {
			b.Fatal(err)
		}
		return ks[0]
	}
	otherKey := pin(other.Public())
	cases := []struct {
		name string
		key  Key
		sig  []byte
		ok   bool
	}{
		{"ECDSA-P256", pin(p256.Public()), sig(func() ([]byte, error) { return ecdsa.SignASN1(rand.Reader, p256, sum[:]) }), true},
		{"ECDSA-P384", pin(p384.Public()), sig(func() ([]byte, error) { return ecdsa.SignASN1(rand.Reader, p384, sum[:]) }), true},
		{"Ed25519", pin(edPub), sig(func() ([]byte, error) { return ed25519.Sign(edPriv, data), nil }), true},
		{"RSA-3072-PKCS1v15", pin(rsaKey.Public()), sig(func() ([]byte, error) { return rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, sum[:]) }), true},
		{"RSA-3072-PSS", pin(rsaKey.Public()), sig(func() ([]byte, error) { return rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, sum[:], nil) }), true},
		{"refused-P256", pin(p256.Public()), sig(func() ([]byte, error) { return ecdsa.SignASN1(rand.Reader, other, sum[:]) }), false},
	}
	for _, c := range cases {
		keys := []Key{otherKey, c.key} // the key that signed is tried last
		if !c.ok {
			keys = []Key{c.key}
		}
		v := NewVerifier(keys, true)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if r := v.Check(c.sig, data); (r.Signer != nil) != c.ok {
					b.Fatalf("Check = %+v", r)
				}
			}
		})
	}
}
