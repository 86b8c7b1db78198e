package intake

import (
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// The tests of a certificate and its signature file (pair.go), under synctest with polling.

func (h *harness) handledCalls() []handled {
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	return slices.Clone(h.rec.handled)
}

// originals lists the original names of the files in a folder inside the drop folder.
func (h *harness) originals(sub string) []string {
	var out []string
	for _, n := range h.names(sub) {
		out = append(out, archivedOriginal(h.t, n))
	}
	slices.Sort(out)
	return out
}

// TestPairFiledTogether: a certificate and its signature go to the Handler in one call and to
// the same folder, the signature named after the certificate's archived name; a refused pair
// goes to rejected/ with a note for each file.
func TestPairFiledTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good a")
		h.write("a.cer.sig", "signature of a")
		h.write("b.cer", "bad b")
		h.write("b.cer.sig", "signature of b")
		time.Sleep(testSettle + 3*time.Second)
		synctest.Wait()

		calls := h.handledCalls()
		want := []handled{{"a.cer", "good a", "a.cer.sig", "signature of a"}, {"b.cer", "bad b", "b.cer.sig", "signature of b"}}
		if !slices.Equal(calls, want) {
			t.Fatalf("handled %+v, want %+v", calls, want)
		}
		processed := h.names(ProcessedDir)
		slices.Sort(processed)
		if len(processed) != 2 || processed[1] != processed[0]+".sig" || archivedOriginal(t, processed[0]) != "a.cer" {
			t.Errorf("processed/ = %v, want a.cer and its signature beside it", processed)
		}
		rejected := h.names(RejectedDir)
		slices.Sort(rejected)
		if len(rejected) != 2 || rejected[1] != rejected[0]+".sig" {
			t.Fatalf("rejected/ = %v, want b.cer and its signature", rejected)
		}
		if n := len(h.notes()); n != 2 {
			t.Errorf("%d reason notes, want one per rejected file", n)
		}
		if note := h.read("rejected/" + rejected[0] + ReasonSuffix); !strings.Contains(note, "Signature:      b.cer.sig (filed beside this file as "+rejected[1]) {
			t.Errorf("the certificate's note does not name its signature:\n%s", note)
		}
		if note := h.read("rejected/" + rejected[1] + ReasonSuffix); !strings.Contains(note, "Signature of:   b.cer") || !strings.Contains(note, "Reason code:    not_a_certificate") {
			t.Errorf("the signature's note does not say whose it is and why:\n%s", note)
		}
		if got := h.names(""); len(got) != 0 {
			t.Errorf("drop folder still holds %v", got)
		}
		// One Filed call per pair: the audit log records the certificate, with its signature.
		if got := h.rec.filedCount(); got != 2 {
			t.Errorf("Filed called %d times, want 2", got)
		}
		if st := h.in.Stats(); st.Processed != 1 || st.Rejected != 1 || st.Waiting != 0 {
			t.Errorf("Stats() = %+v", st)
		}
	})
}

// TestCertificateWaitsForItsSignature: with SignatureWait, a certificate alone waits; its
// signature arriving later is taken with it, before the wait ends.
func TestCertificateWaitsForItsSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pollCfg()
		cfg.SignatureWait = 10 * time.Minute
		h := startPoll(t, cfg)
		h.write("a.cer", "good a")
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 0 {
			t.Fatalf("handled %+v while waiting for the signature", got)
		}
		h.write("a.cer.sig", "sig")
		time.Sleep(testSettle + 3*time.Second)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 1 || got[0].Sig != "sig" {
			t.Fatalf("handled %+v, want a.cer with its signature", got)
		}
		if got := h.originals(ProcessedDir); !slices.Equal(got, []string{"a.cer", "a.cer.sig"}) {
			t.Errorf("processed/ = %v", got)
		}
	})
}

// TestCertificateWithoutSignatureAfterWait: a certificate whose signature never comes goes to
// the Handler unsigned once SignatureWait is over, not before; without SignatureWait at once.
func TestCertificateWithoutSignatureAfterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pollCfg()
		cfg.SignatureWait = 10 * time.Minute
		h := startPoll(t, cfg)
		h.write("a.cer", "good a")
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 0 {
			t.Fatalf("handled %+v before SignatureWait", got)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 1 || got[0].SigName != "" || got[0].Sig != "" {
			t.Fatalf("handled %+v, want a.cer unsigned", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good a")
		time.Sleep(testSettle + 2*time.Second)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 1 || got[0].SigName != "" {
			t.Fatalf("without SignatureWait: handled %+v, want a.cer at once", got)
		}
	})
}

// TestSignatureBeforeItsCertificate: a signature that arrives first is never judged alone;
// it waits, and goes with its certificate.
func TestSignatureBeforeItsCertificate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer.sig", "sig")
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := h.filedCount(); got != 0 || len(h.handledCalls()) != 0 {
			t.Fatalf("the signature was filed or handled alone (%d filed)", got)
		}
		h.write("a.cer", "good a")
		time.Sleep(testSettle + 3*time.Second)
		synctest.Wait()
		if got := h.handledCalls(); len(got) != 1 || got[0].Name != "a.cer" || got[0].Sig != "sig" {
			t.Fatalf("handled %+v", got)
		}
		if got := h.originals(ProcessedDir); !slices.Equal(got, []string{"a.cer", "a.cer.sig"}) {
			t.Errorf("processed/ = %v", got)
		}
	})
}

// TestOrphanSignature: a signature file whose certificate never comes waits CertificateWait,
// then goes to rejected/ as certificate_missing with a note naming the file it waited for.
func TestOrphanSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pollCfg()
		cfg.CertificateWait = 10 * time.Minute
		h := startPoll(t, cfg)
		h.write("lost.cer.sig", "sig")
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		if got := h.filedCount(); got != 0 {
			t.Fatalf("filed %d before CertificateWait", got)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		rejected := h.names(RejectedDir)
		if len(rejected) != 1 || archivedOriginal(t, rejected[0]) != "lost.cer.sig" {
			t.Fatalf("rejected/ = %v", rejected)
		}
		note := h.read("rejected/" + rejected[0] + ReasonSuffix)
		if !strings.Contains(note, "Reason code:    certificate_missing") || !strings.Contains(note, "no certificate lost.cer arrived") {
			t.Errorf("note:\n%s", note)
		}
		if calls := h.rec.filedCalls(); len(calls) != 1 || calls[0].Code != certs.CertificateMissing || calls[0].Name != "lost.cer.sig" {
			t.Errorf("Filed calls %+v", calls)
		}
		if got := h.handledCalls(); len(got) != 0 {
			t.Errorf("a signature alone was handed to the Handler: %+v", got)
		}
	})
}

// TestSignatureTooLarge: a signature file over 64 KiB refuses the pair as signature_invalid,
// without reading it or handing the certificate over.
func TestSignatureTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good a")
		h.write("a.cer.sig", strings.Repeat("A", certs.MaxSignatureSize+1))
		time.Sleep(testSettle + 3*time.Second)
		synctest.Wait()
		if got := h.originals(RejectedDir); !slices.Equal(got, []string{"a.cer", "a.cer.sig"}) {
			t.Fatalf("rejected/ = %v", got)
		}
		if calls := h.rec.filedCalls(); len(calls) != 1 || calls[0].Code != certs.SignatureInvalid {
			t.Errorf("Filed calls %+v", calls)
		}
		if got := h.handledCalls(); len(got) != 0 {
			t.Errorf("handled %+v", got)
		}
	})
}

// TestSignatureMoveRetried: when the signature cannot be moved after its certificate was, it
// stays tracked and goes next to the certificate once it can; it is never refused alone.
func TestSignatureMoveRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pollCfg()
		cfg.CertificateWait = time.Minute
		h := newHarness(t, cfg)
		var broken atomic.Bool
		broken.Store(true)
		h.in.rename = func(from, to string) error {
			if broken.Load() && strings.HasSuffix(from, ".sig") {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrPermission}
			}
			return renameNoReplace(from, to)
		}
		h.run()
		h.write("a.cer", "good a")
		h.write("a.cer.sig", "sig")
		time.Sleep(testSettle + 5*time.Minute)
		synctest.Wait()
		if got := h.originals(ProcessedDir); !slices.Equal(got, []string{"a.cer"}) || !h.exists("a.cer.sig") {
			t.Fatalf("processed/ = %v; the signature should wait in the drop folder", got)
		}
		if got := h.names(RejectedDir); len(got) != 0 {
			t.Fatalf("rejected/ = %v: the signature was refused alone", got)
		}
		broken.Store(false)
		time.Sleep(retryMax)
		synctest.Wait()
		processed := h.names(ProcessedDir)
		slices.Sort(processed)
		if len(processed) != 2 || processed[1] != processed[0]+".sig" {
			t.Fatalf("processed/ = %v, want the signature beside its certificate", processed)
		}
	})
}

// TestCertificateMoveRetriedWithSignature: a certificate whose move failed keeps its
// signature: both are filed together on the retry.
func TestCertificateMoveRetriedWithSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, pollCfg())
		var broken atomic.Bool
		broken.Store(true)
		h.in.rename = func(from, to string) error {
			if broken.Load() {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrPermission}
			}
			return renameNoReplace(from, to)
		}
		h.run()
		h.write("a.cer", "good a")
		h.write("a.cer.sig", "sig")
		time.Sleep(testSettle + 10*time.Second)
		synctest.Wait()
		broken.Store(false)
		time.Sleep(retryMax)
		synctest.Wait()
		if got := h.originals(ProcessedDir); !slices.Equal(got, []string{"a.cer", "a.cer.sig"}) {
			t.Fatalf("processed/ = %v", got)
		}
		if got := h.handledCalls(); len(got) != 1 {
			t.Errorf("handled %+v; a retried move must not hand the pair over again", got)
		}
	})
}
