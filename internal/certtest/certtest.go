// Package certtest mints CAs, leaf certificates and keys relative to a given clock, for tests
// only. Shipped code must never import it.
//
// RSA keys are slow to generate, so keys are cached per size and reused across certificates
// within one test binary: certificates stay distinct (serial, subject, validity), which is all
// the tests need.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// Cert is a minted certificate with its private key.
type Cert struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
}

// PEM returns the certificate as a PEM "CERTIFICATE" block.
func (c Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM returns the private key as a PKCS#8 "PRIVATE KEY" block.
func (c Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PKCS1KeyPEM returns an RSA private key as a PKCS#1 "RSA PRIVATE KEY" block.
func (c Cert) PKCS1KeyPEM() []byte {
	k, ok := c.Key.(*rsa.PrivateKey)
	if !ok {
		panic("certtest: PKCS1KeyPEM needs an RSA key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// CertAndKeyPEM returns the certificate followed by its key, as az login takes it.
func (c Cert) CertAndKeyPEM() []byte {
	return append(c.PEM(), c.KeyPEM()...)
}

type options struct {
	cn        string
	org       string
	notBefore time.Time
	notAfter  time.Time
	validFor  time.Duration
	keyKind   string // "rsa", "ecdsa", "ed25519"
	rsaBits   int
	freshKey  bool
	issuer    *Cert
	isCA      bool
	serial    *big.Int
}

// Option changes what New mints.
type Option func(*options)

// CommonName sets the subject CN (default "certtest leaf N").
func CommonName(cn string) Option { return func(o *options) { o.cn = cn } }

// Organization sets the subject O.
func Organization(org string) Option { return func(o *options) { o.org = org } }

// Validity sets notBefore and notAfter exactly.
func Validity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// ValidFor sets notBefore to now minus one hour and notAfter to now plus d.
func ValidFor(d time.Duration) Option {
	return func(o *options) { o.notBefore, o.notAfter = time.Time{}, time.Time{}; o.validFor = d }
}

// RSA makes an RSA key of bits (default 2048).
func RSA(bits int) Option { return func(o *options) { o.keyKind, o.rsaBits = "rsa", bits } }

// ECDSA makes a P-256 key.
func ECDSA() Option { return func(o *options) { o.keyKind = "ecdsa" } }

// Ed25519 makes an Ed25519 key.
func Ed25519() Option { return func(o *options) { o.keyKind = "ed25519" } }

// FreshKey generates a new key instead of reusing the cached one of the same kind.
func FreshKey() Option { return func(o *options) { o.freshKey = true } }

// IssuedBy signs the certificate with ca's key (default: self-signed).
func IssuedBy(ca Cert) Option { return func(o *options) { o.issuer = &ca } }

// AsCA marks the certificate as a CA.
func AsCA() Option { return func(o *options) { o.isCA = true } }

// Serial sets the serial number.
func Serial(n int64) Option { return func(o *options) { o.serial = big.NewInt(n) } }

var counter atomic.Int64

// New mints a certificate valid from now-1h to now+365 days unless options say otherwise.
// It panics on failure: inputs are the test's own.
func New(now time.Time, opts ...Option) Cert {
	o := options{keyKind: "rsa", rsaBits: 2048, validFor: 365 * 24 * time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	n := counter.Add(1)
	if o.cn == "" {
		o.cn = fmt.Sprintf("certtest leaf %d", n)
	}
	if o.notBefore.IsZero() && o.notAfter.IsZero() {
		o.notBefore = now.Add(-time.Hour)
		o.notAfter = now.Add(o.validFor)
	}
	if o.serial == nil {
		o.serial = big.NewInt(1000 + n)
	}
	key := newKey(o)
	subject := pkix.Name{CommonName: o.cn}
	if o.org != "" {
		subject.Organization = []string{o.org}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          o.serial,
		Subject:               subject,
		NotBefore:             o.notBefore.UTC().Truncate(time.Second),
		NotAfter:              o.notAfter.UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
	}
	if o.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	parent, signer := tmpl, key
	if o.issuer != nil {
		parent, signer = o.issuer.Cert, o.issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		panic(fmt.Sprintf("certtest: minting %q: %v", o.cn, err))
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return Cert{Cert: c, DER: der, Key: key}
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.Signer{}
)

func newKey(o options) crypto.Signer {
	id := fmt.Sprintf("%s-%d", o.keyKind, o.rsaBits)
	if !o.freshKey {
		keyMu.Lock()
		defer keyMu.Unlock()
		if k, ok := keyCache[id]; ok {
			return k
		}
	}
	var k crypto.Signer
	var err error
	switch o.keyKind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, o.rsaBits)
	case "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unknown key kind %q", o.keyKind)
	}
	if err != nil {
		panic(fmt.Sprintf("certtest: generating key: %v", err))
	}
	if !o.freshKey {
		keyCache[id] = k
	}
	return k
}
