package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const examplePath = "../../configs/certagent.example.yaml"

// TestExample checks that the shipped example loads and validates, and that it holds the
// defaults (apart from the placeholder IDs it must fill in).
func TestExample(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", examplePath, err)
	}
	abs, _ := filepath.Abs(examplePath)
	if c.File != abs {
		t.Errorf("File = %q, want %q", c.File, abs)
	}
	want := Default()
	want.TenantID = "11111111-1111-1111-1111-111111111111"
	want.Auth.ClientID = "22222222-2222-2222-2222-222222222222"
	want.Target.AppID = "33333333-3333-3333-3333-333333333333"
	if diff := diffConfigs(c, want); diff != "" {
		t.Errorf("example differs from the defaults:\n%s", diff)
	}
}

// TestExampleDocumentsEveryKey walks the schema (the Config struct's yaml tags) and checks
// that the example file holds every key, in the schema's order, each with a comment right
// above it, so that a new key cannot be added without documenting it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	type found struct {
		line    int
		comment string
	}
	inFile := map[string]found{}
	var order []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := joinKey(path, k.Value)
			inFile[key] = found{k.Line, k.HeadComment}
			order = append(order, key)
			if v.Kind == yaml.MappingNode && key != "notify.headers" {
				walk(v, key)
			}
		}
	}
	walk(doc.Content[0], "")

	var schema []string
	for _, k := range schemaKeys() {
		schema = append(schema, k.path)
		f, ok := inFile[k.path]
		switch {
		case !ok:
			t.Errorf("%s: key %s is not in the example", examplePath, k.path)
		case strings.TrimSpace(f.comment) == "":
			t.Errorf("%s:%d: key %s has no comment above it", examplePath, f.line, k.path)
		}
	}
	if !slices.Equal(order, schema) {
		t.Errorf("keys of the example are not in the schema's order:\n got %q\nwant %q", order, schema)
	}
}
