package certpolicy

import (
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/aucloud/certagent/agent/certs"
)

// DefaultNameTemplate is the credential description certagent writes when the config gives
// none. The Azure portal shows it in "Certificates & secrets".
const DefaultNameTemplate = "{{.CommonName}} exp {{.NotAfter}} (certagent {{.Added}})"

// NameData is what a display-name template can use. Dates are YYYY-MM-DD in UTC.
type NameData struct {
	CommonName string
	Subject    string
	Issuer     string
	Thumbprint string
	NotBefore  string
	NotAfter   string
	Added      string
}

// NameTemplate renders the displayName of a new key credential.
type NameTemplate struct {
	t *template.Template
}

// ParseNameTemplate parses a text/template over NameData. An empty text means
// DefaultNameTemplate. It fails on a syntax error or a field NameData does not have.
func ParseNameTemplate(text string) (*NameTemplate, error) {
	if text == "" {
		text = DefaultNameTemplate
	}
	t, err := template.New("display_name_template").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	nt := &NameTemplate{t: t}
	// Execute once on sample data so that unknown fields fail at load, not at upload.
	sample := certs.Certificate{Subject: "CN=sample", Issuer: "CN=sample", Thumbprint: strings.Repeat("0", 40)}
	if _, err := nt.render(sample, time.Unix(0, 0)); err != nil {
		return nil, err
	}
	return nt, nil
}

// Render returns the display name for c added at now, cut to the 90 characters Graph keeps
// (cut here so that what the agent records is what Graph stores).
func (nt *NameTemplate) Render(c certs.Certificate, now time.Time) string {
	s, err := nt.render(c, now)
	if err != nil {
		// ParseNameTemplate executed the template already; a failure here is a bug.
		s = fmt.Sprintf("%s exp %s", c.CommonName(), c.NotAfter.UTC().Format(time.DateOnly))
	}
	return TruncateName(s)
}

func (nt *NameTemplate) render(c certs.Certificate, now time.Time) (string, error) {
	var b strings.Builder
	err := nt.t.Execute(&b, NameData{
		CommonName: c.CommonName(),
		Subject:    c.Subject,
		Issuer:     c.Issuer,
		Thumbprint: c.Thumbprint,
		NotBefore:  c.NotBefore.UTC().Format(time.DateOnly),
		NotAfter:   c.NotAfter.UTC().Format(time.DateOnly),
		Added:      now.UTC().Format(time.DateOnly),
	})
	return strings.TrimSpace(b.String()), err
}

// TruncateName cuts s to certs.MaxDisplayNameLen characters (runes, not bytes).
func TruncateName(s string) string {
	if utf8.RuneCountInString(s) <= certs.MaxDisplayNameLen {
		return s
	}
	r := []rune(s)
	return string(r[:certs.MaxDisplayNameLen])
}
