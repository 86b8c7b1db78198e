package agent_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
)

// publisher is a provider's HTTPS endpoint for one customer's next certificate.
type publisher struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (p *publisher) set(path string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[path] = b
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b, ok := p.files[r.URL.Path]
	p.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

// TestPullSource: with source.url, the agent fetches the provider's signed next certificate
// by itself and applies it (source pull, in the rotation, the audit log and the status); a
// badly signed one published later is refused, shown in the status, and never uploaded.
func TestPullSource(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	provider := newSigner(t, keys, "provider.pub")
	next := certtest.New(time.Now(), certtest.CommonName("AUCloud VB365 next"))
	pub := &publisher{files: map[string][]byte{
		"/customers/contoso/next.cer":     next.PEM(),
		"/customers/contoso/next.cer.sig": provider.sign(t, next.PEM()),
	}}
	srv := httptest.NewTLSServer(pub)
	t.Cleanup(srv.Close)
	ca := filepath.Join(keys, "provider-ca.pem")
	writeFile(t, keys, "provider-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	url := srv.URL + "/customers/contoso/next.cer"
	h := start(t, func(c *config.Config) {
		c.Provenance = config.Provenance{Required: true, Keys: []string{provider.pubFile}, Wait: config.Duration(time.Second)}
		c.Target.Source = config.Source{URL: url, Interval: config.Duration(time.Hour), CAFile: ca}
	})
	ctx := context.Background()
	var r apitype.Rotation
	h.waitFor("the fetched certificate applied", func() bool {
		rs, _ := h.client.Rotations(ctx, "applied")
		if len(rs) == 1 {
			r = rs[0]
		}
		return len(rs) == 1
	})
	if r.Source.Kind != "pull" || r.Source.URL != url || r.Source.FileName != "next.cer" || r.Source.SignedBy == "" || r.History[0].Actor != "pull" {
		t.Errorf("rotation source %+v, history %+v", r.Source, r.History)
	}
	if countThumb(h.creds(), certs.ThumbprintSHA1(next.DER)) != 1 {
		t.Error("the fetched certificate is not on the app")
	}
	s, err := h.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src := s.Targets[0].Source
	if src == nil || src.URL != url || src.RotationID != r.ID || src.LastSuccess == nil || s.Targets[0].Provenance == nil || !s.Targets[0].Provenance.Required {
		t.Errorf("status source %+v, provenance %+v", src, s.Targets[0].Provenance)
	}

	// Next year's certificate, signed by someone else: fetched on POST /scan, refused.
	forged := certtest.New(time.Now(), certtest.CommonName("AUCloud VB365 forged"))
	pub.set("/customers/contoso/next.cer", forged.PEM())
	if _, err := h.client.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitFor("source_refused", func() bool {
		s, _ := h.client.Status(ctx)
		for _, p := range s.Problems {
			if p.Code == apitype.ProblemSourceRefused && p.Severity == apitype.SeverityCritical && strings.Contains(p.Message, "signature_invalid") {
				return true
			}
		}
		return false
	})
	if countThumb(h.creds(), certs.ThumbprintSHA1(forged.DER)) != 0 {
		t.Error("the forged certificate reached the app")
	}
	page, _ := h.client.Audit(ctx, 0, 100)
	found := false
	for _, e := range page.Items {
		found = found || e.Action == "intake.rejected" && e.Actor == "pull" && e.Code == string(certs.SignatureInvalid)
	}
	if !found {
		t.Error("no intake.rejected entry by pull for the forged certificate")
	}
}
