package config

import "testing"

// TestParseEmptyKey: a key written as "" is unknown, in a section too. (Config's unexported
// fields have no key, and "" must not find them.)
func TestParseEmptyKey(t *testing.T) {
	in := valid + "\"\": x\nlog:\n  \"\": y\n"
	checkErrors(t, in, parseErrors(t, in), []want{
		{6, "", "unknown key", false},
		{8, "log.", "unknown key", false},
	})
}
