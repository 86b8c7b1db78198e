package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// schemaKey is one key of the schema.
type schemaKey struct {
	path string // the full path, such as "policy.min_rsa_bits"
}

// schemaKeys returns the full path of every key of the config file, sections included
// ("cloud", "cloud.name", ...), in the order of the Config struct.
func schemaKeys() []schemaKey {
	var keys []schemaKey
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlKey(f)
			if name == "" {
				continue
			}
			key := joinKey(path, name)
			keys = append(keys, schemaKey{path: key})
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, key)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// suggest returns the key a mistyped name under path was probably meant to be, quoted, or "".
func suggest(name, path string, t reflect.Type) string {
	var siblings []string
	for i := range t.NumField() {
		if s := yamlKey(t.Field(i)); s != "" {
			siblings = append(siblings, s)
		}
	}
	// The right name in the wrong case.
	for _, s := range siblings {
		if strings.EqualFold(s, name) {
			return strconv.Quote(s)
		}
	}
	all := schemaKeys()
	for _, k := range all {
		// A dotted key written flat ("policy.approval: manual").
		if strings.EqualFold(k.path, joinKey(path, name)) && strings.Contains(name, ".") {
			first, rest, _ := strings.Cut(name, ".")
			return fmt.Sprintf("%q nested under %q", rest, first)
		}
	}
	// A key of another section ("min_rsa_bits" at the top instead of under policy).
	var elsewhere []string
	for _, k := range all {
		parent, leaf := splitKey(k.path)
		if parent != path && strings.EqualFold(leaf, name) {
			elsewhere = append(elsewhere, strconv.Quote(k.path))
		}
	}
	if len(elsewhere) > 0 {
		return strings.Join(elsewhere, " or ")
	}
	// A typo: the closest sibling within two edits.
	best, bestDist := "", 3
	for _, s := range siblings {
		if dist := editDistance(strings.ToLower(name), s); dist < bestDist || dist == bestDist && best != "" && s < best {
			best, bestDist = s, dist
		}
	}
	if best != "" && bestDist < len(name) {
		return strconv.Quote(best)
	}
	return ""
}

func splitKey(path string) (parent, leaf string) {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

// editDistance is the optimal string alignment distance between a and b: insertions,
// deletions, substitutions and swaps of neighbours each count one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return len(ra) + len(rb) // names that long are not typos of a key
	}
	dp := make([][]int, len(ra)+1)
	for i := range dp {
		dp[i] = make([]int, len(rb)+1)
		dp[i][0] = i
	}
	for j := range dp[0] {
		dp[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			dp[i][j] = min(dp[i-1][j]+1, dp[i][j-1]+1, dp[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				dp[i][j] = min(dp[i][j], dp[i-2][j-2]+1)
			}
		}
	}
	return dp[len(ra)][len(rb)]
}
