package config

import (
	"testing"

	"golang.org/x/sys/windows"
)

// TestResolvePathWindows covers the Windows path forms that have no Unix counterpart.
func TestResolvePathWindows(t *testing.T) {
	const base = `C:\ProgramData\CertAgent`
	tests := []struct {
		in, want string
		problem  bool
	}{
		{`state`, `C:\ProgramData\CertAgent\state`, false},
		{`..\drop`, `C:\ProgramData\drop`, false},
		{`D:\drop`, `D:\drop`, false},
		{`d:/drop/`, `d:\drop`, false},
		{`\\server\share\drop`, `\\server\share\drop`, false},
		{`\drop`, `C:\drop`, false}, // rooted: on the config file's drive
		{`/drop`, `C:\drop`, false},
		{`D:drop`, `D:drop`, true}, // relative to drive D's current directory
	}
	for _, tt := range tests {
		got, msg := resolvePath(base, tt.in)
		if got != tt.want || (msg != "") != tt.problem {
			t.Errorf("resolvePath(%q, %q) = %q, %q, want %q (problem %v)", base, tt.in, got, msg, tt.want, tt.problem)
		}
	}
}

// TestPlatformPathsWindows: the defaults are under the ProgramData known folder, whatever
// the environment says (a service's can lack it or, under Wine, point elsewhere).
func TestPlatformPathsWindows(t *testing.T) {
	pd, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ProgramData", `E:\PD`)
	if got, want := DefaultPath(), pd+`\CertAgent\certagent.yaml`; got != want {
		t.Errorf("DefaultPath() = %q, want %q", got, want)
	}
	if got, want := Default().Auth.KeyFile, pd+`\CertAgent\state\agent.key`; got != want {
		t.Errorf("Default().Auth.KeyFile = %q, want %q", got, want)
	}
	if got, want := windowsPaths(func(string) string { return `E:\PD` }).configFile, `E:\PD\CertAgent\certagent.yaml`; got != want {
		t.Errorf("windowsPaths(E:\\PD).configFile = %q, want %q", got, want)
	}
}
