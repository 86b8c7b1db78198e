package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDeps keeps test code out of the shipped binary: the binary's dependency list must not
// hold the testing packages or any of the project's test helpers, for either OS.
func TestDeps(t *testing.T) {
	needGo(t)
	for _, goos := range []string{"linux", "windows"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".")
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := strings.Fields(string(out))
			for _, d := range deps {
				switch {
				case d == "testing", d == "net/http/httptest", strings.HasPrefix(d, "testing/"):
					t.Errorf("the certagent binary (%s) depends on %s", goos, d)
				case strings.HasSuffix(d, "test") && strings.HasPrefix(d, "github.com/aucloud/certagent/"):
					t.Errorf("the certagent binary (%s) depends on test helper %s", goos, d)
				}
			}
			// msgraph-sdk-go must reach the binary only through agent/graph.
			if !slices.Contains(deps, "github.com/aucloud/certagent/agent/graph") {
				t.Errorf("the binary (%s) does not include agent/graph", goos)
			}
		})
	}
}

// TestHeavyImportsConfined holds each heavy third-party module to the one package that may
// import it (docs/architecture.md): upgrades stay local, and msgraph's build cost stays in agent/graph.
func TestHeavyImportsConfined(t *testing.T) {
	needGo(t)
	owners := map[string]string{
		"github.com/microsoftgraph/":          "github.com/aucloud/certagent/agent/graph",
		"github.com/Azure/azure-sdk-for-go/":  "github.com/aucloud/certagent/agent/graph",
		"github.com/labstack/echo/":           "github.com/aucloud/certagent/api",
		"github.com/fsnotify/fsnotify":        "github.com/aucloud/certagent/agent/intake",
		"github.com/prometheus/client_golang": "github.com/aucloud/certagent/agent/metrics",
		"go.etcd.io/bbolt":                    "github.com/aucloud/certagent/agent/store",
	}
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/aucloud/certagent/...")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			pkg, imports := f[0], f[1:]
			for _, imp := range imports {
				for prefix, owner := range owners {
					if strings.HasPrefix(imp, prefix) && pkg != owner {
						t.Errorf("%s (GOOS=%s) imports %s; only %s may", pkg, goos, imp, owner)
					}
				}
			}
		}
	}
}

// needGo skips a test that asks the go tool, where there is none (the Windows tests under
// Wine run a test binary without a Go toolchain).
func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool:", err)
	}
}
