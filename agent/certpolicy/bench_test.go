package certpolicy

import (
	"math/rand/v2"
	"testing"

	"github.com/aucloud/certagent/agent/certs"
)

// BenchmarkVerdict measures whole verdicts, and reports them as files per second.
func BenchmarkVerdict(b *testing.B) {
	corpus()
	garbage := make([]byte, 1024)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(garbage)
	inputs := []struct {
		name string
		in   []byte
		want certs.Code
	}{
		{"valid", leafCert.PEM(), ""},
		{"garbage", garbage, certs.NotACertificate},
		{"der", leafCert.DER, ""},
		{"certificate_and_key", leafCert.CertAndKeyPEM(), certs.ContainsPrivateKey},
		{"pkcs12", readFixture(b, "openssl/pkcs12-aes.der"), certs.ContainsPrivateKey},
		{"max_size_text", append(repeatTo("Lorem ipsum dolor sit amet\n", certs.MaxFileSize-2000), leafCert.PEM()...), ""},
	}
	p := Default()
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			if v := p.Check(in.in, testNow); codeOf(v) != in.want {
				b.Fatalf("Check(%s) = %s, want %s", in.name, describe(v), orAccepted(in.want))
			}
			b.SetBytes(int64(len(in.in)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				p.Check(in.in, testNow)
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
