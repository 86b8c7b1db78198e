package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"
)

// Setting is one key of a config file and the value to give it.
type Setting struct {
	// Key is a dotted key path, such as "auth.client_id".
	Key   string
	Value string
}

// newFileHeader starts a config file that Merge writes from nothing.
const newFileHeader = `# certagent configuration, written by ` + "`certagent setup`" + `. Every key, with its default, is
# documented in certagent.example.yaml; a key left out takes its default.
`

// Merge returns the contents of a config file (data; empty for a file that does not exist
// yet) with each key of set given its value as a quoted string, adding the key and its
// section where they are missing. Every other key, comment and value is kept. changed reports
// whether anything differs; when nothing does, out is data itself.
func Merge(data []byte, set []Setting) (out []byte, changed bool, err error) {
	utf8Data, err := toUTF8(data)
	if err != nil {
		return nil, false, fmt.Errorf("reading config: %w", err)
	}
	var doc yaml.Node
	if len(bytes.TrimSpace(utf8Data)) > 0 {
		if err := yaml.Unmarshal(utf8Data, &doc); err != nil {
			return nil, false, fmt.Errorf("reading config: %w", err)
		}
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, false, errors.New("reading config: not a single YAML document")
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, false, errors.New("reading config: the top level is not a mapping of keys")
	}
	for _, s := range set {
		c, err := setKey(root, strings.Split(s.Key, "."), s.Value)
		if err != nil {
			return nil, false, fmt.Errorf("setting %s: %w", s.Key, err)
		}
		changed = changed || c
	}
	if !changed {
		return data, false, nil
	}
	var b bytes.Buffer
	if len(bytes.TrimSpace(utf8Data)) == 0 {
		b.WriteString(newFileHeader)
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, false, fmt.Errorf("encoding config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, false, fmt.Errorf("encoding config: %w", err)
	}
	return b.Bytes(), true, nil
}

// setKey sets path to value under the mapping m, creating sections as needed.
func setKey(m *yaml.Node, path []string, value string) (bool, error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Value != path[0] {
			continue
		}
		if len(path) > 1 {
			if v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || v.Value == "") {
				*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			if v.Kind != yaml.MappingNode {
				return false, fmt.Errorf("%s is not a section", path[0])
			}
			return setKey(v, path[1:], value)
		}
		if v.Kind == yaml.ScalarNode && v.Tag != "!!null" && v.Value == value {
			return false, nil
		}
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: yaml.DoubleQuotedStyle,
			LineComment: v.LineComment, HeadComment: v.HeadComment, FootComment: v.FootComment}
		return true, nil
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) > 1 {
		sub := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if _, err := setKey(sub, path[1:], value); err != nil {
			return false, err
		}
		m.Content = append(m.Content, key, sub)
		return true, nil
	}
	m.Content = append(m.Content, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: yaml.DoubleQuotedStyle})
	return true, nil
}

// IsNotExist reports whether err says a config file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
