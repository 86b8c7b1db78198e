package config

import (
	"os"
	"regexp"
	"testing"
)

var lineBreaks = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// FuzzParse checks that Parse never panics on any input, that every problem it reports has a
// line inside the file, and that a config it accepts survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(examplePath); err == nil {
		f.Add(b)
	}
	for _, s := range []string{valid, valid + "cloud:\n  nmae: x\n", "- a\n", "a: &x\n  b: *x\n",
		valid + "policy:\n  allowed_subjects: &s [a]\n  allowed_issuers: *s\n", "\xff\xfe", "{{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("Parse error %T %v, want non-empty Errors", err, err)
			}
			// YAML's line breaks, counted generously: UTF-16 input holds them as bytes too.
			lines := len(lineBreaks.FindAllIndex(data, -1)) + 1
			for _, e := range es {
				if e.Line < 0 || e.Line > lines {
					t.Fatalf("problem %q at line %d of a %d-line input", e.Error(), e.Line, lines)
				}
			}
			return
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse("f.yaml", b)
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v\n%s", err, b)
		}
		if diff := diffConfigs(c, back); diff != "" {
			t.Fatalf("round trip differs:\n%s\n%s", diff, b)
		}
	})
}
