package standby

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aucloud/certagent/agent/config"
)

// watcher tells whether the files that decide what the service runs changed: the config
// file, by content (an editor that only touches it changes nothing), and on standby the
// agent's credential files, by size and time (`certagent credential init` makes them).
type watcher struct {
	config string
	stat   []string
	last   string
}

// newWatcher starts watching the config file, and on standby (credential) the credential
// files of cfg. seen is the fingerprint from before the config was read (see look), so that
// nothing that changes while it is read, or while the agent tries to start, is missed.
func newWatcher(path, seen string, cfg *config.Config, credential bool) *watcher {
	w := &watcher{config: path}
	if credential {
		w.stat = credentialFiles(cfg)
	}
	w.last = seen
	if !credential {
		w.last, _, _ = strings.Cut(seen, "|")
	}
	return w
}

// credentialFiles are the files whose appearance may let a failed start succeed.
func credentialFiles(cfg *config.Config) []string {
	return []string{cfg.Auth.CertificateFile, cfg.Auth.KeyFile}
}

// changed reports whether the files changed since the last call (or since the watcher was
// made).
func (w *watcher) changed() bool {
	fp := w.fingerprint()
	if fp == w.last {
		return false
	}
	w.last = fp
	return true
}

func (w *watcher) fingerprint() string { return contentHash(w.config) + w.statPart() }

func (w *watcher) statPart() string {
	var b strings.Builder
	for _, p := range w.stat {
		if fi, err := os.Stat(p); err != nil {
			fmt.Fprintf(&b, "|%s absent", p)
		} else {
			fmt.Fprintf(&b, "|%s %d %d", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// contentHash returns the SHA-256 of the file's first MiB (a config is a few KiB), or what
// kept it from being read.
func contentHash(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "error " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 1<<20)); err != nil {
		return "error " + err.Error()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
