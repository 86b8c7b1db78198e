package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/standby"
)

// TestStandbyStorePathIsTheAgents: the standby makes the store where the agent opens it.
func TestStandbyStorePathIsTheAgents(t *testing.T) {
	cfg := config.Default()
	if a, s := agent.StorePath(cfg), standby.StorePath(cfg); a != s {
		t.Errorf("agent.StorePath = %s, standby.StorePath = %s", a, s)
	}
}

// TestServiceUnitCommand: `service unit` prints the unit install would write, for the
// config given, complete or not; a config that cannot be used is refused.
func TestServiceUnitCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the unit is for Linux paths")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "certagent.yaml")
	if err := os.WriteFile(file, []byte("tenant_id: \"\"\nstate_dir: "+filepath.Join(dir, "state")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, "service", "unit", "-c", file)
	if code != 0 {
		t.Fatalf("service unit: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"run --service -c " + file, "ReadWritePaths=-" + filepath.Join(dir, "state"), "Type=notify"} {
		if !strings.Contains(out, want) {
			t.Errorf("unit lacks %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(file, []byte("tenant_id: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCmd(t, "service", "unit", "-c", file); code != 1 || !strings.Contains(errOut, file+":") {
		t.Errorf("service unit with a broken config: exit %d\n%s", code, errOut)
	}
	if _, _, code := runCmd(t, "service"); code != 2 {
		t.Errorf("service without a subcommand: exit %d, want 2", code)
	}
}
