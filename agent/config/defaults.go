package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aucloud/certagent/agent/provenance"
)

// osPaths are the default locations on one operating system (docs/contract.md, "Names and places").
type osPaths struct {
	configFile string
	stateDir   string
	dropFolder string
}

// DefaultPath returns the OS's default config file: %ProgramData%\CertAgent\certagent.yaml on
// Windows, /etc/certagent/certagent.yaml elsewhere.
func DefaultPath() string { return platformPaths().configFile }

// unixPaths are the defaults everywhere but Windows.
var unixPaths = osPaths{
	configFile: "/etc/certagent/certagent.yaml",
	stateDir:   "/var/lib/certagent",
	dropFolder: "/var/lib/certagent/drop",
}

// windowsPaths returns the Windows defaults under %ProgramData%, read with getenv. It falls
// back to C:\ProgramData when the variable is unset or not an absolute path (a service's
// environment can be thin). The logic is pure string work with Windows separators, so it is
// here, unsuffixed, and tested on every OS; defaults_windows.go calls it with os.Getenv.
func windowsPaths(getenv func(string) string) osPaths {
	pd := strings.TrimRight(getenv("ProgramData"), `\/`)
	if !isWindowsAbs(pd + `\`) {
		pd = `C:\ProgramData`
	}
	root := pd + `\CertAgent`
	return osPaths{
		configFile: root + `\certagent.yaml`,
		stateDir:   root + `\state`,
		dropFolder: root + `\drop`,
	}
}

// isWindowsAbs reports whether p is an absolute Windows path: a drive letter, a colon and a
// separator (C:\x), or a UNC path (\\server\share).
func isWindowsAbs(p string) bool {
	if len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') {
		c := p[0] | 0x20 // lower case
		return 'a' <= c && c <= 'z'
	}
	return len(p) >= 3 && (p[0] == '\\' || p[0] == '/') && (p[1] == '\\' || p[1] == '/') && p[2] != '\\' && p[2] != '/'
}

// applyDefaults fills the paths left empty: the state directory and drop folder of the OS,
// and the files that live in the state directory.
func (c *Config) applyDefaults() {
	def := platformPaths()
	if c.StateDir == "" {
		c.StateDir = def.stateDir
	}
	if c.DropFolder == "" {
		c.DropFolder = def.dropFolder
	}
	if c.Auth.CertificateFile == "" {
		c.Auth.CertificateFile = filepath.Join(c.StateDir, "agent.pem")
	}
	if c.Auth.KeyFile == "" {
		c.Auth.KeyFile = filepath.Join(c.StateDir, "agent.key")
	}
	if c.API.TokenFile == "" {
		c.API.TokenFile = filepath.Join(c.StateDir, "api.token")
	}
}

// pathFields lists the keys that hold paths, with a pointer to each value.
func (c *Config) pathFields() []struct {
	key string
	p   *string
} {
	return []struct {
		key string
		p   *string
	}{
		{"cloud.ca_file", &c.Cloud.CAFile},
		{"auth.certificate_file", &c.Auth.CertificateFile},
		{"auth.key_file", &c.Auth.KeyFile},
		{"drop_folder", &c.DropFolder},
		{"api.token_file", &c.API.TokenFile},
		{"state_dir", &c.StateDir},
		{"log.file", &c.Log.File},
		{"notify.secret_file", &c.Notify.SecretFile},
	}
}

// listPathFields lists the paths inside lists and targets: the key files of provenance.keys
// (not the PEM written in place) and each target's source.ca_file.
func (c *Config) listPathFields() []struct {
	key string
	p   *string
} {
	var out []struct {
		key string
		p   *string
	}
	keys := func(prefix string, p *Provenance) {
		for i := range p.Keys {
			if !provenance.IsInline(p.Keys[i]) && strings.TrimSpace(p.Keys[i]) != "" {
				out = append(out, struct {
					key string
					p   *string
				}{fmt.Sprintf("%sprovenance.keys[%d]", prefix, i), &p.Keys[i]})
			}
		}
	}
	target := func(prefix string, t *Target) {
		keys(prefix, &t.Provenance)
		out = append(out, struct {
			key string
			p   *string
		}{prefix + "source.ca_file", &t.Source.CAFile})
	}
	keys("", &c.Provenance)
	target("target.", &c.Target)
	for i := range c.Targets {
		target(fmt.Sprintf("targets[%d].", i), &c.Targets[i])
	}
	return out
}

// resolvePath makes p absolute against dir, the config file's directory (itself absolute).
// It returns a message when p cannot be resolved.
func resolvePath(dir, p string) (string, string) {
	if p == "" {
		return "", ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p), ""
	}
	// Windows only (VolumeName is always "" elsewhere): "C:x" is relative to the current
	// directory of drive C, which a service does not control.
	if filepath.VolumeName(p) != "" {
		return p, `is relative to a drive's current directory; write it in full, e.g. C:\path`
	}
	// Windows only: "\x" is rooted but has no drive; it means that path on the config
	// file's drive. Elsewhere a path starting with a separator is absolute and returned above.
	if p[0] == '\\' || p[0] == '/' {
		return filepath.Clean(filepath.VolumeName(dir) + p), ""
	}
	return filepath.Join(dir, p), ""
}
