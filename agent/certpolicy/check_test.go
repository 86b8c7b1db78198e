package certpolicy

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/internal/certtest"
)

func TestCheckCorpus(t *testing.T) {
	p := Default()
	for _, tc := range corpus() {
		t.Run(tc.name, func(t *testing.T) {
			in := clone(tc.in)
			v := p.Check(in, testNow)
			if !bytes.Equal(in, tc.in) {
				t.Fatalf("Check(%s) modified its input", tc.name)
			}
			if got := codeOf(v); got != tc.want {
				t.Fatalf("Check(%s) = %s, want %s", tc.name, describe(v), orAccepted(tc.want))
			}
			if tc.msg != "" && !strings.Contains(v.Reason.Message, tc.msg) {
				t.Errorf("Check(%s) message = %q, want it to contain %q", tc.name, v.Reason.Message, tc.msg)
			}
			checkVerdictInvariants(t, tc.name, tc.in, v)
			if tc.der == nil {
				if v.Certificate != nil {
					t.Errorf("Check(%s) carries certificate %s, want none", tc.name, v.Certificate)
				}
				return
			}
			if v.Certificate == nil {
				t.Fatalf("Check(%s) carries no certificate, want %s", tc.name, certs.ThumbprintSHA1(tc.der))
			}
			if !bytes.Equal(v.DER, tc.der) {
				t.Errorf("Check(%s) DER differs from the certificate's", tc.name)
			}
			c, err := x509.ParseCertificate(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			want := certs.FactsOf(c)
			if *v.Certificate != want {
				t.Errorf("Check(%s) facts = %+v, want %+v", tc.name, *v.Certificate, want)
			}
			if v.Certificate.Thumbprint != certs.ThumbprintSHA1(tc.der) {
				t.Errorf("Check(%s) thumbprint = %s, want %s", tc.name, v.Certificate.Thumbprint, certs.ThumbprintSHA1(tc.der))
			}
		})
	}
}

// TestCorpusFacts spells out the facts of the accepted leaf, so that a mistake shared by
// FactsOf and the test above cannot hide.
func TestCorpusFacts(t *testing.T) {
	corpus()
	v := Default().Check(leafCert.PEM(), testNow)
	if !v.Accepted {
		t.Fatalf("Check(leaf) = %s, want accepted", describe(v))
	}
	c := v.Certificate
	if c.Subject != "CN=app.contoso.com,O=Contoso" || c.Issuer != c.Subject {
		t.Errorf("subject, issuer = %q, %q; want %q for both", c.Subject, c.Issuer, "CN=app.contoso.com,O=Contoso")
	}
	if c.KeyAlgorithm != "RSA" || c.KeyBits != 2048 {
		t.Errorf("key = %s %d, want RSA 2048", c.KeyAlgorithm, c.KeyBits)
	}
	if c.Thumbprint != certs.ThumbprintSHA1(leafCert.DER) || len(c.Thumbprint) != 40 {
		t.Errorf("thumbprint = %s, want %s", c.Thumbprint, certs.ThumbprintSHA1(leafCert.DER))
	}
	if !c.NotAfter.Equal(testNow.Add(365*24*time.Hour)) || !c.NotBefore.Equal(testNow.Add(-time.Hour)) {
		t.Errorf("validity = %s to %s", c.NotBefore, c.NotAfter)
	}
}

// TestCheckFixtures judges the files generate.sh made with OpenSSL.
func TestCheckFixtures(t *testing.T) {
	leaf := readFixture(t, "openssl/leaf.der")
	tests := []struct {
		file string
		want certs.Code
		der  []byte
		msg  string
	}{
		{"openssl/leaf.der", "", leaf, ""},
		{"openssl/leaf.pem", "", leaf, ""},
		{"openssl/bag-attributes.pem", "", leaf, ""},
		{"openssl/trusted.pem", "", leaf, ""},
		{"openssl/p7b-one.der", "", leaf, ""},
		{"openssl/p7b-one.pem", "", leaf, ""},
		{"openssl/p7b-chain.der", certs.MultipleCertificates, nil, `PKCS#7 bundle of 2 certificates ("CN=fixture leaf,O=Contoso", "CN=Fixture Issuing CA,O=Contoso")`},
		{"openssl/pkcs12-aes.der", certs.ContainsPrivateKey, nil, "PKCS#12/PFX"},
		{"openssl/pkcs12-legacy.der", certs.ContainsPrivateKey, nil, "PKCS#12/PFX"},
		{"openssl/csr.pem", certs.NotACertificate, nil, "certificate signing request"},
		{"openssl/csr.der", certs.NotACertificate, nil, "certificate signing request"},
		{"openssl/ecdsa-p384.pem", certs.UnsupportedKeyType, nil, "ECDSA key on curve P-384"},
		{"openssl/dsa.pem", certs.UnsupportedKeyType, nil, "DSA key"},
		{"openssl/ed448.pem", certs.UnsupportedKeyType, nil, "Ed448 key (1.3.101.113)"},
		{"openssl/rsa-pss.pem", certs.UnsupportedKeyType, nil, "RSASSA-PSS key"},
	}
	for _, tc := range tests {
		data := readFixture(t, tc.file)
		v := Default().Check(data, testNow)
		if got := codeOf(v); got != tc.want {
			t.Errorf("Check(%s) = %s, want %s", tc.file, describe(v), orAccepted(tc.want))
			continue
		}
		if tc.msg != "" && !strings.Contains(v.Reason.Message, tc.msg) {
			t.Errorf("Check(%s) message = %q, want it to contain %q", tc.file, v.Reason.Message, tc.msg)
		}
		if tc.der != nil && !bytes.Equal(v.DER, tc.der) {
			t.Errorf("Check(%s) DER is not the leaf's", tc.file)
		}
		checkVerdictInvariants(t, tc.file, data, v)
	}
}

func TestCheckCertificateRules(t *testing.T) {
	now := testNow
	day := 24 * time.Hour
	mint := certtest.New
	type tc struct {
		name string
		cert certtest.Cert
		p    Policy
		want certs.Code
		msg  string
	}
	app := mint(now, certtest.CommonName("app.contoso.com"), certtest.Organization("Contoso"))
	ca := mint(now, certtest.CommonName("Contoso Issuing CA"), certtest.AsCA())
	issued := mint(now, certtest.CommonName("svc.contoso.com"), certtest.IssuedBy(ca))
	withSubjects := func(s ...string) Policy { p := Default(); p.AllowedSubjects = s; return p }
	withIssuers := func(s ...string) Policy { p := Default(); p.AllowedIssuers = s; return p }
	withThumbs := func(s ...string) Policy { p := Default(); p.AllowedThumbprints = s; return p }
	appThumb := certs.ThumbprintSHA1(app.DER)
	colons := strings.ToLower(appThumb[:2] + ":" + appThumb[2:20] + " " + appThumb[20:])
	tests := []tc{
		{"ecdsa before expired", mint(now, certtest.ECDSA(), certtest.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour))), Default(), certs.UnsupportedKeyType, ""},
		{"weak before expired", mint(now, certtest.RSA(1024), certtest.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour))), Default(), certs.WeakKey, ""},
		{"expired before allow-list", mint(now, certtest.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour))), withSubjects("nobody"), certs.Expired, "expired on 2026-11-25 (today)"},
		{"expired one day", mint(now, certtest.Validity(now.Add(-48*time.Hour), now.Add(-25*time.Hour))), Default(), certs.Expired, "(1 day ago)"},
		{"too soon before allow-list", mint(now, certtest.ValidFor(5*day)), withSubjects("nobody"), certs.ExpiresTooSoon, "in 5 days"},
		{"exactly min validity left", mint(now, certtest.Validity(now.Add(-time.Hour), now.Add(30*day))), Default(), "", ""},
		{"a second short of min validity", mint(now, certtest.Validity(now.Add(-time.Hour), now.Add(30*day-time.Second))), Default(), certs.ExpiresTooSoon, "in 29 days"},
		{"zero min validity, expires at now", mint(now, certtest.Validity(now.Add(-time.Hour), now)), Policy{}, "", ""},
		{"zero min validity, expired a second ago", mint(now, certtest.Validity(now.Add(-time.Hour), now.Add(-time.Second))), Policy{}, certs.Expired, ""},
		{"less than a day left", mint(now, certtest.ValidFor(time.Hour)), Default(), certs.ExpiresTooSoon, "in less than a day"},
		{"fractional min validity", mint(now, certtest.ValidFor(2*day)), Policy{MinValidity: 60 * time.Hour}, certs.ExpiresTooSoon, "policy.min_validity_days is 2.5"},
		{"not yet valid is accepted", mint(now, certtest.Validity(now.Add(300*day), now.Add(700*day))), Default(), "", ""},
		{"zero policy uses default bits", mint(now, certtest.RSA(1024)), Policy{}, certs.WeakKey, "policy.min_rsa_bits is 2048"},
		{"lower min bits", mint(now, certtest.RSA(1024)), Policy{MinRSABits: 1024}, "", ""},
		{"higher min bits", app, Policy{MinRSABits: 3072}, certs.WeakKey, "RSA key of 2048 bits; policy.min_rsa_bits is 3072"},
		{"subject by cn", app, withSubjects("APP.contoso.com"), "", ""},
		{"subject by cn wildcard", app, withSubjects("other", "*.contoso.com"), "", ""},
		{"subject in full", app, withSubjects("CN=app.contoso.com,O=Contoso"), "", ""},
		{"subject as windows prints it", app, withSubjects("CN=app.contoso.com, O=Contoso"), "", ""},
		{"subject as openssl prints it", app, withSubjects("CN = app.contoso.com, O = Contoso"), "", ""},
		{"subject wildcard on org", app, withSubjects("*,O=Contoso"), "", ""},
		{"subject not matching", app, withSubjects("*.fabrikam.com", "CN=app.contoso.com"), certs.NotAllowed, `subject "CN=app.contoso.com,O=Contoso" does not match policy.allowed_subjects`},
		{"subject partial is no match", app, withSubjects("app"), certs.NotAllowed, ""},
		{"issuer by cn", issued, withIssuers("Contoso Issuing *"), "", ""},
		{"issuer not matching", issued, withIssuers("DigiCert*"), certs.NotAllowed, `issuer "CN=Contoso Issuing CA" does not match policy.allowed_issuers`},
		{"subject checked before issuer", issued, Policy{AllowedSubjects: []string{"x"}, AllowedIssuers: []string{"y"}}, certs.NotAllowed, "subject"},
		{"thumbprint with separators", app, withThumbs(strings.Repeat("0", 40), colons), "", ""},
		{"thumbprint not listed", app, withThumbs(strings.Repeat("0", 40)), certs.NotAllowed, "thumbprint " + appThumb + " is not in policy.allowed_thumbprints"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.p.CheckCertificate(tc.cert.Cert, now)
			got := certs.Code("")
			if r != nil {
				got = r.Code
			}
			if got != tc.want {
				t.Fatalf("CheckCertificate(%s) = %v, want %s", tc.name, r, orAccepted(tc.want))
			}
			if tc.msg != "" && !strings.Contains(r.Message, tc.msg) {
				t.Errorf("CheckCertificate(%s) message = %q, want it to contain %q", tc.name, r.Message, tc.msg)
			}
			// Check on the PEM must agree with CheckCertificate.
			v := tc.p.Check(tc.cert.PEM(), now)
			if codeOf(v) != tc.want {
				t.Errorf("Check(%s) = %s, want %s like CheckCertificate", tc.name, describe(v), orAccepted(tc.want))
			}
		})
	}
	if r := Default().CheckCertificate(nil, now); r == nil || r.Code != certs.NotACertificate {
		t.Errorf("CheckCertificate(nil) = %v, want %s", r, certs.NotACertificate)
	}
}

func TestValidate(t *testing.T) {
	thumb := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		p    Policy
		want []string // the errors' texts, in order; nil for none
	}{
		{"default", Default(), nil},
		{"zero", Policy{}, nil},
		{"full", Policy{MinRSABits: 4096, MinValidity: 0, AllowedSubjects: []string{"*.contoso.com", "CN=app, O=Contoso"}, AllowedIssuers: []string{"DigiCert *"}, AllowedThumbprints: []string{thumb, "AB:CD:" + thumb[4:], strings.ToUpper(thumb)}}, nil},
		{"negative bits", Policy{MinRSABits: -1}, []string{"min_rsa_bits: must not be negative (0 means the default, 2048)"}},
		{"bits too low", Policy{MinRSABits: 512}, []string{"min_rsa_bits: 512 is below 1024; RSA keys that short can be broken"}},
		{"bits at floor", Policy{MinRSABits: 1024}, nil},
		{"bits too high", Policy{MinRSABits: 20000}, []string{"min_rsa_bits: 20000 is above 16384; no certificate could pass"}},
		{"negative validity", Policy{MinValidity: -time.Hour}, []string{"min_validity_days: must not be negative"}},
		{"empty subject", Policy{AllowedSubjects: []string{"ok", ""}}, []string{"allowed_subjects[1]: must not be empty"}},
		{"spaces subject", Policy{AllowedSubjects: []string{" CN=x"}}, []string{"allowed_subjects[0]: has leading or trailing spaces, which never match"}},
		{"control char", Policy{AllowedIssuers: []string{"CN=a\nb"}}, []string{"allowed_issuers[0]: holds a control character"}},
		{"bad utf-8", Policy{AllowedIssuers: []string{"CN=\xff"}}, []string{"allowed_issuers[0]: is not valid UTF-8"}},
		{"openssl slash form", Policy{AllowedSubjects: []string{"/CN=x/O=y"}}, []string{`allowed_subjects[0]: looks like OpenSSL's "/CN=.../O=..." form; write it as "CN=...,O=..." (most specific first)`}},
		{"openssl label", Policy{AllowedIssuers: []string{"issuer=CN = x"}}, []string{`allowed_issuers[0]: starts with OpenSSL's "subject=" or "issuer=" label; leave it out`}},
		{"long pattern", Policy{AllowedSubjects: []string{strings.Repeat("a", 1025)}}, []string{"allowed_subjects[0]: is 1025 bytes long; the limit is 1024"}},
		{"short thumbprint", Policy{AllowedThumbprints: []string{thumb, thumb, "abc"}}, []string{`allowed_thumbprints[2]: "abc" is not a SHA-1 thumbprint (40 hex digits)`}},
		{"not hex", Policy{AllowedThumbprints: []string{strings.Repeat("g", 40)}}, []string{`allowed_thumbprints[0]: "` + strings.Repeat("g", 40) + `" is not a SHA-1 thumbprint (40 hex digits)`}},
		{"sha-256", Policy{AllowedThumbprints: []string{strings.Repeat("0", 64)}}, []string{"allowed_thumbprints[0]: is 64 hex digits, a SHA-256 fingerprint; give the SHA-1 thumbprint (40 hex digits) the Azure portal shows"}},
		{"several", Policy{MinRSABits: 100, MinValidity: -1, AllowedThumbprints: []string{"x"}}, []string{
			"min_rsa_bits: 100 is below 1024; RSA keys that short can be broken",
			"min_validity_days: must not be negative",
			`allowed_thumbprints[0]: "x" is not a SHA-1 thumbprint (40 hex digits)`,
		}},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		var got []string
		if err != nil {
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("Validate(%s): %v is not a *FieldError", tc.name, e)
				}
				got = append(got, e.Error())
			}
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("Validate(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "abbbc", true},
		{"a*c", "abcd", false},
		{"*.contoso.com", "app.contoso.com", true},
		{"*.contoso.com", "contoso.com", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"a**b", "ab", true},
		{"?", "a", false}, // '?' is literal
		{"cn=*,o=contoso", "cn=app,o=contoso", true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CN=app,O=Contoso", "cn=app,o=contoso"},
		{"CN=app, O=Contoso", "cn=app,o=contoso"},
		{"CN = app , O = Contoso", "cn=app,o=contoso"},
		{`CN=Contoso\, Inc,O=x`, `cn=contoso\, inc,o=x`},
		{"CN=two words", "cn=two words"},
		{"CN=a+OU=b, C=AU", "cn=a+ou=b,c=au"},
	}
	for _, tc := range tests {
		if got := normalizeName(tc.in); got != tc.want {
			t.Errorf("normalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSizeText(t *testing.T) {
	tests := []struct {
		n           int64
		round, ceil string
	}{
		{0, "0 bytes", "0 bytes"},
		{1023, "1023 bytes", "1023 bytes"},
		{1 << 20, "1 MiB", "1 MiB"},
		{1<<20 + 1, "1 MiB", "1.1 MiB"},
		{2202009, "2.1 MiB", "2.1 MiB"},
		{3 << 30, "3 GiB", "3 GiB"},
	}
	for _, tc := range tests {
		if got := sizeText(tc.n); got != tc.round {
			t.Errorf("sizeText(%d) = %q, want %q", tc.n, got, tc.round)
		}
		if got := sizeAbove(tc.n); got != tc.ceil {
			t.Errorf("sizeAbove(%d) = %q, want %q", tc.n, got, tc.ceil)
		}
	}
}

// TestKeyMaterialWiped checks that every buffer the check decoded into is zero afterwards.
func TestKeyMaterialWiped(t *testing.T) {
	var inputs []corpusCase
	for _, tc := range corpus() {
		if tc.want == certs.ContainsPrivateKey || tc.want == "" {
			inputs = append(inputs, tc)
		}
	}
	decoded := 0
	for _, tc := range inputs {
		s := new(scan)
		Default().check(tc.in, testNow, "input", s)
		if s.scratch != nil || len(s.other) > 0 {
			decoded++
		}
		for i, b := range append([][]byte{s.scratch}, s.other...) {
			if j := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); j >= 0 {
				t.Errorf("check(%s): buffer %d not wiped (byte %d is non-zero)", tc.name, i, j)
			}
		}
	}
	if decoded < 10 {
		t.Errorf("only %d inputs decoded anything; the test does not test much", decoded)
	}
}

// TestPEMKeysNotDecoded checks that a PEM private key block is refused without its body being
// decoded at all.
func TestPEMKeysNotDecoded(t *testing.T) {
	corpus()
	s := new(scan)
	v := Default().check(leafCert.KeyPEM(), testNow, "input", s)
	if codeOf(v) != certs.ContainsPrivateKey {
		t.Fatalf("check(key) = %s, want %s", describe(v), certs.ContainsPrivateKey)
	}
	if s.used != 0 {
		t.Errorf("check(key) decoded %d bytes, want 0", s.used)
	}
}

// codeOf returns the verdict's code, or "" when accepted.
func codeOf(v Verdict) certs.Code {
	if v.Reason == nil {
		return ""
	}
	return v.Reason.Code
}

func describe(v Verdict) string {
	if v.Accepted {
		return "accepted"
	}
	if v.Reason == nil {
		return "refused without a reason"
	}
	return string(v.Reason.Code) + " (" + v.Reason.Message + ")"
}

func orAccepted(c certs.Code) string {
	if c == "" {
		return "accepted"
	}
	return string(c)
}

// checkVerdictInvariants checks what must hold for every verdict on in.
func checkVerdictInvariants(t testing.TB, name string, in []byte, v Verdict) {
	t.Helper()
	if v.Accepted != (v.Reason == nil) {
		t.Fatalf("Check(%s): Accepted = %v with reason %v", name, v.Accepted, v.Reason)
	}
	if v.Accepted && (v.Certificate == nil || v.DER == nil) {
		t.Fatalf("Check(%s): accepted without a certificate", name)
	}
	if (v.Certificate == nil) != (v.DER == nil) {
		t.Fatalf("Check(%s): Certificate %v but DER of %d bytes", name, v.Certificate, len(v.DER))
	}
	if v.Certificate != nil {
		if v.Certificate.Thumbprint != certs.ThumbprintSHA1(v.DER) {
			t.Fatalf("Check(%s): thumbprint %s does not match the DER", name, v.Certificate.Thumbprint)
		}
		c, err := x509.ParseCertificate(v.DER)
		if err != nil {
			t.Fatalf("Check(%s): DER does not parse: %v", name, err)
		}
		if v.Accepted {
			if alg, bits := certs.KeyOf(c); alg != "RSA" || bits < DefaultMinRSABits {
				t.Fatalf("Check(%s): accepted a %s key of %d bits", name, alg, bits)
			}
		}
	}
	if v.Reason == nil {
		return
	}
	known := false
	for _, c := range certs.VerdictCodes {
		known = known || c == v.Reason.Code
	}
	if !known {
		t.Fatalf("Check(%s): unknown code %q", name, v.Reason.Code)
	}
	if v.Reason.Message == "" {
		t.Fatalf("Check(%s): empty message", name)
	}
	if run := echoedBase64(v.Reason, in); run != "" {
		t.Fatalf("Check(%s): message %q echoes input %q", name, v.Reason.Message, run)
	}
}

// echoedBase64 returns a run of 32 or more base64 characters of the message that also
// appears in the input, or "". Quoted subjects and issuers are certificate facts the
// messages of multiple_certificates and not_allowed are meant to show, so they are skipped.
func echoedBase64(r *certs.Reason, in []byte) string {
	msg := r.Message
	if r.Code == certs.MultipleCertificates || r.Code == certs.NotAllowed {
		msg = dropQuoted(msg)
	}
	isB64 := func(c byte) bool { return b64[c] < 64 || c == '=' }
	for i := 0; i < len(msg); {
		j := i
		for j < len(msg) && isB64(msg[j]) {
			j++
		}
		if j-i >= 32 && bytes.Contains(in, []byte(msg[i:j])) {
			return msg[i:j]
		}
		i = j + 1
	}
	return ""
}

func dropQuoted(s string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && in:
			i++
		case s[i] == '"':
			in = !in
		case !in:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
