package certpolicy

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
)

func base64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzCheck checks properties of every verdict, beyond not panicking: Check never modifies
// its input; an accepted verdict carries an RSA certificate and its DER, whose thumbprint
// matches, and that DER alone is accepted too; a refusal carries a known code and a message;
// no message echoes a run of the input's base64. Seeds: the corpus, the regression fixtures,
// the OpenSSL fixtures and testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	for _, tc := range corpus() {
		if len(tc.in) <= 64<<10 {
			f.Add(tc.in)
		}
	}
	for _, pi := range pathologicalInputs() {
		f.Add(pi.gen(512))
	}
	for _, dir := range []string{"regress", "openssl"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	p := Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := clone(data)
		v := p.Check(data, testNow)
		if !bytes.Equal(in, data) {
			t.Fatal("Check modified its input")
		}
		checkVerdictInvariants(t, "fuzz", in, v)
		if v.Accepted {
			again := p.Check(v.DER, testNow)
			if !again.Accepted || again.Certificate.Thumbprint != v.Certificate.Thumbprint {
				t.Fatalf("the accepted certificate's DER alone is %s", describe(again))
			}
		}
		if v.Reason != nil && v.Reason.Code == certs.TooLarge && len(data) <= certs.MaxFileSize {
			t.Fatalf("too_large for %d bytes", len(data))
		}
	})
}

// FuzzGlobMatch compares globMatch with a regular expression that means the same.
func FuzzGlobMatch(f *testing.F) {
	f.Add("*.contoso.com", "app.contoso.com")
	f.Add("a*b*c", "aXbYbc")
	f.Add("**", "")
	f.Add("cn=*,o=x", "cn=a,b,o=x")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 64 || len(s) > 256 {
			t.Skip()
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if got, want := globMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}
