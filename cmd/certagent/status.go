package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
)

// apiClient builds a client of the running agent's API from its config.
func apiClient(cfg *config.Config) (*client.Client, error) {
	tok, err := client.ReadTokenFile(cfg.API.TokenFile)
	if err != nil {
		return nil, err
	}
	return client.New("http://"+cfg.API.Listen, tok, client.WithActor(actorName()))
}

// notRunning turns an unreachable agent into a message that says what to do.
func notRunning(cfg *config.Config, err error) error {
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Errorf("the agent is not answering on %s (is it running? `certagent start`, or `certagent run -c %s`): %v", cfg.API.Listen, cfg.File, ue.Err)
	}
	return err
}

func runStatus(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "status", "status [-c FILE] [--json]  (exit 0 healthy, 1 a warning or critical problem, 2 agent unreachable)")
	configFile := fs.String("c", "", "config file of the agent to ask (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print the API's status JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	// A service on standby (not configured yet) answers too: its address and token file
	// are in the config's defaults.
	path, err := serviceConfigPath(*configFile)
	if err != nil {
		return err
	}
	cfg, _, err := loadLenient(path)
	if err != nil {
		return err
	}
	c, err := apiClient(cfg)
	if err != nil {
		// No token (an agent that never started) or no right to read it: either way this
		// status cannot reach the agent.
		return &exitError{code: 2, msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := c.Status(ctx)
	if err != nil {
		// Monitoring scripts tell "cannot reach the agent" (2) from "the agent reports a
		// problem" (1).
		return &exitError{code: 2, msg: notRunning(cfg, err).Error()}
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else if err := client.FormatStatus(env.stdout, s, time.Now()); err != nil {
		return err
	}
	for _, p := range s.Problems {
		if p.Severity == apitype.SeverityCritical || p.Severity == apitype.SeverityWarning {
			return &exitError{code: 1}
		}
	}
	return nil
}
