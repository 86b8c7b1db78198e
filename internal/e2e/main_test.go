package e2e

import (
	"os"
	"testing"
)

// TestMain removes the certagent binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}
