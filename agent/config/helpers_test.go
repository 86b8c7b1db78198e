package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// diffConfigs describes how a and b differ, field by field, ignoring File and the line
// positions; "" when they are equal.
func diffConfigs(a, b *Config) string {
	var diffs []string
	var walk func(va, vb reflect.Value, path string)
	walk = func(va, vb reflect.Value, path string) {
		t := va.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "File" {
				continue
			}
			fa, fb := va.Field(i), vb.Field(i)
			name := path + f.Name
			if f.Type.Kind() == reflect.Struct {
				walk(fa, fb, name+".")
				continue
			}
			if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
				diffs = append(diffs, fmt.Sprintf("%s: %#v != %#v", name, fa.Interface(), fb.Interface()))
			}
		}
	}
	walk(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "")
	return strings.Join(diffs, "\n")
}

// mustParse parses data as file x.yaml and fails the test on any problem.
func mustParse(t *testing.T, data string) *Config {
	t.Helper()
	c, err := Parse("x.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse:\n%v\ninput:\n%s", err, data)
	}
	return c
}

// parseErrors parses data as file x.yaml and returns its problems, failing the test when the
// error is not Errors.
func parseErrors(t *testing.T, data string) Errors {
	t.Helper()
	_, err := Parse("x.yaml", []byte(data))
	if err == nil {
		return nil
	}
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("Parse error is %T, want Errors: %v", err, err)
	}
	return es
}

// valid holds the three required keys on lines 1 to 5; test bodies start at line 6.
const valid = `tenant_id: 11111111-1111-1111-1111-111111111111
auth:
  client_id: 22222222-2222-2222-2222-222222222222
target:
  app_id: 33333333-3333-3333-3333-333333333333
`

// lookupEnv is os.Getenv, named so that tests read as the code does.
func lookupEnv(k string) string { return os.Getenv(k) }
