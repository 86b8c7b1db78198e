package health

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// TestCodesComplete: Codes lists every problem code this package declares, and
// docs/contract.md's table of status problems has a row for each.
func TestCodesComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "health.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					if regexp.MustCompile(`^[a-z]+(_[a-z]+)+$`).MatchString(s) {
						declared = append(declared, s)
					}
				}
			}
		}
	}
	for _, c := range declared {
		if !slices.Contains(Codes, c) {
			t.Errorf("problem code %q is not in Codes", c)
		}
	}
	if len(Codes) != len(declared) {
		t.Errorf("Codes has %d codes, health.go declares %d", len(Codes), len(declared))
	}
	doc, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Codes {
		if !regexp.MustCompile("(?m)^\\| `" + c + "` \\|").Match(doc) {
			t.Errorf("docs/contract.md has no table row for problem %q", c)
		}
	}
}
