package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks a YAML node tree against the Config struct, collecting every problem with its
// line and key path, and recording the line of every key for Validate. yaml.v3 alone
// (Decoder.KnownFields and Decode) words problems in Go types ("field nmae not found in type
// config.Cloud"), gives up on a whole mapping that holds a duplicate key, and takes values
// the config refuses (2.5 for a whole number, yes for true, a null list item as ""). Each
// value is still converted by yaml.v3: Node.Decode, and Duration's yaml.Unmarshaler.
type decoder struct {
	file  string
	errs  Errors
	lines map[string]int
	// failed holds the keys whose value could not be decoded (they keep their default), so
	// that Validate does not report them a second time. "" means the whole file.
	failed map[string]bool
}

func (d *decoder) add(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail reports that the value of key could not be decoded.
func (d *decoder) fail(line int, key, format string, args ...any) {
	d.add(line, key, format, args...)
	d.failed[key] = true
}

// decodeDocument decodes the document's root mapping into c.
func (d *decoder) decodeDocument(doc *yaml.Node, c *Config) {
	if doc == nil || len(doc.Content) == 0 {
		return
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the file must be a mapping of keys (tenant_id: ..., auth: ...), not %s", describe(root))
		return
	}
	d.decodeStruct(root, reflect.ValueOf(c).Elem(), "")
}

// decodeStruct decodes a mapping into the struct v, whose yaml tags are the allowed keys. It
// does what yaml.v3's Decoder.KnownFields does, but goes on after an unknown key. A key
// written with nothing after the colon keeps its default, and so does "" for a string (as
// the example file writes it).
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.add(k.Line, path, "a key must be a plain name, not %s", describe(k))
			continue
		}
		key := joinKey(path, k.Value)
		if k.ShortTag() == "!!merge" {
			d.add(k.Line, key, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(k.Line, key, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldIndex(v.Type(), k.Value)
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, path, v.Type()); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.add(k.Line, key, "%s", msg)
			continue
		}
		d.lines[key] = k.Line
		fv := v.Field(f)
		if isNull(val) || fv.Kind() == reflect.String && val.Kind == yaml.ScalarNode && val.Value == "" {
			continue
		}
		d.decodeValue(val, fv, key)
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decodeValue decodes n into v, the value of key, and reports whether it could. It checks
// that n is what v holds, in the words of the messages, and leaves the conversion to
// Node.Decode. Lists and mappings are walked item by item, each with its line.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, key string) bool {
	n = deref(n)
	scalar := n.Kind == yaml.ScalarNode
	var want string // what n must be
	ok := false     // whether n looks like it, to be decoded
	switch t := v.Type(); {
	case reflect.PointerTo(t).Implements(unmarshalerType):
		// Duration: its UnmarshalYAML says what is wrong.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n.Line, key, "%v", err)
			return false
		}
		return true
	case t.Kind() == reflect.Struct:
		if n.Kind == yaml.MappingNode {
			d.decodeStruct(n, v, key)
			return true
		}
		want = "a section of keys"
	case t.Kind() == reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			d.decodeList(n, v, key)
			return !d.failed[key]
		}
		if scalar {
			d.fail(n.Line, key, "must be a list, not %s; for one item write [%s]", describe(n), strconv.Quote(n.Value))
			return false
		}
		want = "a list"
	case t.Kind() == reflect.Map:
		if n.Kind == yaml.MappingNode {
			d.decodeMap(n, v, key)
			return !d.failed[key]
		}
		want = "a mapping of names to values"
	case t.Kind() == reflect.String:
		want, ok = "a string", scalar && !isNull(n)
	case t.Kind() == reflect.Int && strings.HasSuffix(key, "_days") && scalar && n.ShortTag() == "!!str":
		return d.decodeDays(n, v, key)
	case t.Kind() == reflect.Int:
		// Only !!int: yaml.v3 would truncate 2.5 to 2.
		want, ok = "a whole number", scalar && n.ShortTag() == "!!int"
	case t.Kind() == reflect.Bool:
		// Only !!bool: yaml.v3 would take YAML 1.1's yes, no, on and off too.
		want, ok = "true or false", scalar && n.ShortTag() == "!!bool"
	default:
		// A Config field of a kind this decoder does not know: a bug, caught by the tests.
		panic(fmt.Sprintf("config: no decoder for %s (%s)", key, t))
	}
	if ok {
		err := n.Decode(v.Addr().Interface())
		if err == nil {
			return true
		}
		if v.Kind() == reflect.Int {
			d.fail(n.Line, key, "%s is out of range", n.Value)
			return false
		}
	}
	d.fail(n.Line, key, "must be %s, not %s", want, describe(n))
	return false
}

// decodeList decodes a sequence into the slice v, item by item. An item that fails fails the
// list too, which keeps what decoded.
func (d *decoder) decodeList(n *yaml.Node, v reflect.Value, key string) {
	items := reflect.Zero(v.Type())
	for i, item := range n.Content {
		ik := key + "[" + strconv.Itoa(i) + "]"
		d.lines[ik] = deref(item).Line
		e := reflect.New(v.Type().Elem()).Elem()
		if !d.decodeValue(item, e, ik) {
			d.failed[key] = true
			continue
		}
		items = reflect.Append(items, e)
	}
	v.Set(items)
}

// decodeMap decodes a mapping into the map v (notify.headers), entry by entry, like
// decodeList. Names differing only in case are duplicates, as HTTP header names are.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, key string) {
	m := reflect.MakeMap(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(k.Line, key, "a name must be a plain string, not %s", describe(k))
			continue
		}
		ik := mapKey(key, k.Value)
		if first, dup := seen[strings.ToLower(k.Value)]; dup {
			d.add(k.Line, ik, "duplicate name (first at line %d; case does not matter)", first)
			continue
		}
		seen[strings.ToLower(k.Value)] = k.Line
		d.lines[ik] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		if !d.decodeValue(n.Content[i+1], e, ik) {
			d.failed[key] = true
			continue
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	if m.Len() == 0 {
		m = reflect.Zero(v.Type())
	}
	v.Set(m)
}

const day = 24 * time.Hour

// decodeDays decodes a duration string of whole days ("30d", "720h") into v, the number of
// days of a key ending in _days, which otherwise takes a whole number.
func (d *decoder) decodeDays(n *yaml.Node, v reflect.Value, key string) bool {
	var dur Duration
	switch err := n.Decode(&dur); {
	case err != nil:
		d.fail(n.Line, key, `must be a number of days (30) or a duration in whole days ("30d"), not %s`, describe(n))
		return false
	case dur%Duration(day) != 0:
		d.fail(n.Line, key, "must be whole days, not %s", dur)
		return false
	}
	v.SetInt(int64(dur / Duration(day)))
	return true
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is YAML's null: "~", "null" or nothing after the colon.
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n is, for messages: "a list", "the string \"x\"", "the number 5".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "the string " + strconv.Quote(n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapKey is the key path of the entry name of the mapping at path: path.name, or
// path["name"] when name is not a plain word.
func mapKey(path, name string) string {
	if isToken(name) {
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

// fieldIndex returns the index of the field of the struct type t whose key is name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if name != "" && yamlKey(t.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

// yamlKey returns the key of a Config field (its yaml tag), or "" for a field that is not one.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}
