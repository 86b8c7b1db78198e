package e2e

import "testing"

// makeSpecialFiles makes nothing on Windows: symlinks need a privilege tests do not have, and
// there are no FIFOs. agent/intake's tests cover reparse points.
func makeSpecialFiles(t *testing.T, dir string) []string { return nil }
