package provenance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Limits of the keys a provider may pin.
const (
	// MinRSABits is the shortest RSA key taken.
	MinRSABits = 2048
	// MaxRSABits is the longest (a longer one is a mistake, and slow to verify with).
	MaxRSABits = 16384
	// maxKeyFile bounds a key file; a public key is well under a KiB.
	maxKeyFile = 64 << 10
)

// Key is one pinned public key of the provider. Its methods do not change it.
type Key struct {
	// Label says where the key was configured: the key file's name, or
	// "provenance.keys[N]" for one written into the config ("#2" and on for a second key in
	// the same PEM).
	Label string
	// Algorithm names the key: "ECDSA P-256", "ECDSA P-384", "Ed25519", "RSA 3072", or
	// "RSA-PSS 3072" for a key that may sign with PSS only.
	Algorithm string
	// Fingerprint is "SHA256:" and the SHA-256 of the key's DER SubjectPublicKeyInfo, in
	// lower-case hex: `openssl pkey -pubin -in key.pem -outform DER | openssl dgst -sha256`.
	Fingerprint string

	pub     crypto.PublicKey
	pssOnly bool // an RSA-PSS key (id-RSASSA-PSS): PKCS#1 v1.5 signatures by it are refused
}

// String names the key for people: "provider-2027.pub (ECDSA P-256, SHA256:3f0a…)".
func (k Key) String() string {
	return fmt.Sprintf("%s (%s, %s)", k.Label, k.Algorithm, k.Fingerprint)
}

// oidRSASSAPSS is the algorithm of an RSA key restricted to PSS (RFC 4055), which Go's
// x509.ParsePKIXPublicKey does not take.
var oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// The algorithms Go's x509.ParsePKIXPublicKey knows.
var (
	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEC      = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// ParseKeys reads the public keys of PEM text: one or more "PUBLIC KEY" blocks
// (SubjectPublicKeyInfo, as `openssl pkey -pubout` and cosign write them) or "RSA PUBLIC
// KEY" blocks (PKCS#1). Text around the blocks is ignored. label names the keys (see
// Key.Label). A private key, a certificate, a key of another kind (ECDSA on another curve
// than P-256 and P-384, RSA under 2048 bits, Ed448, DSA) or no key at all is an error that
// says what to pin instead.
func ParseKeys(label string, data []byte) ([]Key, error) {
	var keys []Key
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch t := block.Type; {
		case strings.Contains(t, "PRIVATE KEY"):
			return nil, fmt.Errorf("holds a private key (%s); pin the provider's public key only, which the provider gives out (openssl pkey -in key.pem -pubout)", t)
		case t == "CERTIFICATE":
			return nil, errors.New("holds a certificate, not the provider's signing public key; pin the key the provider signs with (-----BEGIN PUBLIC KEY-----), never the certificate being rotated")
		case t == "PUBLIC KEY" || t == "RSA PUBLIC KEY":
			k, err := parseKey(t, block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", len(keys)+1, err)
			}
			k.Label = label
			if len(keys) > 0 {
				k.Label += "#" + strconv.Itoa(len(keys)+1)
			}
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("holds a PEM block %q; a pinned key is a -----BEGIN PUBLIC KEY----- block", printable(t))
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no PEM public key (-----BEGIN PUBLIC KEY-----)")
	}
	return keys, nil
}

// ReadKeyFile reads the keys of a PEM file (see ParseKeys), labelled with the file's name.
// Errors name the file.
func ReadKeyFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading provenance key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading provenance key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("provenance key file %s is larger than 64 KiB, which no public key is", path)
	}
	keys, err := ParseKeys(filepath.Base(path), b)
	if err != nil {
		return nil, fmt.Errorf("provenance key file %s: %w", path, err)
	}
	return keys, nil
}

// IsInline reports whether a provenance.keys entry is PEM written into the config rather than
// the path of a key file.
func IsInline(entry string) bool {
	return strings.Contains(entry, "-----BEGIN")
}

// parseKey parses one PEM block's key and checks it is of a kind the provider may pin.
func parseKey(typ string, der []byte) (Key, error) {
	var (
		pub     crypto.PublicKey
		spki    = der
		pssOnly bool
		err     error
	)
	if typ == "RSA PUBLIC KEY" {
		if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
			return Key{}, fmt.Errorf("the RSA public key does not parse: %v", err)
		}
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return Key{}, fmt.Errorf("encoding the RSA public key: %v", err)
		}
	} else if pub, err = x509.ParsePKIXPublicKey(der); err != nil {
		var perr error
		if pub, perr = parsePSSKey(der, err); perr != nil {
			return Key{}, perr
		}
		pssOnly = true
	}
	k := Key{pub: pub, pssOnly: pssOnly}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			k.Algorithm = "ECDSA P-256"
		case elliptic.P384():
			k.Algorithm = "ECDSA P-384"
		default:
			return Key{}, fmt.Errorf("an ECDSA key on curve %s; pin a key on P-256 or P-384", p.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		k.Algorithm = "Ed25519"
	case *rsa.PublicKey:
		bits := p.N.BitLen()
		switch {
		case bits < MinRSABits:
			return Key{}, fmt.Errorf("an RSA key of %d bits; pin a key of at least %d bits", bits, MinRSABits)
		case bits > MaxRSABits:
			return Key{}, fmt.Errorf("an RSA key of %d bits; the limit is %d", bits, MaxRSABits)
		}
		k.Algorithm = "RSA " + strconv.Itoa(bits)
		if pssOnly {
			k.Algorithm = "RSA-PSS " + strconv.Itoa(bits)
		}
	default:
		return Key{}, fmt.Errorf("a %T key; pin an ECDSA P-256 or P-384, Ed25519 or RSA key", pub)
	}
	sum := sha256.Sum256(spki)
	k.Fingerprint = "SHA256:" + hex.EncodeToString(sum[:])
	return k, nil
}

// parsePSSKey parses a SubjectPublicKeyInfo of algorithm id-RSASSA-PSS, whose key is a
// PKCS#1 RSAPublicKey like any RSA key's; the parameters (hash, salt) are not enforced:
// verification asks for SHA-256 and takes any salt length. perr is why Go's parser refused
// the key, for a key of a kind it knows.
func parsePSSKey(der []byte, perr error) (crypto.PublicKey, error) {
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	switch {
	case err != nil || len(rest) > 0:
		return nil, errors.New("the public key does not parse (not a DER SubjectPublicKeyInfo)")
	case spki.Algorithm.Algorithm.Equal(oidRSASSAPSS):
		pub, err := x509.ParsePKCS1PublicKey(spki.PublicKey.RightAlign())
		if err != nil {
			return nil, fmt.Errorf("the RSA-PSS public key does not parse: %v", err)
		}
		return pub, nil
	case spki.Algorithm.Algorithm.Equal(oidRSA), spki.Algorithm.Algorithm.Equal(oidEC), spki.Algorithm.Algorithm.Equal(oidEd25519):
		return nil, fmt.Errorf("the public key does not parse: %v", perr)
	}
	return nil, fmt.Errorf("a key of algorithm %s; pin an ECDSA P-256 or P-384, Ed25519 or RSA key", keyAlgorithmName(spki.Algorithm.Algorithm))
}

// keyAlgorithmName names a public key algorithm OID for a message.
func keyAlgorithmName(oid asn1.ObjectIdentifier) string {
	switch oid.String() {
	case "1.3.101.113":
		return "Ed448 (1.3.101.113)"
	case "1.2.840.10040.4.1":
		return "DSA (1.2.840.10040.4.1)"
	case "1.3.101.110", "1.3.101.111":
		return "X25519/X448 (" + oid.String() + ", not a signing key)"
	}
	return oid.String()
}

// printable cuts a PEM type from an input to something safe to print.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// equalKeys reports whether a and b are the same public key.
func equalKeys(a, b Key) bool {
	return a.Fingerprint == b.Fingerprint
}
