package config

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/aucloud/certagent/agent/provenance"
)

// maxPEMFile bounds the PEM files CheckFiles reads.
const maxPEMFile = 1 << 20

// CheckFiles runs the checks that read the disk, after Validate: that cloud.ca_file is a
// readable PEM bundle of certificates; that the agent's certificate and key, where they
// exist, are readable, parse, are RSA and belong together (the agent creates them when
// neither exists, so their absence is no problem, but a key without its certificate is);
// and that the folders and files the agent uses are not something else (a file where a
// folder belongs). It returns Errors, or nil. It writes nothing.
func (c *Config) CheckFiles() error { return c.checkFiles(nil).err() }

// checkFiles runs the checks of CheckFiles, leaving out the keys in skip.
func (c *Config) checkFiles(skip map[string]bool) Errors {
	k := &checker{c: c, skip: skip}
	if c.Cloud.CAFile != "" {
		k.caFile("cloud.ca_file", c.Cloud.CAFile)
	}
	k.provenanceFiles("provenance", c.Provenance)
	ts := c.Targets
	prefix := func(i int) string { return fmt.Sprintf("targets[%d]", i) }
	if len(ts) == 0 {
		ts, prefix = []Target{c.Target}, func(int) string { return "target" }
	}
	for i, t := range ts {
		k.provenanceFiles(prefix(i)+".provenance", t.Provenance)
		if t.Source.CAFile != "" {
			k.caFile(prefix(i)+".source.ca_file", t.Source.CAFile)
		}
	}
	k.credentialFiles()
	for _, f := range []struct{ key, p string }{
		{"state_dir", c.StateDir},
		{"drop_folder", c.DropFolder},
	} {
		if fi, err := os.Stat(f.p); err == nil && !fi.IsDir() {
			k.add(f.key, "%s is not a folder", f.p)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.add(f.key, "%v", err)
		}
	}
	if c.Notify.SecretFile != "" {
		// Written by a person (the provider gave the secret): it must be there.
		if fi, err := os.Stat(c.Notify.SecretFile); err != nil {
			k.add("notify.secret_file", "%v", err)
		} else if !fi.Mode().IsRegular() {
			k.add("notify.secret_file", "%s is not a regular file", c.Notify.SecretFile)
		}
	}
	for _, f := range []struct{ key, p string }{
		{"api.token_file", c.API.TokenFile},
		{"log.file", c.Log.File},
	} {
		if f.p == "" {
			continue
		}
		if fi, err := os.Stat(f.p); err == nil && !fi.Mode().IsRegular() {
			k.add(f.key, "%s is not a regular file", f.p)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.add(f.key, "%v", err)
		}
	}
	return k.errs
}

// readSmall reads a regular file of at most maxPEMFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than 1 MiB", path)
	}
	return b, nil
}

// provenanceFiles reads the key files of a provenance.keys list.
func (k *checker) provenanceFiles(section string, p Provenance) {
	for i, e := range p.Keys {
		key := fmt.Sprintf("%s.keys[%d]", section, i)
		if e == "" || provenance.IsInline(e) || k.skipped(key) {
			continue
		}
		if _, err := provenance.ReadKeyFile(e); err != nil {
			k.add(key, "%v", err)
		}
	}
}

// caFile checks that path (the value of key) is a readable PEM bundle of certificates.
func (k *checker) caFile(key, path string) {
	b, err := readSmall(path)
	if errors.Is(err, fs.ErrNotExist) {
		k.add(key, "%s does not exist", path)
		return
	}
	if err != nil {
		k.add(key, "%v", err)
		return
	}
	n := 0
	for i := 1; ; i++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				k.add(key, "%s: PEM block %d does not parse: %v", path, i, err)
				return
			}
			n++
		case bytes.Contains([]byte(block.Type), []byte("PRIVATE KEY")):
			k.add(key, "%s holds a private key; a CA file holds certificates only", path)
			return
		}
	}
	if n == 0 {
		k.add(key, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
}

// credentialFiles checks the agent's own certificate and key, which the agent creates.
func (k *checker) credentialFiles() {
	a := k.c.Auth
	certPEM, certErr := readSmall(a.CertificateFile)
	keyPEM, keyErr := readSmall(a.KeyFile)
	defer clear(keyPEM)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)

	var cert *x509.Certificate
	switch {
	case certMissing && !keyMissing:
		k.add("auth.certificate_file", "%s does not exist but auth.key_file %s does; restore the certificate, or move the key away so that the agent makes a new pair", a.CertificateFile, a.KeyFile)
	case certMissing:
	case certErr != nil:
		k.add("auth.certificate_file", "%v", certErr)
	default:
		var err error
		if cert, err = firstCertificate(certPEM); err != nil {
			k.add("auth.certificate_file", "%s: %v", a.CertificateFile, err)
		} else if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
			k.add("auth.certificate_file", "%s: the key is %s; Entra ID needs RSA", a.CertificateFile, cert.PublicKeyAlgorithm)
			cert = nil
		}
	}

	var key crypto.Signer
	switch {
	case keyMissing:
	case keyErr != nil:
		k.add("auth.key_file", "%v", keyErr)
	default:
		var err error
		if key, err = firstPrivateKey(keyPEM); err != nil {
			k.add("auth.key_file", "%s: %v", a.KeyFile, err)
		}
	}
	if cert != nil && key != nil && !cert.PublicKey.(*rsa.PublicKey).Equal(key.Public()) {
		k.add("auth.key_file", "%s is not the key of auth.certificate_file %s", a.KeyFile, a.CertificateFile)
	}
}

func firstCertificate(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----)")
		}
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the certificate does not parse: %w", err)
			}
			return c, nil
		}
	}
}

// firstPrivateKey parses the first private key block: PKCS#8 ("PRIVATE KEY", as the agent
// writes it) or PKCS#1 ("RSA PRIVATE KEY"). The key must be RSA.
func firstPrivateKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM private key (-----BEGIN PRIVATE KEY-----)")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			clear(block.Bytes)
			if err != nil {
				return nil, errors.New("the PKCS#8 private key does not parse")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("the private key is not RSA; Entra ID needs RSA")
			}
			return rk, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			clear(block.Bytes)
			if err != nil {
				return nil, errors.New("the PKCS#1 private key does not parse")
			}
			return k, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; the agent needs it unencrypted (it protects the file with permissions)")
		}
	}
}
