// Package apitoken keeps the local API's bearer token: a random secret in a file readable
// only by administrators/root and the service (agent/securefile), made at the first start.
// The agent and the service's standby mode serve the API with the same token.
package apitoken

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aucloud/certagent/agent/securefile"
)

// MinLen is the shortest token accepted, api.MinTokenLen (a test holds them together).
const MinLen = 16

// LoadOrCreate returns the API bearer token from path, creating it on first start: 32
// random bytes as hex, readable only by administrators/root and the service. A token file
// whose permissions were loosened is repaired.
func LoadOrCreate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, err
		}
		tok := []byte(hex.EncodeToString(raw[:]))
		// Only a missing folder is created (private); an existing one is left as it is.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the API token's folder: %w", err)
		}
		if err := securefile.WriteFile(path, append(tok, '\n')); err != nil {
			return nil, fmt.Errorf("creating the API token file: %w", err)
		}
		return tok, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the API token file %s (api.token_file): %w; remove whatever is at that path and start again: the agent creates the token", path, err)
	}
	if err := securefile.Check(path); err != nil {
		if rerr := securefile.Restrict(path); rerr != nil {
			return nil, fmt.Errorf("the API token file is not private (%v) and could not be repaired: %w", err, rerr)
		}
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < MinLen {
		return nil, fmt.Errorf("the API token file %s holds %d bytes; delete it and restart to make a new one", path, len(tok))
	}
	return tok, nil
}
