package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxTokenFileSize bounds what ReadTokenFile reads: a token is a few dozen bytes.
const maxTokenFileSize = 4096

// ReadTokenFile reads the API token from the agent's token file, with surrounding
// whitespace trimmed. Its errors tell a person what to do: the file is created by the agent
// when it starts, and only administrators/root and the service may read it. Errors wrap the
// file system's (errors.Is(err, fs.ErrNotExist) and fs.ErrPermission work).
func ReadTokenFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("cannot read the API token file %s: it does not exist: the agent creates it when it starts; "+
				"start the agent, or pass -c FILE with the config of the agent you mean: %w", path, err)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("cannot read the API token file %s: permission denied: run as administrator/root, "+
				"or pass -c FILE with the config of an agent whose token file you may read: %w", path, err)
		}
		return nil, fmt.Errorf("cannot read the API token file %s: run as administrator/root, or pass -c FILE with the agent's config: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the API token file %s: %w", path, err)
	}
	if len(data) > maxTokenFileSize {
		return nil, fmt.Errorf("the API token file %s is larger than %d bytes: it is not a token file", path, maxTokenFileSize)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("the API token file %s is empty: restart the agent to create a new token", path)
	}
	return tok, nil
}
