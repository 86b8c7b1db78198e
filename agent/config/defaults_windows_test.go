package config

import "testing"

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

func TestPlatformPathsWindows(t *testing.T) {
	t.Setenv("ProgramData", `E:\PD`)
	if got, want := DefaultPath(), `E:\PD\CertAgent\certagent.yaml`; got != want {
		t.Errorf("DefaultPath() = %q, want %q", got, want)
	}
	if got, want := Default().Auth.KeyFile, `E:\PD\CertAgent\state\agent.key`; got != want {
		t.Errorf("Default().Auth.KeyFile = %q, want %q", got, want)
	}
}
