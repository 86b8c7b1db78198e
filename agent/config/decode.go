package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds a config file; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads the config file at path, decodes it strictly, applies the defaults, resolves
// relative paths against the file's directory and runs Validate. When the file is bad the
// error is Errors, holding every problem found, each with the file, line and key. When the
// file cannot be read the error wraps the os error (errors.Is(err, fs.ErrNotExist) tells a
// missing file). Config.File is the absolute path.
func Load(path string) (*Config, error) {
	abs, data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(abs, data)
}

// Check is Load followed by CheckFiles, for `certagent config check`: it returns every
// problem of both at once, as one Errors in line order. The files are checked even when
// values are wrong (but not after a syntax error), and a key with a wrong value is not
// checked on disk too. The Config is returned only when it has no problem at all.
func Check(path string) (*Config, error) {
	abs, data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, errs, decoded := parse(abs, data)
	if !decoded {
		return nil, errs.err()
	}
	skip := map[string]bool{}
	for _, e := range errs {
		skip[e.Key] = true
	}
	errs = append(errs, c.checkFiles(skip)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// readFile reads the config file at path, up to maxFileSize, and returns its absolute path.
func readFile(path string) (string, []byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("reading config file %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("reading config file: %w", err)
	}
	if len(data) > maxFileSize {
		return "", nil, Errors{{File: abs, Msg: "is larger than 1 MiB, which no certagent config is"}}
	}
	return abs, data, nil
}

// Parse does what Load does with the contents of a file already read. file names the file in
// errors and in Config.File, and its directory is the base of relative paths (the current
// directory when file is "").
func Parse(file string, data []byte) (*Config, error) {
	c, errs, _ := parse(file, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes, applies the defaults and validates. decoded reports whether the file could
// be decoded at all (no syntax error); c is then the Config with every value that decoded,
// and errs its problems.
func parse(file string, data []byte) (c *Config, errs Errors, decoded bool) {
	d := &decoder{file: file, lines: map[string]int{}, failed: map[string]bool{}}
	data, err := toUTF8(data)
	if err != nil {
		return nil, Errors{{File: file, Line: 1, Msg: err.Error()}}, false
	}
	root := d.parse(data)
	if len(d.errs) > 0 {
		return nil, d.errs, false // a syntax error: nothing else can be trusted
	}
	c = base()
	c.File = file
	d.decodeDocument(root, c)
	c.lines = d.lines
	c.normalize()
	d.resolvePaths(c)
	c.applyDefaults()
	return c, append(d.errs, c.validate(d.failed)...), !d.failed[""]
}

// decoder walks a YAML node tree against the Config struct, collecting every problem.
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

// parse decodes data into a YAML node tree. It returns nil for an empty file and reports
// syntax errors and a second document.
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err, data)
	default:
		d.add(extra.Line, "", "a second YAML document starts at this ---; a config file holds one")
	}
	return &doc
}

// toUTF8 converts UTF-16 with a byte order mark (what Windows PowerShell 5.1's Out-File
// writes) to UTF-8, so that line numbers are counted on one encoding. Other input is
// returned as it is.
func toUTF8(data []byte) ([]byte, error) {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	default:
		return data, nil
	}
	data = data[2:]
	if len(data)%2 != 0 {
		return nil, errors.New("the file starts with a UTF-16 byte order mark but is not UTF-16 (odd length)")
	}
	u := make([]uint16, len(data)/2)
	for i := range u {
		u[i] = order.Uint16(data[2*i:])
	}
	return []byte(string(utf16.Decode(u))), nil
}

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

// decodeStruct decodes a mapping into the struct v, whose yaml tags are the allowed keys.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := schemaFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.add(k.Line, path, "a key must be a plain name, not %s", describe(k))
			continue
		}
		name := k.Value
		key := joinKey(path, name)
		if k.ShortTag() == "!!merge" {
			d.add(k.Line, key, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[name]; dup {
			d.add(k.Line, key, "duplicate key (first at line %d)", first)
			continue
		}
		seen[name] = k.Line
		f, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if s := suggest(name, path, v.Type()); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.add(k.Line, key, "%s", msg)
			continue
		}
		d.lines[key] = k.Line
		d.decodeValue(val, v.Field(f), key)
	}
}

var durationType = reflect.TypeFor[Duration]()

// decodeValue decodes n into v, the field of key. A null value (key: or key: ~) keeps the
// default, and so does "" for a string.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, key string) {
	n = deref(n)
	if isNull(n) {
		return
	}
	line := n.Line
	switch {
	case v.Type() == durationType:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(line, key, "%v", err) // Duration.UnmarshalYAML says what is wrong
		}

	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(line, key, "must be a section of keys, not %s", describe(n))
			return
		}
		d.decodeStruct(n, v, key)

	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(line, key, "must be a string, not %s", describe(n))
			return
		}
		if n.Value == "" {
			return // "" keeps the default, as the example file writes it
		}
		v.SetString(n.Value)

	case v.Kind() == reflect.Int:
		d.decodeInt(n, v, key)

	case v.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(line, key, "must be true or false, not %s", describe(n))
			return
		}
		v.SetBool(b)

	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		if n.Kind != yaml.SequenceNode {
			hint := ""
			if n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf("; for one item write [%s]", strconv.Quote(n.Value))
			}
			d.fail(line, key, "must be a list, not %s%s", describe(n), hint)
			return
		}
		var items []string
		for i, item := range n.Content {
			ik := key + "[" + strconv.Itoa(i) + "]"
			item = deref(item)
			d.lines[ik] = item.Line
			if item.Kind != yaml.ScalarNode || isNull(item) {
				d.fail(item.Line, ik, "must be a string, not %s", describe(item))
				d.failed[key] = true
				continue
			}
			items = append(items, item.Value)
		}
		v.Set(reflect.ValueOf(items))

	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			d.fail(line, key, "must be a mapping of names to values, not %s", describe(n))
			return
		}
		m := map[string]string{}
		seen := map[string]int{} // HTTP header names do not care about case
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := deref(n.Content[i]), deref(n.Content[i+1])
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
			if val.Kind != yaml.ScalarNode || isNull(val) {
				d.fail(val.Line, ik, "must be a string, not %s", describe(val))
				d.failed[key] = true
				continue
			}
			m[k.Value] = val.Value
		}
		if len(m) == 0 {
			m = nil
		}
		v.Set(reflect.ValueOf(m))

	default:
		// A Config field of a kind this decoder does not know: a bug, caught by the tests.
		panic(fmt.Sprintf("config: no decoder for %s (%s)", key, v.Type()))
	}
}

const day = 24 * time.Hour

// decodeInt decodes a whole number. A key ending in _days also takes a duration string of
// whole days ("30d", "720h").
func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, key string) {
	line := n.Line
	days := strings.HasSuffix(key, "_days")
	if days && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		dur, err := ParseDuration(n.Value)
		switch {
		case err != nil:
			d.fail(line, key, `must be a number of days (30) or a duration in whole days ("30d"), not %s`, describe(n))
		case dur%day != 0:
			d.fail(line, key, "must be whole days, not %s", Duration(dur))
		default:
			v.SetInt(int64(dur / day))
		}
		return
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(line, key, "must be a whole number, not %s", describe(n))
		return
	}
	var i int64
	if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
		d.fail(line, key, "%s is out of range", n.Value)
		return
	}
	v.SetInt(i)
}

// resolvePaths makes the paths given in the file absolute against the file's directory.
func (d *decoder) resolvePaths(c *Config) {
	dir := "."
	if c.File != "" {
		dir = filepath.Dir(c.File)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		d.add(0, "", "finding the config file's directory: %v", err)
		return
	}
	for _, f := range c.pathFields() {
		p, msg := resolvePath(dir, *f.p)
		if msg != "" {
			d.fail(c.lines[f.key], f.key, "%s", msg)
		}
		*f.p = p
	}
}

// normalize lower-cases the GUIDs, as Entra ID and Graph write them.
func (c *Config) normalize() {
	for _, p := range []*string{&c.TenantID, &c.Auth.ClientID, &c.Target.AppID} {
		if isGUID(*p) {
			*p = strings.ToLower(*p)
		}
	}
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

// schemaFields maps each yaml key of the struct type t to its field index.
func schemaFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

var fieldCache sync.Map // reflect.Type → map[string]int
