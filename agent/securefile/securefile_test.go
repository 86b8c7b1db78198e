package securefile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestServiceSID(t *testing.T) {
	// Well-known virtual accounts, as `sc showsid NAME` prints them on any Windows machine.
	tests := []struct{ name, want string }{
		{"TrustedInstaller", "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"},
		{"trustedinstaller", "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"},
	}
	for _, tt := range tests {
		if got := ServiceSID(tt.name); got != tt.want {
			t.Errorf("ServiceSID(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestWriteFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.token")
	if err := WriteFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err != nil {
		t.Errorf("Check after WriteFile: %v", err)
	}
	// Replacing keeps it private and replaces the contents.
	if err := WriteFile(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("contents = %q, want %q", b, "two")
	}
	if err := Check(path); err != nil {
		t.Errorf("Check after second WriteFile: %v", err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}

func TestRestrictRepairsLoosenedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not express Windows access lists; the Windows test loosens the DACL instead")
	}
	path := filepath.Join(t.TempDir(), "agent.key")
	if err := os.WriteFile(path, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err == nil {
		t.Fatal("Check of a 0644 file passed, want an error")
	}
	if err := Restrict(path); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err != nil {
		t.Errorf("Check after Restrict: %v", err)
	}
}

func TestMkdirAllPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Errorf("Check(dir): %v", err)
	}
}
