package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/daemon"
)

// loadConfig loads and validates the config at path, or at the OS default when path is "".
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = config.DefaultPath()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func policyOf(cfg *config.Config) (certpolicy.Policy, error) {
	p, _, err := agent.PolicyFrom(cfg)
	return p, err
}

// newLogger builds the agent's logger from the log section: level, text or JSON, standard
// error or a file (appended, created private to the service's account and administrators).
func newLogger(cfg *config.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	w, closeFn := stderr, func() {}
	if cfg.Log.File != "" {
		f, err := openLogFile(cfg.Log.File)
		if err != nil {
			return nil, nil, err
		}
		w, closeFn = f, func() { f.Close() }
	}
	return slog.New(textOrJSON(cfg.Log.Format, w, level)), closeFn, nil
}

// openLogFile opens log.file for appending, making its folder when missing.
func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}
	return f, nil
}

// textOrJSON is slog's text or JSON handler, as log.format says.
func textOrJSON(format string, w io.Writer, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func runRun(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "run", "run [-c FILE]")
	configFile := fs.String("c", "", "config file (default "+config.DefaultPath()+")")
	// Hidden: what the service runs (docs/contract.md, "Service"). It talks to the service
	// manager, which Wine cannot be asked about, so it is never guessed.
	asService := fs.Bool(strings.TrimPrefix(daemon.ServiceFlag, "--"), false, "")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: certagent run [-c FILE]")
		fmt.Fprintln(env.stderr, "  -c string\n    \tconfig file (default "+config.DefaultPath()+")")
	}
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *asService {
		return runAsService(ctx, env, *configFile)
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg, env.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	ver, _ := buildInfo()
	a, err := agent.New(agent.Options{Config: cfg, Logger: log, Version: ver})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
