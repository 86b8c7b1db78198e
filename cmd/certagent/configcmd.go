package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aucloud/certagent/agent/config"
)

func runConfig(_ context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(env.stderr, "usage: certagent config check [-c FILE]")
		return usagef("config needs a subcommand: check")
	}
	fs := newFlags(env, "config check", "config check [-c FILE]")
	configFile := fs.String("c", "", "config file (default "+config.DefaultPath()+")")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	path := *configFile
	if path == "" {
		path = config.DefaultPath()
	}
	cfg, err := config.Check(path)
	if err == nil {
		if _, perr := policyOf(cfg); perr != nil {
			err = perr
		}
	}
	if err == nil {
		fmt.Fprintf(env.stdout, "%s: OK\n", path)
		return nil
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(env.stdout, e.Error())
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d problem(s)", path, len(errs))}
	}
	return err
}
