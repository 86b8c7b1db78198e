package certpolicy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
)

// Defaults of the policy settings.
const (
	DefaultMinRSABits  = 2048
	DefaultMinValidity = 30 * 24 * time.Hour
)

// Limits Validate enforces.
const (
	// MinRSABitsFloor is the smallest policy.min_rsa_bits a config may set.
	MinRSABitsFloor = 1024
	// MinRSABitsCeiling is the largest: no certificate Entra ID takes has a longer key.
	MinRSABitsCeiling = 16384
	// maxPatternLen bounds an allow-list pattern.
	maxPatternLen = 1024
)

// Policy is the certificate policy (config: policy.*). The zero value takes any RSA
// certificate of DefaultMinRSABits or more that has not expired; Default gives the shipped
// policy. Its methods do not modify it and are safe for concurrent use.
type Policy struct {
	// MinRSABits is the shortest RSA modulus taken (policy.min_rsa_bits). 0 means
	// DefaultMinRSABits.
	MinRSABits int
	// MinValidity is how long a certificate must still be valid when checked
	// (policy.min_validity_days × 24h). 0 takes a certificate up to the moment it expires.
	MinValidity time.Duration
	// AllowedSubjects are patterns of which one must match the subject; empty allows any.
	// A pattern matches the whole subject as Go prints it (RFC 2253 order, most specific
	// first: "CN=app,O=Contoso,C=AU") or the subject's CN alone. '*' matches any run of
	// characters and is the only wildcard; case does not matter, nor do spaces after commas
	// and around '=' (so Windows' "CN=app, O=Contoso" matches).
	AllowedSubjects []string
	// AllowedIssuers are patterns for the issuer, as AllowedSubjects are for the subject.
	AllowedIssuers []string
	// AllowedThumbprints are SHA-1 thumbprints (40 hex digits; case, spaces, colons and
	// dashes do not matter) of which the certificate's must be one; empty allows any.
	AllowedThumbprints []string
}

// Default returns the shipped policy: RSA keys of 2048 bits or more, at least 30 days left,
// no allow-lists.
func Default() Policy {
	return Policy{MinRSABits: DefaultMinRSABits, MinValidity: DefaultMinValidity}
}

func (p Policy) minRSABits() int {
	if p.MinRSABits == 0 {
		return DefaultMinRSABits
	}
	return p.MinRSABits
}

// FieldError is a mistake in one policy setting. Field is the setting's key under policy,
// with an index for a list item ("allowed_thumbprints[2]"); the config loader puts "policy."
// and the file position in front.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate reports the mistakes in the policy, each as a *FieldError, joined (errors.Join)
// when there are several. It does no I/O.
func (p Policy) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch b := p.MinRSABits; {
	case b < 0:
		add("min_rsa_bits", "must not be negative (0 means the default, %d)", DefaultMinRSABits)
	case b > 0 && b < MinRSABitsFloor:
		add("min_rsa_bits", "%d is below %d; RSA keys that short can be broken", b, MinRSABitsFloor)
	case b > MinRSABitsCeiling:
		add("min_rsa_bits", "%d is above %d; no certificate could pass", b, MinRSABitsCeiling)
	}
	if p.MinValidity < 0 {
		add("min_validity_days", "must not be negative")
	}
	for i, pat := range p.AllowedSubjects {
		if msg := patternProblem(pat); msg != "" {
			add(fmt.Sprintf("allowed_subjects[%d]", i), "%s", msg)
		}
	}
	for i, pat := range p.AllowedIssuers {
		if msg := patternProblem(pat); msg != "" {
			add(fmt.Sprintf("allowed_issuers[%d]", i), "%s", msg)
		}
	}
	for i, t := range p.AllowedThumbprints {
		if msg := thumbprintProblem(t); msg != "" {
			add(fmt.Sprintf("allowed_thumbprints[%d]", i), "%s", msg)
		}
	}
	return errors.Join(errs...)
}

// patternProblem describes what is wrong with an allow-list pattern, or returns "".
func patternProblem(pat string) string {
	switch {
	case strings.TrimSpace(pat) == "":
		return "must not be empty"
	case len(pat) > maxPatternLen:
		return fmt.Sprintf("is %d bytes long; the limit is %d", len(pat), maxPatternLen)
	case !utf8.ValidString(pat):
		return "is not valid UTF-8"
	case strings.IndexFunc(pat, unicode.IsControl) >= 0:
		return "holds a control character"
	case strings.TrimSpace(pat) != pat:
		return "has leading or trailing spaces, which never match"
	case strings.HasPrefix(pat, "/"):
		return `looks like OpenSSL's "/CN=.../O=..." form; write it as "CN=...,O=..." (most specific first)`
	}
	lower := strings.ToLower(pat)
	if strings.HasPrefix(lower, "subject=") || strings.HasPrefix(lower, "issuer=") {
		return `starts with OpenSSL's "subject=" or "issuer=" label; leave it out`
	}
	return ""
}

// thumbprintProblem describes what is wrong with an allow-listed thumbprint, or returns "".
func thumbprintProblem(t string) string {
	n := certs.NormalizeThumbprint(t)
	_, err := hex.DecodeString(n)
	switch {
	case err == nil && len(n) == 40:
		return ""
	case err == nil && len(n) == 64:
		return "is 64 hex digits, a SHA-256 fingerprint; give the SHA-1 thumbprint (40 hex digits) the Azure portal shows"
	case len(n) > 80:
		return "is not a SHA-1 thumbprint (40 hex digits)"
	}
	return fmt.Sprintf("%q is not a SHA-1 thumbprint (40 hex digits)", t)
}

// CheckCertificate runs the certificate rules on a parsed certificate, in order: key type,
// key size, expiry, minimum validity, then the subject, issuer and thumbprint allow-lists.
// It returns nil when the certificate passes. The rotation engine calls it again before
// writing, since a certificate approved weeks after it arrived may have expired meanwhile.
//
// A certificate whose notBefore is still in the future passes: a provider may send next
// year's certificate early, and Entra ID only uses a credential once it is valid.
func (p Policy) CheckCertificate(c *x509.Certificate, now time.Time) *certs.Reason {
	if c == nil {
		return reason(certs.NotACertificate, "no certificate")
	}
	for _, rule := range rules {
		if r := rule(p, c, now); r != nil {
			return r
		}
	}
	return nil
}

// rules are the certificate rules, in the order they are checked; the first that fails
// decides.
var rules = []func(p Policy, c *x509.Certificate, now time.Time) *certs.Reason{
	checkKeyType,
	checkKeySize,
	checkExpired,
	checkMinValidity,
	checkSubject,
	checkIssuer,
	checkThumbprint,
}

const needsRSA = "; Entra ID app authentication needs an RSA key"

func checkKeyType(_ Policy, c *x509.Certificate, _ time.Time) *certs.Reason {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		return reason(certs.UnsupportedKeyType, "ECDSA key on curve %s"+needsRSA, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return reason(certs.UnsupportedKeyType, "Ed25519 key"+needsRSA)
	}
	if c.PublicKeyAlgorithm == x509.DSA {
		return reason(certs.UnsupportedKeyType, "DSA key"+needsRSA)
	}
	return reason(certs.UnsupportedKeyType, "%s"+needsRSA, unknownKeyName(c))
}

// unknownKeyName names a key Go does not parse, by its algorithm OID.
func unknownKeyName(c *x509.Certificate) string {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return "key of an unknown type"
	}
	oid := spki.Algorithm.Algorithm.String()
	if name, ok := keyOIDNames[oid]; ok {
		return name + " key (" + oid + ")"
	}
	return "key of algorithm " + oid
}

var keyOIDNames = map[string]string{
	"1.2.840.113549.1.1.10":   "RSASSA-PSS",
	"1.3.101.110":             "X25519",
	"1.3.101.111":             "X448",
	"1.3.101.113":             "Ed448",
	"1.2.643.7.1.1.1.1":       "GOST R 34.10-2012",
	"1.2.156.10197.1.301":     "SM2",
	"2.16.840.1.101.3.4.3.17": "ML-DSA-44",
	"2.16.840.1.101.3.4.3.18": "ML-DSA-65",
	"2.16.840.1.101.3.4.3.19": "ML-DSA-87",
}

func checkKeySize(p Policy, c *x509.Certificate, _ time.Time) *certs.Reason {
	k := c.PublicKey.(*rsa.PublicKey) // checkKeyType ran first
	if k == nil || k.N == nil {
		return reason(certs.WeakKey, "RSA key without a modulus")
	}
	if bits, min := k.N.BitLen(), p.minRSABits(); bits < min {
		return reason(certs.WeakKey, "RSA key of %d bits; policy.min_rsa_bits is %d", bits, min)
	}
	return nil
}

func checkExpired(_ Policy, c *x509.Certificate, now time.Time) *certs.Reason {
	if !c.NotAfter.Before(now) {
		return nil
	}
	ago := "today"
	switch d := certs.DaysBetween(c.NotAfter, now); {
	case d == 1:
		ago = "1 day ago"
	case d > 1:
		ago = strconv.Itoa(d) + " days ago"
	}
	return reason(certs.Expired, "expired on %s (%s)", date(c.NotAfter), ago)
}

func checkMinValidity(p Policy, c *x509.Certificate, now time.Time) *certs.Reason {
	left := c.NotAfter.Sub(now)
	if left >= p.MinValidity {
		return nil
	}
	in := "in less than a day"
	switch d := certs.DaysBetween(now, c.NotAfter); {
	case d == 1:
		in = "in 1 day"
	case d > 1:
		in = "in " + strconv.Itoa(d) + " days"
	}
	want := strconv.FormatFloat(p.MinValidity.Hours()/24, 'f', -1, 64)
	return reason(certs.ExpiresTooSoon, "expires on %s, %s; policy.min_validity_days is %s", date(c.NotAfter), in, want)
}

func checkSubject(p Policy, c *x509.Certificate, _ time.Time) *certs.Reason {
	if len(p.AllowedSubjects) == 0 || nameAllowed(p.AllowedSubjects, c.Subject) {
		return nil
	}
	return reason(certs.NotAllowed, "subject %s does not match policy.allowed_subjects", quoteName(c.Subject.String()))
}

func checkIssuer(p Policy, c *x509.Certificate, _ time.Time) *certs.Reason {
	if len(p.AllowedIssuers) == 0 || nameAllowed(p.AllowedIssuers, c.Issuer) {
		return nil
	}
	return reason(certs.NotAllowed, "issuer %s does not match policy.allowed_issuers", quoteName(c.Issuer.String()))
}

func checkThumbprint(p Policy, c *x509.Certificate, _ time.Time) *certs.Reason {
	if len(p.AllowedThumbprints) == 0 {
		return nil
	}
	tp := certs.ThumbprintSHA1(c.Raw)
	for _, t := range p.AllowedThumbprints {
		if certs.NormalizeThumbprint(t) == tp {
			return nil
		}
	}
	return reason(certs.NotAllowed, "thumbprint %s is not in policy.allowed_thumbprints", tp)
}

// nameAllowed reports whether one of the patterns matches the name as a whole or its CN.
func nameAllowed(patterns []string, name pkix.Name) bool {
	full := normalizeName(name.String())
	cn := normalizeName(name.CommonName)
	for _, pat := range patterns {
		p := normalizeName(pat)
		if globMatch(p, full) || name.CommonName != "" && globMatch(p, cn) {
			return true
		}
	}
	return false
}

// normalizeName lower-cases a distinguished name or pattern and drops the spaces next to
// unescaped ',', '+' and '=', so that "CN=app, O=Contoso" (Windows) and "CN = app"
// (OpenSSL) compare equal to "CN=app,O=Contoso" (Go).
func normalizeName(s string) string {
	s = strings.ToLower(s)
	if !strings.ContainsAny(s, " \t") {
		return s
	}
	b := make([]byte, 0, len(s))
	escaped, skipSpace := false, false
	for i := 0; i < len(s); i++ {
		c := s[i] // bytes: the characters that matter are ASCII, and UTF-8 never hides one
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == ',' || c == '+' || c == '=':
			for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') && (len(b) < 2 || b[len(b)-2] != '\\') {
				b = b[:len(b)-1]
			}
			b = append(b, c)
			skipSpace = true
			continue
		case (c == ' ' || c == '\t') && skipSpace:
			continue
		}
		skipSpace = false
		b = append(b, c)
	}
	return string(b)
}

// globMatch reports whether s matches pattern, where '*' matches any run of characters
// (including none) and everything else matches itself. It runs in O(len(pattern)·len(s)) at
// worst, without recursion.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// quoteName quotes a subject or issuer for a message, cut to 200 bytes.
func quoteName(s string) string {
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return strconv.Quote(s) + "…"
	}
	return strconv.Quote(s)
}

func date(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func reason(code certs.Code, format string, args ...any) *certs.Reason {
	return &certs.Reason{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Names reports whether the policy's allow-lists name c: at least one of allowed_subjects,
// allowed_issuers or allowed_thumbprints is set, and every one that is set matches. Retiring
// old certificates from an app uses it: the agent removes only certificates the policy
// names as the provider's, never whatever else is on the app.
func (p Policy) Names(c *x509.Certificate) bool {
	if len(p.AllowedSubjects)+len(p.AllowedIssuers)+len(p.AllowedThumbprints) == 0 {
		return false
	}
	return checkSubject(p, c, time.Time{}) == nil && checkIssuer(p, c, time.Time{}) == nil && checkThumbprint(p, c, time.Time{}) == nil
}
