package config

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Required lists the keys that have no default, in the order of the example file. A service
// installed before it is configured names the ones still empty (docs/contract.md, "Service").
var Required = []string{"tenant_id", "auth.client_id", "target.app_id"}

// LoadIncomplete is Load for a service that must run before it is configured (an MSI
// installs it first): a config whose only problems are required keys left empty is returned
// with every default applied, together with those keys (Required, and cloud.authority_host
// and cloud.graph_url for a custom cloud), in file order. Any other problem is an error as
// Load returns it (Errors naming file and line), and so is a file that cannot be read (a
// missing one wraps fs.ErrNotExist).
func LoadIncomplete(path string) (c *Config, missing []string, err error) {
	abs, data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseIncomplete(abs, data)
}

// ParseIncomplete does what LoadIncomplete does with the contents of a file already read (or
// about to be written), as Parse does for Load.
func ParseIncomplete(file string, data []byte) (c *Config, missing []string, err error) {
	c, errs, _ := parse(file, data)
	var other Errors
	for _, e := range errs {
		if e.missing {
			missing = append(missing, e.Key)
		} else {
			other = append(other, e)
		}
	}
	if err := other.err(); err != nil {
		return nil, nil, err
	}
	return c, missing, nil
}

// Initial holds the values a new config file is written from when an installer was given
// them (the MSI's public properties). Empty fields are left out of the file, except the
// required keys, which are written empty so that a person sees where they go.
type Initial struct {
	TenantID    string
	ClientID    string
	TargetAppID string
	// Cloud is cloud.name; AuthorityHost, GraphURL and CAFile the rest of the cloud section.
	Cloud         string
	AuthorityHost string
	GraphURL      string
	CAFile        string
	DropFolder    string
	// Approval is policy.approval.
	Approval string
	// APIListen is api.listen.
	APIListen string
	// WebhookURL is notify.webhook_url.
	WebhookURL string
}

// Empty reports whether v holds no value at all.
func (v Initial) Empty() bool { return v == Initial{} }

// Render returns a config file holding v's values under the header comment (one line each,
// "# " added), in the order of the example file. It does not check the values: parse the
// result to know whether they are valid.
func (v Initial) Render(header string) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	put := func(m *yaml.Node, key, value string, always bool) {
		if value != "" || always {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, str(value))
		}
	}
	section := func(key string, fill func(m *yaml.Node)) {
		m := &yaml.Node{Kind: yaml.MappingNode}
		fill(m)
		if len(m.Content) > 0 {
			doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, m)
		}
	}
	put(doc, "tenant_id", v.TenantID, true)
	section("cloud", func(m *yaml.Node) {
		put(m, "name", v.Cloud, false)
		put(m, "authority_host", v.AuthorityHost, false)
		put(m, "graph_url", v.GraphURL, false)
		put(m, "ca_file", v.CAFile, false)
	})
	section("auth", func(m *yaml.Node) { put(m, "client_id", v.ClientID, true) })
	section("target", func(m *yaml.Node) { put(m, "app_id", v.TargetAppID, true) })
	put(doc, "drop_folder", v.DropFolder, false)
	section("policy", func(m *yaml.Node) { put(m, "approval", v.Approval, false) })
	section("api", func(m *yaml.Node) { put(m, "listen", v.APIListen, false) })
	section("notify", func(m *yaml.Node) { put(m, "webhook_url", v.WebhookURL, false) })

	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return b.Bytes(), nil
}
