package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
)

// The rotation verbs of the command line, for shells without PowerShell: the same calls as
// the CertAgent module, through the API client `status` uses.

const rotationsSynopsis = "rotations [list [--state S] | show ID | approve ID [--note N] | reject ID [--reason R] | confirm ID [--note N] | retry ID [--note N]] [-c FILE] [--json]"

func runRotations(ctx context.Context, env *cmdEnv, args []string) error {
	verb := "list"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		verb, args = args[0], args[1:]
	}
	fs := newFlags(env, "rotations", rotationsSynopsis)
	configFile := fs.String("c", "", "config file of the agent to ask (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	state := fs.String("state", "", "list: only rotations in this state")
	note := fs.String("note", "", "approve, confirm, retry: a note for the history and the audit log")
	reason := fs.String("reason", "", "reject: why, for the history and the audit log")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	needID := verb != "list"
	switch {
	case needID && len(pos) != 1:
		return usagef("rotations %s needs one rotation id", verb)
	case !needID && len(pos) != 0:
		return usagef("rotations list takes no arguments")
	}
	switch verb {
	case "list", "show", "approve", "reject", "confirm", "retry":
	default:
		return usagef("unknown rotations verb %q; want list, show, approve, reject, confirm or retry", verb)
	}
	cfg, c, err := connect(*configFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if verb == "list" {
		rs, err := c.Rotations(ctx, *state)
		if err != nil {
			return notRunning(cfg, err)
		}
		if *asJSON {
			return printJSON(env, apitype.RotationList{Items: rs})
		}
		return client.FormatRotations(env.stdout, rs, time.Now())
	}
	id := pos[0]
	var r apitype.Rotation
	switch verb {
	case "show":
		r, err = c.Rotation(ctx, id)
	case "approve":
		r, err = c.Approve(ctx, id, *note)
	case "reject":
		r, err = c.Reject(ctx, id, *reason)
	case "confirm":
		r, err = c.Confirm(ctx, id, *note)
	case "retry":
		r, err = c.Retry(ctx, id, *note)
	}
	if err != nil {
		return notRunning(cfg, err)
	}
	if *asJSON {
		return printJSON(env, r)
	}
	return client.FormatRotation(env.stdout, r, time.Now())
}

// runSubmit sends certificate files to the running agent, as the drop folder would take
// them; exit 1 when any was refused.
func runSubmit(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "submit", "submit FILE... [-c FILE] [--json]  (FILE.sig, when there, is sent with FILE)")
	configFile := fs.String("c", "", "config file of the agent to send to (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print one JSON object per file")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("submit needs at least one certificate file")
	}
	cfg, c, err := connect(*configFile)
	if err != nil {
		return err
	}
	refused := 0
	for _, f := range files {
		res := submitResult{File: f}
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		// The provider's signature beside it (name.cer.sig) goes with it, as in the drop folder.
		sig, serr := os.ReadFile(f + certpolicy.SignatureSuffix)
		if serr != nil && !errors.Is(serr, iofs.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", f+certpolicy.SignatureSuffix, serr)
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var r apitype.Rotation
		var created bool
		if sig != nil {
			r, created, err = c.SubmitSigned(sctx, data, sig, filepath.Base(f), "")
		} else {
			r, created, err = c.Submit(sctx, data, filepath.Base(f))
		}
		cancel()
		clear(data)
		var pe *client.ProblemError
		switch {
		case err == nil:
			res.Outcome, res.Rotation = "existing", &r
			if created {
				res.Outcome = "created"
			}
		case errors.As(err, &pe) && pe.Status == 422:
			refused++
			res.Outcome = "rejected"
			res.Reason = &certs.Reason{Code: certs.Code(pe.Code), Message: pe.Detail}
			res.Certificate = pe.Certificate
		default:
			return notRunning(cfg, err)
		}
		if *asJSON {
			if err := json.NewEncoder(env.stdout).Encode(res); err != nil {
				return err
			}
			continue
		}
		switch res.Outcome {
		case "rejected":
			fmt.Fprintf(env.stdout, "%s: rejected: %s [%s]\n", f, res.Reason.Message, res.Reason.Code)
		case "created":
			fmt.Fprintf(env.stdout, "%s: rotation %s created (%s)\n", f, r.ID, r.State)
		default:
			fmt.Fprintf(env.stdout, "%s: already known as rotation %s (%s); nothing uploaded again\n", f, r.ID, r.State)
		}
	}
	if refused > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// submitResult is one line of `submit --json`.
type submitResult struct {
	File string `json:"file"`
	// Outcome is "created", "existing" or "rejected".
	Outcome  string            `json:"outcome"`
	Rotation *apitype.Rotation `json:"rotation,omitempty"`
	Reason   *certs.Reason     `json:"reason,omitempty"`
	// Certificate holds a refused certificate's facts, when the file held one.
	Certificate *certs.Certificate `json:"certificate,omitempty"`
}

// connect loads the config and makes an API client of the running agent.
func connect(configFile string) (*config.Config, *client.Client, error) {
	cfg, err := loadConfig(configFile)
	if err != nil {
		return nil, nil, err
	}
	c, err := apiClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, c, nil
}

func printJSON(env *cmdEnv, v any) error {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
