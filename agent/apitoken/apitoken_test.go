package apitoken

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/aucloud/certagent/api"
)

func TestMinLenIsTheAPIs(t *testing.T) {
	if MinLen != api.MinTokenLen {
		t.Errorf("MinLen = %d, api.MinTokenLen = %d", MinLen, api.MinTokenLen)
	}
}

// TestLoadOrCreate makes the token once, then returns the same one.
func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "api.token")
	tok, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Errorf("token of %d bytes, want 64 hex digits", len(tok))
	}
	again, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tok, again) {
		t.Error("a second LoadOrCreate made a new token")
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("a 5-byte token was accepted")
	}
}
