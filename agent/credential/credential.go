// Package credential keeps the agent's own sign-in credential: an RSA key pair and a
// self-signed certificate that the agent generates itself. The certificate (public) is
// registered on the agent's app registration; the private key never leaves the machine, is
// stored readable only by administrators/root and the service, and is never logged.
package credential

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"sync/atomic"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/securefile"
)

// Credential is a certificate with its private key.
type Credential struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Facts returns the certificate's facts (public).
func (c *Credential) Facts() certs.Certificate { return certs.FactsOf(c.Cert) }

// LogValue keeps the private key out of logs: only public facts are printed.
func (c *Credential) LogValue() slog.Value {
	if c == nil || c.Cert == nil {
		return slog.StringValue("<none>")
	}
	return slog.GroupValue(
		slog.String("thumbprint", certs.ThumbprintSHA1(c.Cert.Raw)),
		slog.Time("not_after", c.Cert.NotAfter),
	)
}

// String never prints the key.
func (c *Credential) String() string {
	if c == nil || c.Cert == nil {
		return "<no credential>"
	}
	return "credential " + certs.ThumbprintSHA1(c.Cert.Raw)
}

// Options shape a generated credential.
type Options struct {
	// Subject CN of the self-signed certificate (default "certagent").
	CommonName string
	// Bits of the RSA key (default 3072).
	Bits int
	// Validity of the certificate (default 365 days).
	Validity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CommonName == "" {
		o.CommonName = "certagent"
	}
	if o.Bits == 0 {
		o.Bits = 3072
	}
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Generate makes a new key pair and a self-signed certificate for it. Entra ID accepts
// self-signed certificates for app authentication; what matters is the public key.
func Generate(o Options) (*Credential, error) {
	o = o.withDefaults()
	key, err := rsa.GenerateKey(rand.Reader, o.Bits)
	if err != nil {
		return nil, fmt.Errorf("generating RSA-%d key: %w", o.Bits, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := o.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		NotBefore:             now.Add(-5 * time.Minute), // tolerate a little clock skew
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating the agent certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Credential{Cert: cert, Key: key}, nil
}

// Files names where a credential lives.
type Files struct {
	// Cert is the public certificate (PEM), e.g. <state>/agent.pem.
	Cert string
	// Key is the private key (PKCS#8 PEM), e.g. <state>/agent.key.
	Key string
}

// ErrNotFound is returned by Load when no credential was stored yet.
var ErrNotFound = errors.New("no agent credential yet")

// Load reads a stored credential and checks that the key belongs to the certificate. It
// repairs loosened permissions on the key file.
func Load(f Files) (*Credential, error) {
	keyPEM, err := os.ReadFile(f.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist (run `certagent credential init`)", ErrNotFound, f.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the agent key %s: %w", f.Key, err)
	}
	defer clear(keyPEM)
	if err := securefile.Check(f.Key); err != nil {
		if rerr := securefile.Restrict(f.Key); rerr != nil {
			return nil, fmt.Errorf("the agent key is not private (%v) and could not be repaired: %w", err, rerr)
		}
	}
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("reading the agent certificate %s: %w", f.Cert, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the agent certificate %s: %w", f.Cert, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the agent key %s: %w", f.Key, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("the agent key %s does not belong to the certificate %s", f.Key, f.Cert)
	}
	return &Credential{Cert: cert, Key: key}, nil
}

// Save stores c: the key first (private), then the certificate. A crash between the two
// leaves the old certificate with the new key, which Load refuses loudly rather than using a
// mismatched pair; callers that rotate keep the old pair until the new one is registered.
func Save(f Files, c *Credential) error {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return fmt.Errorf("encoding the agent key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	defer clear(keyPEM)
	defer clear(der)
	if err := securefile.WriteFile(f.Key, keyPEM); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
	// The certificate is public, but keeping it beside the key with the same access keeps
	// the pair consistent for whoever restores a backup of the state directory.
	return securefile.WriteFile(f.Cert, certPEM)
}

// Init loads the stored credential, or generates and stores one when there is none.
// created reports which happened. An existing key is never overwritten.
func Init(f Files, o Options) (c *Credential, created bool, err error) {
	c, err = Load(f)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	c, err = Generate(o)
	if err != nil {
		return nil, false, err
	}
	if err := Save(f, c); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no private key block")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			clear(block.Bytes)
			if err != nil {
				return nil, errors.New("the PKCS#8 key does not parse")
			}
			s, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("the agent key must be RSA")
			}
			return s, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			clear(block.Bytes)
			if err != nil {
				return nil, errors.New("the PKCS#1 key does not parse")
			}
			return k, nil
		}
	}
}

// Source holds the credential in use and lets a renewal swap it while the Graph client runs.
// It satisfies graph.CredentialSource. Safe for concurrent use.
type Source struct {
	p atomic.Pointer[Credential]
}

// NewSource returns a Source holding c.
func NewSource(c *Credential) *Source {
	s := &Source{}
	s.p.Store(c)
	return s
}

// Current returns the certificate and key in use.
func (s *Source) Current() (*x509.Certificate, crypto.Signer) {
	c := s.p.Load()
	return c.Cert, c.Key
}

// Credential returns the credential in use.
func (s *Source) Credential() *Credential { return s.p.Load() }

// Set swaps in a new credential.
func (s *Source) Set(c *Credential) { s.p.Store(c) }

// Promote makes c (stored in next) the credential in main: main's key, then main's
// certificate, then next is removed. Recover repairs a promotion that a crash cut short.
func Promote(main, next Files, c *Credential) error {
	if err := Save(main, c); err != nil {
		return err
	}
	os.Remove(next.Cert)
	os.Remove(next.Key)
	return nil
}

// Recover repairs main after a crash inside Promote: when main's key and certificate do not
// belong together but next holds a valid pair, the promotion is finished. Otherwise it does
// nothing.
func Recover(main, next Files) error {
	if _, err := Load(main); err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	c, err := Load(next)
	if err != nil {
		return nil // nothing to recover from; Load(main) reports the problem
	}
	return Promote(main, next, c)
}
