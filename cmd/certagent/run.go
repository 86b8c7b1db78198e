package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

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
		if err := os.MkdirAll(filepath.Dir(cfg.Log.File), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		f, err := os.OpenFile(cfg.Log.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == config.LogJSON {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h), closeFn, nil
}

func runRun(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "run", "run [-c FILE]")
	configFile := fs.String("c", "", "config file (default "+config.DefaultPath()+")")
	if _, err := parseFlags(fs, args); err != nil {
		return err
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
	run := func(ctx context.Context) error {
		a, err := agent.New(agent.Options{Config: cfg, Logger: log, Version: ver})
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx)
	}
	if !daemon.Interactive() {
		// Started by the service manager: it decides when to stop.
		return daemon.RunService(daemon.Config{ConfigFile: cfg.File, Run: run, Logger: log})
	}
	return run(ctx)
}

// serviceCommands are install, uninstall, start, stop and restart.
func serviceCommands() []command {
	var cs []command
	for _, action := range daemon.Actions {
		cs = append(cs, command{
			name:    action,
			summary: action + " the " + daemon.Name + " service",
			run: func(_ context.Context, env *cmdEnv, args []string) error {
				fs := newFlags(env, action, action+" [-c FILE]")
				configFile := fs.String("c", "", "config file the service runs with (default "+config.DefaultPath()+")")
				if _, err := parseFlags(fs, args); err != nil {
					return err
				}
				c := daemon.Config{ConfigFile: *configFile}
				if action == "install" {
					path := *configFile
					if path == "" {
						path = config.DefaultPath()
					}
					abs, err := filepath.Abs(path)
					if err != nil {
						return err
					}
					// Refuse to install a service that would fail at its first start.
					if _, err := loadConfig(abs); err != nil {
						return fmt.Errorf("not installing: %w", err)
					}
					c.ConfigFile = abs
				}
				if err := daemon.Control(c, action); err != nil {
					return err
				}
				fmt.Fprintf(env.stdout, "%s: done\n", action)
				return nil
			},
		})
	}
	return cs
}
