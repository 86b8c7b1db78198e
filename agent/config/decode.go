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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

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

var (
	yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parserErrors are the messages of libyaml's parser (as opposed to its scanner), as yaml.v3
// v3.0.1 words them.
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

// lineCount returns the number of lines in data; a final line break ends the last line
// rather than starting one.
func lineCount(data []byte) int { return len(yamlLines(data)) }

// lineContaining returns the first line of data holding s, or 0.
func lineContaining(data []byte, s string) int {
	for i, l := range yamlLines(data) {
		if bytes.Contains(l, []byte(s)) {
			return i + 1
		}
	}
	return 0
}

// syntax reports a YAML syntax error with its line. yaml.v3 leaves the line out of some
// messages: for bytes YAML refuses it is found here, otherwise the problem is on line 1
// (yaml.v3 omits "line 0").
func (d *decoder) syntax(err error, data []byte) {
	msg := err.Error()
	line := 0
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		// yaml.v3 adds one to the 0-based line of scanner errors but not of parser errors
		// (it prints the line before the problem): add it here.
		if parserErrors[msg] {
			line = problemLine(data, msg, line+1)
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
			line = lineContaining(data, "*"+m[1])
		} else {
			line = badByteLine(data)
		}
		if line == 0 {
			line = 1
		}
	}
	// A problem at the end of the file can be placed after its last line.
	if last := lineCount(data); line > last && last > 0 {
		line = last
	}
	if strings.Contains(msg, "cannot start any token") && bytes.Contains(lineOf(data, line), []byte("\t")) {
		msg += " (YAML indentation must be spaces, not tabs)"
	}
	d.add(line, "", "syntax error: %s", msg)
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

// yamlLines splits data into lines as YAML counts them: a line ends at "\r\n", "\r", "\n",
// U+0085, U+2028 or U+2029. A final line break ends the last line rather than starting one.
func yamlLines(data []byte) [][]byte {
	var lines [][]byte
	start := 0
	for _, end := range lineEnds(data) {
		lines = append(lines, bytes.TrimRight(data[start:end], "\r\n\u0085\u2028\u2029"))
		start = end
	}
	return lines
}

// lineEnds returns, for each line of data as yamlLines counts them, the offset just after
// the line and its line break.
func lineEnds(data []byte) []int {
	var ends []int
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == '\r' && i+1 < len(data) && data[i+1] == '\n':
			n = 2
		case r == '\r' || r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029:
		default:
			i += n
			continue
		}
		i += n
		ends = append(ends, i)
	}
	if len(ends) == 0 && len(data) > 0 || len(ends) > 0 && ends[len(ends)-1] < len(data) {
		ends = append(ends, len(data))
	}
	return ends
}

// problemLine narrows down where a parser error is. For a parser error yaml.v3 gives the
// line where the broken construct starts (a mapping, say); the problem is on the first line
// from there on with which the file's beginning stops parsing with the same message. It
// returns from when that line is not found within a reasonable distance.
func problemLine(data []byte, msg string, from int) int {
	if len(data) > 64<<10 {
		return from // each try parses the file again: keep it cheap
	}
	ends := lineEnds(data)
	for k := max(from, 1); k <= len(ends) && k < from+200; k++ {
		var n yaml.Node
		err := yaml.Unmarshal(data[:ends[k-1]], &n)
		if err == nil {
			continue
		}
		if strings.HasSuffix(err.Error(), ": "+msg) || err.Error() == "yaml: "+msg {
			return k
		}
		return from
	}
	return from
}

// badByteLine returns the line of the first byte YAML refuses (invalid UTF-8, a control
// character), or 0 when there is none.
func badByteLine(data []byte) int {
	for i, l := range yamlLines(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))) {
		for len(l) > 0 {
			r, n := utf8.DecodeRune(l)
			switch {
			case r == utf8.RuneError && n <= 1:
				return i + 1
			case r == '\t':
			case r < 0x20 || r == 0x7F || 0x80 <= r && r <= 0x9F || r == 0xFEFF || r == 0xFFFE || r == 0xFFFF:
				return i + 1
			}
			l = l[n:]
		}
	}
	return 0
}

// lineOf returns line n (1-based) of data.
func lineOf(data []byte, n int) []byte {
	lines := yamlLines(data)
	if n < 1 || n > len(lines) {
		return nil
	}
	return lines[n-1]
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
		if dur, ok := d.decodeDuration(n, key); ok {
			v.SetInt(int64(dur))
		}

	case v.Kind() == reflect.Slice && v.Type().Elem() == durationType:
		if n.Kind != yaml.SequenceNode {
			d.fail(line, key, `must be a list of durations such as [30d, 7d], not %s`, describe(n))
			return
		}
		items := []Duration{} // [] is an empty list, not the default
		for i, item := range n.Content {
			ik := key + "[" + strconv.Itoa(i) + "]"
			item = deref(item)
			d.lines[ik] = item.Line
			dur, ok := d.decodeDuration(item, ik)
			if !ok {
				d.failed[key] = true
				continue
			}
			items = append(items, Duration(dur))
		}
		v.Set(reflect.ValueOf(items))

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

// decodeDuration decodes a duration string ("30s", "1d"; a bare 0 too), reporting whether it
// could.
func (d *decoder) decodeDuration(n *yaml.Node, key string) (time.Duration, bool) {
	line := n.Line
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.fail(line, key, `must be a duration such as "30s" or "1d", not %s`, describe(n))
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		if n.Value == "0" {
			return 0, true
		}
		d.fail(line, key, `must be a duration with a unit, such as "%ss" or "%sd", not the number %s`, n.Value, n.Value, n.Value)
		return 0, false
	case "!!str":
	default:
		d.fail(line, key, `must be a duration such as "30s" or "1d", not %s`, describe(n))
		return 0, false
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(line, key, "%v", err)
		return 0, false
	}
	return dur, true
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

// schemaKey is one key of the schema: its full path and whether it is a section.
type schemaKey struct {
	path    string
	section bool
}

// schemaKeys returns the full path of every key of the config file, sections included
// ("cloud", "cloud.name", ...), in the order of the Config struct.
func schemaKeys() []schemaKey {
	var keys []schemaKey
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			key := joinKey(path, name)
			isSection := f.Type.Kind() == reflect.Struct && f.Type != durationType
			keys = append(keys, schemaKey{path: key, section: isSection})
			if isSection {
				walk(f.Type, key)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// suggest returns the key a mistyped name under path was probably meant to be, quoted, or "".
func suggest(name, path string, t reflect.Type) string {
	fields := schemaFields(t)
	siblings := make([]string, 0, len(fields))
	for f := range fields {
		siblings = append(siblings, f)
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
