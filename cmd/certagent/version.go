package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time: go build -ldflags "-X main.version=1.2.3 -X main.commit=abc123".
var (
	version = ""
	commit  = ""
)

// buildInfo returns the version and commit, falling back to what the Go toolchain stamped
// into the binary (module version, VCS revision) when the linker flags were not given.
func buildInfo() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func runVersion(_ context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "version", "version")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	ver, rev := buildInfo()
	fmt.Fprintf(env.stdout, "certagent %s\ncommit %s\n%s %s/%s\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
