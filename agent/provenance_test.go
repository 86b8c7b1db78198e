package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/devenv"
)

// signer is the provider's signing key in these tests.
type signer struct {
	key     *ecdsa.PrivateKey
	pubFile string
}

func newSigner(t testing.TB, dir, name string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return signer{k, p}
}

// sign returns the signature of data as cosign sign-blob prints it (base64 of ECDSA over
// SHA-256).
func (s signer) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig) + "\n")
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rejectedWith waits until rejected/ of dir holds name with a note giving code.
func (h *harness) rejectedWith(dir, name string, code certs.Code) {
	h.t.Helper()
	h.waitFor(name+" refused as "+string(code), func() bool {
		ns, _ := filepath.Glob(filepath.Join(dir, "rejected", "*_"+name+".reason.txt"))
		if len(ns) != 1 {
			return false
		}
		b, _ := os.ReadFile(ns[0])
		return strings.Contains(string(b), "Reason code:    "+string(code))
	})
}

// TestSignedDelivery: with provenance.required, only certificates signed by the pinned key
// reach the app, by the drop folder and by the API; the rotation and the audit log name the
// key that signed; every other delivery is refused with its code and nothing is uploaded.
func TestSignedDelivery(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	provider := newSigner(t, keys, "provider.pub")
	stranger := newSigner(t, keys, "stranger.pub")
	h := start(t, func(c *config.Config) {
		c.Provenance = config.Provenance{Required: true, Keys: []string{provider.pubFile}, Wait: config.Duration(time.Second)}
	})
	ctx := context.Background()
	drop := h.env.Config.DropFolder
	before := len(h.creds())

	signed := certtest.New(time.Now(), certtest.CommonName("signed by the provider"))
	writeFile(t, drop, "signed.cer.sig", provider.sign(t, signed.PEM()))
	writeFile(t, drop, "signed.cer", signed.PEM())
	unsigned := certtest.New(time.Now(), certtest.CommonName("unsigned"))
	writeFile(t, drop, "unsigned.cer", unsigned.PEM())
	tampered := certtest.New(time.Now(), certtest.CommonName("tampered"))
	writeFile(t, drop, "tampered.cer", tampered.PEM())
	writeFile(t, drop, "tampered.cer.sig", provider.sign(t, signed.PEM()))
	byStranger := certtest.New(time.Now(), certtest.CommonName("signed by a stranger"))
	writeFile(t, drop, "stranger.cer", byStranger.PEM())
	writeFile(t, drop, "stranger.cer.sig", stranger.sign(t, byStranger.PEM()))
	writeFile(t, drop, "lonely.cer.sig", provider.sign(t, []byte("a certificate that never came")))

	h.rejectedWith(drop, "unsigned.cer", certs.SignatureMissing)
	h.rejectedWith(drop, "tampered.cer", certs.SignatureInvalid)
	// Another P-256 key: its signature cannot be told from one over other bytes.
	h.rejectedWith(drop, "stranger.cer", certs.SignatureInvalid)
	h.rejectedWith(drop, "lonely.cer.sig", certs.CertificateMissing)
	var id string
	h.waitFor("the signed certificate applied", func() bool {
		rs, _ := h.client.Rotations(ctx, "applied")
		if len(rs) == 1 {
			id = rs[0].ID
		}
		return id != ""
	})
	r := h.rotation(id, "applied")
	if r.Certificate.Thumbprint != certs.ThumbprintSHA1(signed.DER) || !strings.HasPrefix(r.Source.SignedBy, "SHA256:") {
		t.Errorf("rotation = %+v, source %+v", r.Certificate.Subject, r.Source)
	}
	if !strings.Contains(r.History[0].Note, "signed by pinned key provider.pub (ECDSA P-256, "+r.Source.SignedBy+")") {
		t.Errorf("history = %+v", r.History)
	}
	processed, _ := filepath.Glob(filepath.Join(drop, "processed", "*"))
	if len(processed) != 2 || !strings.HasSuffix(processed[1], "_signed.cer.sig") {
		t.Errorf("processed/ = %v, want signed.cer with its signature", processed)
	}
	// The tampered one's signature went to rejected/ with it.
	if ns, _ := filepath.Glob(filepath.Join(drop, "rejected", "*_tampered.cer.sig")); len(ns) != 1 {
		t.Errorf("tampered.cer.sig not filed with its certificate: %v", ns)
	}

	// The API: no signature, a bad one, a good one (DER as base64: signed as the DER file).
	viaAPI := certtest.New(time.Now(), certtest.CommonName("via the API"))
	if _, _, err := h.client.Submit(ctx, viaAPI.PEM(), "api.cer"); !client.IsCode(err, string(certs.SignatureMissing)) {
		t.Errorf("unsigned API submission: %v, want signature_missing", err)
	}
	if _, _, err := h.client.SubmitSigned(ctx, viaAPI.DER, stranger.sign(t, viaAPI.DER), "api.cer", ""); !client.IsCode(err, string(certs.SignatureInvalid)) {
		t.Errorf("API submission signed by a stranger: %v, want signature_invalid", err)
	}
	ar, created, err := h.client.SubmitSigned(ctx, viaAPI.DER, provider.sign(t, viaAPI.DER), "api.cer", "")
	if err != nil || !created || ar.Source.SignedBy != r.Source.SignedBy {
		t.Fatalf("signed API submission = %+v, %v, %v", ar.Source, created, err)
	}
	h.rotation(ar.ID, "applied")

	if got := len(h.creds()); got != before+2 {
		t.Errorf("app holds %d credentials, want %d: only the two signed certificates added", got, before+2)
	}
	for _, c := range []certtest.Cert{unsigned, tampered, byStranger} {
		if countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)) != 0 {
			t.Errorf("%s reached the app", c.Cert.Subject)
		}
	}
	// The audit log names the key on the rotation's creation, and the refusals' codes.
	page, err := h.client.Audit(ctx, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	var signedBy, refused int
	for _, e := range page.Items {
		if e.Action == "rotation.state" && e.State == "applying" && strings.Contains(e.Message, "signed by pinned key provider.pub") {
			signedBy++
		}
		if e.Code == string(certs.SignatureMissing) || e.Code == string(certs.SignatureInvalid) || e.Code == string(certs.CertificateMissing) {
			refused++
		}
	}
	if signedBy != 2 || refused < 6 {
		t.Errorf("audit: %d creations naming the key (want 2), %d provenance refusals (want 6 or more)", signedBy, refused)
	}
}

// TestSignedDeliveryRouted: a file dropped at the top of the drop folder is routed first and
// then judged by its target's provenance: unsigned, it reaches a target that does not require
// signatures, and is refused for one that does (the router waits for its signature).
func TestSignedDeliveryRouted(t *testing.T) {
	t.Parallel()
	const appB = "b0000000-0000-4000-8000-0000000000ad"
	keys := t.TempDir()
	provider := newSigner(t, keys, "provider.pub")
	h := startPrepared(t, devenv.Options{}, nil, func(env *devenv.Env) {
		if _, err := env.Emulator.AddApplication(env.Info.TenantID, emulator.SeedApplication{
			DisplayName: "Veeam Teams backup", AppID: appB, Owners: []string{env.Info.AgentAppID},
		}); err != nil {
			t.Fatal(err)
		}
		cfg := env.Config
		cfg.Provenance = config.Provenance{Keys: []string{provider.pubFile}, Wait: config.Duration(time.Second)}
		cfg.Targets = []config.Target{
			{Name: "exchange", AppID: cfg.Target.AppID, Policy: config.TargetPolicy{AllowedSubjects: []string{"Exchange *"}},
				Provenance: config.Provenance{Required: true}},
			{Name: "teams", AppID: appB, Policy: config.TargetPolicy{AllowedSubjects: []string{"Teams *"}}},
		}
		cfg.Target = config.Target{}
	})
	ctx := context.Background()
	drop := h.env.Config.DropFolder
	exUnsigned := certtest.New(time.Now(), certtest.CommonName("Exchange unsigned"))
	exSigned := certtest.New(time.Now(), certtest.CommonName("Exchange signed"))
	teams := certtest.New(time.Now(), certtest.CommonName("Teams unsigned"))
	writeFile(t, drop, "ex-unsigned.cer", exUnsigned.PEM())
	writeFile(t, drop, "ex-signed.cer", exSigned.PEM())
	writeFile(t, drop, "ex-signed.cer.sig", provider.sign(t, exSigned.PEM()))
	writeFile(t, drop, "teams.cer", teams.PEM())
	h.rejectedWith(drop, "ex-unsigned.cer", certs.SignatureMissing)
	h.waitFor("two rotations applied", func() bool {
		rs, err := h.client.Rotations(ctx, "applied")
		return err == nil && len(rs) == 2
	})
	ex, _ := h.client.RotationsOf(ctx, "exchange", "")
	tm, _ := h.client.RotationsOf(ctx, "teams", "")
	if len(ex) != 1 || ex[0].Source.SignedBy == "" || len(tm) != 1 || tm[0].Source.SignedBy != "" {
		t.Errorf("exchange rotations %+v, teams %+v", ex, tm)
	}
	// Through the API without a target: routed, then the target's provenance applies.
	if _, _, err := h.client.Submit(ctx, exUnsigned.PEM(), "again.cer"); !client.IsCode(err, string(certs.SignatureMissing)) {
		t.Errorf("unsigned API submission routed to exchange: %v, want signature_missing", err)
	}
	// A bad signature is refused even where signatures are not required.
	other := certtest.New(time.Now(), certtest.CommonName("Teams badly signed"))
	if _, _, err := h.client.SubmitSigned(ctx, other.PEM(), provider.sign(t, teams.PEM()), "bad.cer", "teams"); !client.IsCode(err, string(certs.SignatureInvalid)) {
		t.Errorf("badly signed submission to teams: %v, want signature_invalid", err)
	}
}

// TestRequiredLaterRefusesUnsigned: a certificate accepted unsigned while signatures were
// optional, and still waiting for approval when provenance.required is turned on, is refused
// before it is written: no path around the requirement, not even an old rotation.
func TestRequiredLaterRefusesUnsigned(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	provider := newSigner(t, keys, "provider.pub")
	h := start(t, func(c *config.Config) { c.Policy.Approval = config.ApprovalManual })
	ctx := context.Background()
	c := certtest.New(time.Now(), certtest.CommonName("unsigned, before the rule"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "early.cer")
	if err != nil || r.State != "pending_approval" {
		t.Fatalf("submit = %+v, %v", r, err)
	}
	h.env.Config.Provenance = config.Provenance{Required: true, Keys: []string{provider.pubFile}, Wait: config.Duration(time.Second)}
	h.restart()
	if _, err := h.client.Approve(ctx, r.ID, "approved after the rule"); err != nil {
		t.Fatal(err)
	}
	got := h.rotation(r.ID, "rejected")
	if got.Reason == nil || got.Reason.Code != certs.SignatureMissing {
		t.Errorf("reason = %+v, want signature_missing", got.Reason)
	}
	if countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)) != 0 {
		t.Error("the unsigned certificate reached the app")
	}
}
