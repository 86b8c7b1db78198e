package certpolicy

import (
	"crypto/x509"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// Verdict is what the policy says about one input.
type Verdict struct {
	// Accepted reports whether the input passed every rule.
	Accepted bool
	// Reason is why the input was refused; nil when accepted.
	Reason *certs.Reason
	// Certificate is the facts about the certificate whenever the input held exactly one,
	// even when refused (expired, weak key, or with a private key beside it). Nil otherwise.
	Certificate *certs.Certificate
	// DER is that certificate's DER, a copy the caller owns (public data). Nil when
	// Certificate is nil.
	DER []byte
	// Err is set only by ReadFile, when the file could not be read (it vanished, access was
	// denied, an I/O error): Reason is then unsupported_file with the same text, and Err lets
	// a caller tell such a failure from a verdict on the content (errors.Is(v.Err,
	// fs.ErrNotExist)...).
	Err error
}

// Check judges the bytes of one input: what a file or a request body held. It does not
// modify data and does not keep it. Buffers it decodes into are zeroed before it returns; the
// caller owns data and should clear it when the verdict is contains_private_key.
func (p Policy) Check(data []byte, now time.Time) Verdict {
	return p.check(data, now, "input", new(scan))
}

// check is Check, with the noun that names the input in messages and the scan to use (tests
// look at its buffers afterwards).
func (p Policy) check(data []byte, now time.Time, noun string, s *scan) Verdict {
	if len(data) > certs.MaxFileSize {
		return rejected(reason(certs.TooLarge, "%s is %s; the limit is %s", noun, sizeAbove(int64(len(data))), sizeText(certs.MaxFileSize)))
	}
	defer s.wipe()
	s.input(data)

	var v Verdict
	if len(s.certs) == 1 {
		// The facts of the one certificate go with every verdict, even a refusal. Parse a copy:
		// the scan's buffers are wiped on return.
		der := append([]byte(nil), s.certs[0].der...)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			if s.key == "" && s.bad == "" {
				s.bad = s.certs[0].src.holds("a damaged certificate (" + sanitize(err.Error()) + ")")
			}
		} else {
			facts := certs.FactsOf(c)
			v.Certificate, v.DER = &facts, der
			if s.key == "" && s.bad == "" {
				v.Reason = p.CheckCertificate(c, now)
				v.Accepted = v.Reason == nil
				return v
			}
		}
	}

	switch {
	case s.key != "":
		also := ""
		switch n := len(s.certs); {
		case n == 1:
			also = "a certificate and "
		case n > 1:
			also = fmt.Sprintf("%d certificates and ", n)
		}
		v.Reason = reason(certs.ContainsPrivateKey, "holds %s%s%s; send only the public certificate (.cer)", also, s.key, s.keyWhere)
	case len(s.certs) > 1:
		v.Reason = reason(certs.MultipleCertificates, "%s; send only the app's own certificate (.cer), without its chain", s.multiple())
	case s.bad != "":
		v.Reason = reason(certs.NotACertificate, "%s", s.bad)
	default:
		v.Reason = reason(certs.NotACertificate, "%s", s.nothing(data))
	}
	return v
}

// multiple describes the certificates of an input that holds more than one.
func (s *scan) multiple() string {
	var b strings.Builder
	if s.bundle {
		fmt.Fprintf(&b, "holds a PKCS#7 bundle of %d certificates", len(s.certs))
	} else {
		fmt.Fprintf(&b, "holds %d certificates", len(s.certs))
	}
	var names []string
	for _, c := range s.certs[:min(len(s.certs), 3)] {
		if cert, err := x509.ParseCertificate(c.der); err == nil {
			names = append(names, quoteName(cert.Subject.String()))
		} else {
			names = append(names, "a damaged one")
		}
	}
	if len(s.certs) > 3 {
		names = append(names, "…")
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(names, ", "))
	return b.String()
}

// nothing explains an input in which no certificate was found.
func (s *scan) nothing(data []byte) string {
	switch {
	case s.note != "":
		return s.note
	case s.weak != "":
		return s.weak
	case len(data) == 0:
		return "is empty"
	case s.binary:
		return "holds binary data that is neither DER nor PEM"
	case isBlank(trimBOM(data)):
		return "holds only whitespace"
	}
	return "holds text without a certificate: neither PEM nor base64"
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

func rejected(r *certs.Reason) Verdict { return Verdict{Reason: r} }

// sizeText formats a byte count for people: "512 bytes", "1 MiB", "2.1 MiB".
func sizeText(n int64) string {
	return formatSize(n, math.Round)
}

// sizeAbove formats a size that is over a limit, rounding up so that it never prints as the
// limit itself.
func sizeAbove(n int64) string {
	return formatSize(n, math.Ceil)
}

func formatSize(n int64, round func(float64) float64) string {
	const kib, mib, gib = 1 << 10, 1 << 20, 1 << 30
	var v float64
	var unit string
	switch {
	case n < kib:
		return fmt.Sprintf("%d bytes", n)
	case n < mib:
		v, unit = float64(n)/kib, "KiB"
	case n < gib:
		v, unit = float64(n)/mib, "MiB"
	default:
		v, unit = float64(n)/gib, "GiB"
	}
	v = round(v*10) / 10
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
