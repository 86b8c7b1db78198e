// Package certs holds the leaf domain types every part of certagent shares: the facts about a
// certificate, the reasons a certificate is refused, an application's key credential, and the
// directory objects setup works with (owners, service principals, app role assignments).
//
// It imports nothing of the project and nothing outside the standard library.
package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Certificate is what certagent tells a person about one X.509 certificate. The JSON form is
// the one docs/contract.md gives for the API, `inspect --json` and the audit log.
type Certificate struct {
	// Thumbprint is the SHA-1 of the DER, upper-case hex, as the Azure portal shows it.
	Thumbprint string `json:"thumbprint"`
	// SHA256 is the SHA-256 of the DER, upper-case hex.
	SHA256       string    `json:"sha256"`
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	SerialNumber string    `json:"serialNumber"`
	NotBefore    time.Time `json:"notBefore"`
	NotAfter     time.Time `json:"notAfter"`
	// KeyAlgorithm is "RSA", "ECDSA", "Ed25519" or "unknown".
	KeyAlgorithm string `json:"keyAlgorithm"`
	// KeyBits is the modulus size for RSA and the curve size for ECDSA.
	KeyBits int `json:"keyBits"`
}

// CommonName returns the CN of the subject, or the whole subject when it has none.
func (c Certificate) CommonName() string {
	for _, part := range strings.Split(c.Subject, ",") {
		if cn, ok := strings.CutPrefix(strings.TrimSpace(part), "CN="); ok {
			return cn
		}
	}
	return c.Subject
}

// DaysLeft returns the whole days from now until NotAfter, negative once expired.
func (c Certificate) DaysLeft(now time.Time) int {
	return DaysBetween(now, c.NotAfter)
}

// DaysBetween returns the whole days from a to b, rounded toward negative infinity.
func DaysBetween(a, b time.Time) int {
	d := b.Sub(a)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}

// ThumbprintSHA1 returns the SHA-1 of der as upper-case hex: the "thumbprint" the Azure portal
// and Windows show.
func ThumbprintSHA1(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// FingerprintSHA256 returns the SHA-256 of der as upper-case hex.
func FingerprintSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// NormalizeThumbprint upper-cases a thumbprint and drops the separators people paste with it
// (spaces, colons, dashes). It does not check the length.
func NormalizeThumbprint(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		switch r {
		case ' ', ':', '-', '\t', '\u200e':
			return -1
		}
		return r
	}, s))
}

// FactsOf returns the facts about a parsed certificate. Times are in UTC.
func FactsOf(c *x509.Certificate) Certificate {
	alg, bits := KeyOf(c)
	return Certificate{
		Thumbprint:   ThumbprintSHA1(c.Raw),
		SHA256:       FingerprintSHA256(c.Raw),
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		SerialNumber: strings.ToUpper(c.SerialNumber.Text(16)),
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
		KeyAlgorithm: alg,
		KeyBits:      bits,
	}
}

// KeyOf names the public key's algorithm and size.
func KeyOf(c *x509.Certificate) (algorithm string, bits int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	if c.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return c.PublicKeyAlgorithm.String(), 0
	}
	return "unknown", 0
}

// String gives a one-line description for logs and messages.
func (c Certificate) String() string {
	return fmt.Sprintf("%s (thumbprint %s, expires %s)", c.Subject, c.Thumbprint, c.NotAfter.Format(time.DateOnly))
}
