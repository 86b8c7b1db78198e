// Package provider plays the backup provider's side of certagent, for `certagent dev
// --provider`, `certagent emulator --provider` and tests: it publishes each customer's next
// certificate with its detached signature, as certagent's source.url fetches them, and
// receives certagent's webhook deliveries, checks their Standard Webhooks signatures and
// records what it was told. With both, a year's rotation runs with nobody touching anything:
// the provider publishes, the agent fetches, applies and proves, and tells the provider,
// whose 2xx answer confirms the rotation.
//
// It shares no code with the agent: it signs with its own ECDSA P-256 key the way `cosign
// sign-blob` does (base64 of an ASN.1 signature over SHA-256 of the file), and checks
// deliveries with the Standard Webhooks project's own library, so that it cannot agree with
// a bug of the agent's.
//
// # Files
//
// New keeps everything in its directory: signing.key (PKCS#8, 0600) and signing.pub (the
// public key a customer pins in provenance.keys), webhook.secret (whsec_ and base64, 0600: the
// agent's notify.secret_file holds the same), and published/<customer>/next.cer and
// next.cer.sig. Deliveries are kept in memory.
//
// # Routes
//
// Handler serves, under /provider/:
//
//	GET  /provider/customers/{customer}/next.cer       the certificate, ETag, If-None-Match → 304
//	GET  /provider/customers/{customer}/next.cer.sig   its signature (base64, one line), ETag
//	POST /provider/webhook                             a delivery: 204 when its signature
//	     verifies (and it is recorded), 401 otherwise (recorded as refused)
//
// ServeControl serves the control routes, under /_emulator/provider/:
//
//	GET  /_emulator/provider/state     the signing key, each customer's published certificate,
//	     the deliveries received
//	POST /_emulator/provider/publish   {"customer", "commonName", "certificate" (PEM or base64
//	     DER; default: a new RSA 2048 certificate of commonName, valid a year)}: publish the
//	     customer's next certificate, signed; 200 with what was published
package provider

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/aucloud/certagent/agent/certs"
)

// Files in the provider's directory.
const (
	SigningKeyFile = "signing.key"
	SigningPubFile = "signing.pub"
	SecretFile     = "webhook.secret"
	publishedDir   = "published"
)

// Paths of the routes.
const (
	Prefix        = "/provider/"
	WebhookPath   = "/provider/webhook"
	ControlPrefix = "/_emulator/provider/"
)

// customerName is what a customer's name in a path may be: a tenant id or a short name.
var customerName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// Provider is the provider's side. It is safe for concurrent use.
type Provider struct {
	dir    string
	key    *ecdsa.PrivateKey
	pubPEM []byte
	secret string
	hook   *standardwebhooks.Webhook
	now    func() time.Time

	mu         sync.Mutex
	deliveries []Delivery
}

// Option changes an optional setting of New.
type Option func(*Provider)

// WithClock sets the clock of the certificates it makes and of the records (default
// time.Now). Webhook timestamps are checked against the wall clock, as a receiver does.
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// New opens (or creates) the provider kept in dir.
func New(dir string, opts ...Option) (*Provider, error) {
	if err := os.MkdirAll(filepath.Join(dir, publishedDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating provider directory: %w", err)
	}
	p := &Provider{dir: dir, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	key, err := loadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	p.key = key
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding provider signing key: %w", err)
	}
	p.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	if err := writeIfChanged(filepath.Join(dir, SigningPubFile), p.pubPEM, 0o644); err != nil {
		return nil, err
	}
	if p.secret, err = loadOrCreateSecret(dir); err != nil {
		return nil, err
	}
	if p.hook, err = standardwebhooks.NewWebhook(p.secret); err != nil {
		return nil, fmt.Errorf("provider webhook secret: %w", err)
	}
	return p, nil
}

func loadOrCreateKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("provider signing key %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("provider signing key %s: %w", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("provider signing key %s is not ECDSA", path)
		}
		return ek, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading provider signing key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating provider signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func loadOrCreateSecret(dir string) (string, error) {
	path := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading provider webhook secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	if err := writeFileAtomic(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// Dir returns the provider's directory.
func (p *Provider) Dir() string { return p.dir }

// SigningPubPath returns the file of the public key a customer pins (provenance.keys).
func (p *Provider) SigningPubPath() string { return filepath.Join(p.dir, SigningPubFile) }

// SecretPath returns the file of the webhook secret (the agent's notify.secret_file holds
// the same).
func (p *Provider) SecretPath() string { return filepath.Join(p.dir, SecretFile) }

// Fingerprint returns the signing key's SHA-256 fingerprint, "SHA256:" and hex of its DER
// SubjectPublicKeyInfo, as certagent names pinned keys.
func (p *Provider) Fingerprint() string {
	block, _ := pem.Decode(p.pubPEM)
	sum := sha256.Sum256(block.Bytes)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// CertificatePath returns the path of customer's next certificate under a base URL.
func CertificatePath(customer string) string {
	return Prefix + "customers/" + customer + "/next.cer"
}

// Published is a customer's published certificate.
type Published struct {
	Customer    string            `json:"customer"`
	Path        string            `json:"path"`
	Certificate certs.Certificate `json:"certificate"`
	ETag        string            `json:"etag"`
	// Signature is the signature as served (base64 of the ASN.1 ECDSA signature).
	Signature   string    `json:"signature"`
	PublishedAt time.Time `json:"publishedAt"`
}

// Publish publishes cert (PEM or DER; served as PEM) as customer's next certificate, with its
// signature over the served bytes.
func (p *Provider) Publish(customer string, cert []byte) (Published, error) {
	if !customerName.MatchString(customer) {
		return Published{}, fmt.Errorf("customer %q: use lower-case letters, digits, dots and dashes (a tenant id)", customer)
	}
	der := cert
	if block, _ := pem.Decode(cert); block != nil && block.Type == "CERTIFICATE" {
		der = block.Bytes
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Published{}, fmt.Errorf("publishing for %s: the certificate does not parse: %w", customer, err)
	}
	body := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	sig, err := p.sign(body)
	if err != nil {
		return Published{}, err
	}
	dir := filepath.Join(p.dir, publishedDir, customer)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Published{}, err
	}
	// The signature first: a reader between the two writes sees the old certificate with a
	// signature that does not fit it, which the agent refuses and fetches again, never a new
	// certificate with no signature.
	if err := writeFileAtomic(filepath.Join(dir, "next.cer.sig"), sig, 0o644); err != nil {
		return Published{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "next.cer"), body, 0o644); err != nil {
		return Published{}, err
	}
	return p.published(customer)
}

// PublishNew makes the provider's next certificate for customer (RSA 2048, CN commonName,
// valid a year from now; its private key stays with the provider and is not kept here) and
// publishes it.
func (p *Provider) PublishNew(customer, commonName string) (Published, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Published{}, err
	}
	now := p.now().UTC().Truncate(time.Second)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Published{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"AUCloud"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Published{}, fmt.Errorf("making the next certificate: %w", err)
	}
	return p.Publish(customer, der)
}

// sign returns the signature of b as `cosign sign-blob --key` prints it: base64 of an ASN.1
// ECDSA signature over SHA-256 of b.
func (p *Provider) sign(b []byte) ([]byte, error) {
	sum := sha256.Sum256(b)
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, sum[:])
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig) + "\n"), nil
}

// published reads what is published for customer.
func (p *Provider) published(customer string) (Published, error) {
	dir := filepath.Join(p.dir, publishedDir, customer)
	body, err := os.ReadFile(filepath.Join(dir, "next.cer"))
	if err != nil {
		return Published{}, err
	}
	sig, err := os.ReadFile(filepath.Join(dir, "next.cer.sig"))
	if err != nil {
		return Published{}, err
	}
	fi, _ := os.Stat(filepath.Join(dir, "next.cer"))
	out := Published{Customer: customer, Path: CertificatePath(customer), ETag: etagOf(body), Signature: strings.TrimSpace(string(sig))}
	if fi != nil {
		out.PublishedAt = fi.ModTime().UTC()
	}
	if block, _ := pem.Decode(body); block != nil {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out.Certificate = certs.FactsOf(c)
		}
	}
	return out, nil
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// Delivery is a webhook delivery the provider received.
type Delivery struct {
	ID         string    `json:"id"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Verified reports whether its signature verified (Standard Webhooks, the provider's
	// secret); an unverified one was answered 401 and is not believed.
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
	// Type and the facts of a certificate.applied event.
	Type       string `json:"type"`
	TenantID   string `json:"tenantId,omitempty"`
	AppID      string `json:"appId,omitempty"`
	KeyID      string `json:"keyId,omitempty"`
	RotationID string `json:"rotationId,omitempty"`
	Thumbprint string `json:"thumbprint,omitempty"`
	// Published reports whether the certificate it tells of is one the provider published
	// (for any customer): the provider's proof that its own certificate is on the app.
	Published bool `json:"published"`
}

// Deliveries returns the deliveries received, oldest first.
func (p *Provider) Deliveries() []Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Delivery(nil), p.deliveries...)
}

// State is what GET /_emulator/provider/state shows.
type State struct {
	SigningKey  string      `json:"signingKey"`
	Fingerprint string      `json:"fingerprint"`
	SecretFile  string      `json:"secretFile"`
	Published   []Published `json:"published"`
	Deliveries  []Delivery  `json:"deliveries"`
}

// State returns the provider's state.
func (p *Provider) State() State {
	s := State{SigningKey: p.SigningPubPath(), Fingerprint: p.Fingerprint(), SecretFile: p.SecretPath(), Published: []Published{}, Deliveries: p.Deliveries()}
	ents, _ := os.ReadDir(filepath.Join(p.dir, publishedDir))
	for _, e := range ents {
		if pub, err := p.published(e.Name()); err == nil {
			s.Published = append(s.Published, pub)
		}
	}
	return s
}

// Handler serves the provider's public routes (/provider/...).
func (p *Provider) Handler() http.Handler { return http.HandlerFunc(p.serve) }

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == WebhookPath {
		p.serveWebhook(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix+"customers/")
	customer, file, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !customerName.MatchString(customer) || file != "next.cer" && file != "next.cer.sig" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	b, err := os.ReadFile(filepath.Join(p.dir, publishedDir, customer, file))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	etag := etagOf(b)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ct := "application/x-pem-file"
	if file == "next.cer.sig" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(b)
}

// maxDelivery bounds a webhook body.
const maxDelivery = 1 << 20

func (p *Provider) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDelivery+1))
	if err != nil || len(body) > maxDelivery {
		http.Error(w, "reading the body", http.StatusBadRequest)
		return
	}
	d := Delivery{ID: r.Header.Get(standardwebhooks.HeaderWebhookID), ReceivedAt: p.now().UTC()}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			TenantID    string `json:"tenantId"`
			AppID       string `json:"appId"`
			KeyID       string `json:"keyId"`
			RotationID  string `json:"rotationId"`
			Thumbprint  string `json:"thumbprint"`
			Certificate struct {
				Thumbprint string `json:"thumbprint"`
			} `json:"certificate"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	d.Type, d.TenantID, d.AppID, d.KeyID, d.RotationID = ev.Type, ev.Data.TenantID, ev.Data.AppID, ev.Data.KeyID, ev.Data.RotationID
	d.Thumbprint = ev.Data.Certificate.Thumbprint
	if d.Thumbprint == "" {
		d.Thumbprint = ev.Data.Thumbprint
	}
	if err := p.hook.Verify(body, r.Header); err != nil {
		d.Error = err.Error()
		p.record(d)
		http.Error(w, "signature does not verify: "+err.Error(), http.StatusUnauthorized)
		return
	}
	d.Verified = true
	if d.Thumbprint != "" {
		for _, pub := range p.State().Published {
			d.Published = d.Published || strings.EqualFold(pub.Certificate.Thumbprint, d.Thumbprint)
		}
	}
	p.record(d)
	w.WriteHeader(http.StatusNoContent)
}

func (p *Provider) record(d Delivery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deliveries = append(p.deliveries, d)
}

// publishRequest is the body of POST /_emulator/provider/publish.
type publishRequest struct {
	Customer    string `json:"customer"`
	CommonName  string `json:"commonName"`
	Certificate string `json:"certificate"`
}

// ServeControl serves /_emulator/provider/...; the emulator checks the caller is local.
func (p *Provider) ServeControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case ControlPrefix + "state":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		writeJSON(w, http.StatusOK, p.State())
	case ControlPrefix + "publish":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		var req publishRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "decoding the request: "+err.Error())
			return
		}
		var pub Published
		var err error
		switch {
		case req.Certificate != "":
			b := []byte(req.Certificate)
			if !bytes.Contains(b, []byte("-----BEGIN")) {
				if b, err = base64.StdEncoding.DecodeString(strings.TrimSpace(req.Certificate)); err != nil {
					writeError(w, http.StatusBadRequest, "certificate: neither PEM nor base64")
					return
				}
			}
			pub, err = p.Publish(req.Customer, b)
		default:
			cn := req.CommonName
			if cn == "" {
				cn = fmt.Sprintf("AUCloud VB365 %d", p.now().AddDate(1, 0, 0).Year())
			}
			pub, err = p.PublishNew(req.Customer, cn)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, pub)
	default:
		writeError(w, http.StatusNotFound, "no provider control route "+r.URL.Path+" (try "+ControlPrefix+"state, "+ControlPrefix+"publish)")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeIfChanged writes data to path unless it holds it already.
func writeIfChanged(path string, data []byte, perm os.FileMode) error {
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, data) {
		return nil
	}
	return writeFileAtomic(path, data, perm)
}

// writeFileAtomic writes data to path through a temporary file in the same folder, synced and
// renamed into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
