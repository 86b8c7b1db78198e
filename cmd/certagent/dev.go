package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/internal/devenv"
)

func runDev(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "dev", "dev [--dir DIR] [--listen ADDR] [--realistic] [--realistic-seed N] [--setup] [--provider]")
	dir := fs.String("dir", ".certagent-dev", "folder for the emulated tenant, the agent's state, config and drop folder (kept between runs)")
	listen := fs.String("listen", "127.0.0.1:8471", "the agent API's address (a free port is used when it is taken)")
	realistic := addRealisticFlags(fs)
	setup := fs.Bool("setup", false, "start from a tenant that holds only the provider's app and an administrator, and run `certagent setup` on it (device code approved at once); use a --dir of its own")
	withProvider := fs.Bool("provider", false, "the emulator plays the backup provider too, and the agent is set for a year with nobody in it: the provider publishes a new signed certificate, the agent fetches, checks, applies and proves it, and the provider's webhook receiver confirms it; the story is printed as it happens")
	verbose := fs.Bool("v", false, "debug logging")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	log := consoleLogger(env, *verbose)
	on, seed := realistic.resolve(fs)
	opts := devenv.Options{Dir: *dir, APIListen: *listen, Logger: log, Realistic: on, RealisticSeed: seed, Provider: *withProvider}
	var e *devenv.Env
	var err error
	if *setup && *withProvider {
		return usagef("--setup and --provider go separately")
	}
	if *setup {
		e, err = devSetup(ctx, env, opts)
	} else {
		e, err = devenv.Setup(opts)
	}
	if err != nil {
		return err
	}
	defer e.Close()
	ver, _ := buildInfo()
	a, err := agent.New(agent.Options{Config: e.Config, Logger: log, Version: ver, Listener: e.APIListener})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := e.Write(*dir); err != nil {
		return err
	}
	fmt.Fprint(env.stdout, e.Banner(*dir, os.Args[0]))
	if e.Provider == nil {
		return a.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	told := make(chan struct{})
	go func() {
		defer close(told)
		narrateYear(ctx, env.stdout, e)
	}()
	err = a.Run(ctx)
	cancel()
	<-told
	return err
}

// devSetup prepares an unconfigured tenant and runs `certagent setup` on it, as an
// administrator whose device code the emulator approves at once.
func devSetup(ctx context.Context, env *cmdEnv, o devenv.Options) (*devenv.Env, error) {
	u, err := devenv.SetupUnconfigured(o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.stdout, "certagent dev --setup: an emulated tenant with only the provider's app; the emulator approves device codes as %s.\n\n", u.Admin)
	if err := runSetup(ctx, env, []string{"-c", u.ConfigFile, "--tenant", u.TenantID, "--yes"}); err != nil {
		u.Close()
		return nil, err
	}
	fmt.Fprintln(env.stdout)
	e, err := u.Finish()
	if err != nil {
		u.Close()
		return nil, err
	}
	return e, nil
}

// consoleLogger is the text log of the interactive commands (dev, emulator): info, or debug
// with -v.
func consoleLogger(env *cmdEnv, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
}
