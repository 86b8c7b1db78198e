package devenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealistic: Options.Realistic turns on the emulator's realistic mode with the seed
// given, which dev.json and the banner show so a run can be repeated; the agent's own
// credential, registered before the agent starts, signs in at once.
func TestRealistic(t *testing.T) {
	for _, tc := range []struct {
		name      string
		realistic bool
	}{
		{"fast", false},
		{"realistic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := Setup(Options{Dir: dir, APIListen: "127.0.0.1:0", Realistic: tc.realistic, RealisticSeed: 77})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			s := e.Emulator.Settings()
			if s.Realistic() != tc.realistic || (tc.realistic && s.Seed != 77) {
				t.Errorf("emulator settings = %+v, want realistic %v with seed 77", s, tc.realistic)
			}
			banner := e.Banner(dir, "certagent")
			if got := strings.Contains(banner, "--realistic-seed 77"); got != tc.realistic {
				t.Errorf("banner names the seed: %v, want %v:\n%s", got, tc.realistic, banner)
			}
			if err := e.Write(dir); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
			if err != nil {
				t.Fatal(err)
			}
			var info map[string]any
			if err := json.Unmarshal(b, &info); err != nil {
				t.Fatal(err)
			}
			if seed, ok := info["realisticSeed"]; ok != tc.realistic || (ok && seed.(float64) != 77) {
				t.Errorf("dev.json realisticSeed = %v (present %v), want 77 only in realistic mode", seed, ok)
			}
			app, err := e.Emulator.Application(e.Info.AgentAppID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range app.KeyCredentials {
				if k.SignInFrom != nil {
					t.Errorf("agent credential %s signs in only from %v, want at once", k.KeyID, k.SignInFrom)
				}
			}
		})
	}
}
