package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

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

// yaml.v3 places a syntax error only in part: a scanner error carries its line, a parser
// error the line before the construct it broke off, and a reader error (a control
// character, invalid UTF-8) or an unknown anchor none. The code here finds the line, for the
// file:line: format of Error.

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
