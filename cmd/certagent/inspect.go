package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
)

// inspectResult is one line of `inspect --json` (docs/contract.md, "Command line").
type inspectResult struct {
	File        string             `json:"file"`
	Verdict     string             `json:"verdict"`
	Reason      *certs.Reason      `json:"reason,omitempty"`
	Certificate *certs.Certificate `json:"certificate,omitempty"`
}

func runInspect(_ context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "inspect", "inspect FILE... [-c FILE] [--json]")
	configFile := fs.String("c", "", "config file whose policy to apply (default: the built-in default policy)")
	asJSON := fs.Bool("json", false, "print one JSON object per file, one per line")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return usagef("inspect needs at least one file")
	}
	policy := certpolicy.Default()
	if *configFile != "" {
		cfg, err := loadConfig(*configFile)
		if err != nil {
			return err
		}
		if policy, err = policyOf(cfg); err != nil {
			return err
		}
	}
	now := time.Now()
	rejected := 0
	for _, f := range files {
		v := policy.ReadFile(f, now)
		res := inspectResult{File: f, Verdict: "accepted", Certificate: v.Certificate}
		if !v.Accepted {
			res.Verdict, res.Reason = "rejected", v.Reason
			rejected++
		}
		if *asJSON {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "%s\n", b)
			continue
		}
		printInspect(env.stdout, res, now)
	}
	if rejected > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func printInspect(w io.Writer, r inspectResult, now time.Time) {
	if r.Reason != nil {
		fmt.Fprintf(w, "%s: rejected (%s): %s\n", r.File, r.Reason.Code, r.Reason.Message)
	} else {
		fmt.Fprintf(w, "%s: accepted\n", r.File)
	}
	if c := r.Certificate; c != nil {
		fmt.Fprintf(w, "  subject     %s\n", c.Subject)
		fmt.Fprintf(w, "  issuer      %s\n", c.Issuer)
		fmt.Fprintf(w, "  thumbprint  %s\n", c.Thumbprint)
		fmt.Fprintf(w, "  sha256      %s\n", c.SHA256)
		fmt.Fprintf(w, "  serial      %s\n", c.SerialNumber)
		fmt.Fprintf(w, "  valid       %s to %s (%d days left)\n", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), c.DaysLeft(now))
		fmt.Fprintf(w, "  key         %s %d bits\n", c.KeyAlgorithm, c.KeyBits)
	}
}
