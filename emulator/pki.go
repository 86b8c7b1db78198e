package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// File names inside the emulator's directory.
const (
	fileCACert      = "ca.pem"
	fileCAKey       = "ca.key"
	fileServerCert  = "server.pem"
	fileServerKey   = "server.key"
	fileSigningKey  = "signing.key"
	fileSigningCert = "signing.pem"
	fileState       = "state.json"
	fileDemo        = "demo.json"
)

// generateRSAKey makes RSA keys (the token-signing key, the demo's keys). Tests replace it
// with a cache: generating 2048-bit keys is the slowest thing the emulator does.
var generateRSAKey = rsa.GenerateKey

// pki is the emulator's key material: the CA clients trust, the TLS server certificate it
// issued, and the key that signs access tokens (with a self-signed certificate for the JWKS
// x5c and x5t).
type pki struct {
	caCert      *x509.Certificate
	caKey       crypto.Signer
	serverCert  tls.Certificate
	signingKey  *rsa.PrivateKey
	signingCert *x509.Certificate
	// signingKID is the base64url SHA-1 of signingCert: Entra's kid and x5t.
	signingKID string
}

// loadOrCreatePKI reads the key material from dir, creating whatever is missing. The TLS
// material is dated by the wall clock, not the emulator's clock: TLS clients check it against
// theirs. A server certificate that expires within 30 days, or that another CA issued, is
// replaced.
func loadOrCreatePKI(dir string) (*pki, error) {
	p := &pki{}
	wall := time.Now()

	caCert, caKey, err := readCertAndKey(filepath.Join(dir, fileCACert), filepath.Join(dir, fileCAKey))
	switch {
	case errors.Is(err, os.ErrNotExist):
		caCert, caKey, err = createCA(dir, wall)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	p.caCert, p.caKey = caCert, caKey

	srvCert, srvKey, err := readCertAndKey(filepath.Join(dir, fileServerCert), filepath.Join(dir, fileServerKey))
	if err == nil && (srvCert.NotAfter.Before(wall.Add(30*24*time.Hour)) || srvCert.CheckSignatureFrom(caCert) != nil) {
		err = os.ErrNotExist
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		srvCert, srvKey, err = createServerCert(dir, caCert, caKey, wall)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvCert.Raw, caCert.Raw}, PrivateKey: srvKey, Leaf: srvCert}

	sigCert, sigKey, err := readCertAndKey(filepath.Join(dir, fileSigningCert), filepath.Join(dir, fileSigningKey))
	switch {
	case errors.Is(err, os.ErrNotExist):
		sigCert, sigKey, err = createSigningKey(dir, wall)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	rk, ok := sigKey.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reading %s: token-signing key is not RSA", filepath.Join(dir, fileSigningKey))
	}
	p.signingKey, p.signingCert = rk, sigCert
	sum := sha1.Sum(sigCert.Raw)
	p.signingKID = base64.RawURLEncoding.EncodeToString(sum[:])
	return p, nil
}

func readCertAndKey(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(cb)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("reading %s: no PEM certificate", certPath)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", certPath, err)
	}
	kblock, _ := pem.Decode(kb)
	if kblock == nil || kblock.Type != "PRIVATE KEY" {
		return nil, nil, fmt.Errorf("reading %s: no PEM private key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("reading %s: unsupported key type %T", keyPath, k)
	}
	return c, signer, nil
}

func createCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating emulator CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "certagent emulator CA", Organization: []string{"certagent"}},
		NotBefore:             now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              now.AddDate(10, 0, 0).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return issueAndSave(dir, fileCACert, fileCAKey, tmpl, tmpl, key, key)
}

func createServerCert(dir string, ca *x509.Certificate, caKey crypto.Signer, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating emulator server key: %w", err)
	}
	notAfter := now.AddDate(1, 0, 0)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"certagent emulator"}},
		NotBefore:    now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:     notAfter.UTC().Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	return issueAndSave(dir, fileServerCert, fileServerKey, tmpl, ca, key, caKey)
}

func createSigningKey(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := generateRSAKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generating emulator token-signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "certagent emulator token signing"},
		NotBefore:    now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:     now.AddDate(10, 0, 0).UTC().Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	return issueAndSave(dir, fileSigningCert, fileSigningKey, tmpl, tmpl, key, key)
}

func issueAndSave(dir, certFile, keyFile string, tmpl, parent *x509.Certificate, key crypto.Signer, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s: %w", certFile, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s: %w", certFile, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", keyFile, err)
	}
	// The key first: a certificate on disk without its key would be read back as broken.
	if err := writeFileAtomic(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// writeFileAtomic writes data to path through a temporary file in the same directory, synced
// before it is renamed over path, so a crash leaves either the old or the new content.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Windows has no permission bits to set (Chmod only toggles read-only there).
	if runtime.GOOS != "windows" {
		if err = f.Chmod(perm); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// Make the rename itself durable. Windows cannot open a directory for syncing; NTFS
	// journals the rename instead.
	if runtime.GOOS != "windows" {
		if d, derr := os.Open(dir); derr == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}
