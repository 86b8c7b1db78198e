package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/api/client"
)

// actorName names the person running a command, for the agent's audit log.
func actorName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "cli"
}

func runCredential(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, "usage: certagent credential init|show|rotate [-c FILE]")
		return usagef("credential needs a subcommand: init, show or rotate")
	}
	sub := args[0]
	fs := newFlags(env, "credential "+sub, "credential "+sub+" [-c FILE] [--json]")
	configFile := fs.String("c", "", "config file (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args[1:]); err != nil {
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
	switch sub {
	case "init":
		return credentialInit(env, cfg, *asJSON)
	case "show":
		return credentialShow(ctx, env, cfg, *asJSON)
	case "rotate":
		c, err := apiClient(cfg)
		if err != nil {
			return err
		}
		acc, err := c.RotateCredential(ctx)
		if err != nil {
			return notRunning(cfg, err)
		}
		fmt.Fprintln(env.stdout, acc.Message)
		fmt.Fprintln(env.stdout, "Follow it with `certagent credential show` or the audit log.")
		return nil
	}
	return usagef("unknown credential subcommand %q (init, show, rotate)", sub)
}

// credentialInit creates the agent's key pair and certificate once, and tells the admin
// what to register.
func credentialInit(env *cmdEnv, cfg *config.Config, asJSON bool) error {
	files := agent.CredentialFiles(cfg)
	host, _ := os.Hostname()
	c, created, err := credential.Init(files, credential.Options{
		CommonName: "certagent " + host, Bits: cfg.Auth.KeyBits, Validity: cfg.Auth.Validity.Duration(),
	})
	if err != nil {
		return err
	}
	f := c.Facts()
	if asJSON {
		return json.NewEncoder(env.stdout).Encode(map[string]any{"created": created, "certificateFile": files.Cert, "certificate": f})
	}
	verb := "exists"
	if created {
		verb = "created"
	}
	fmt.Fprintf(env.stdout, "agent credential %s\n  certificate  %s\n  key          %s (private; never leaves this machine)\n  thumbprint   %s\n  valid until  %s\n\n",
		verb, files.Cert, files.Key, f.Thumbprint, f.NotAfter.Format(time.DateOnly))
	app := "the agent's app"
	if cfg.Auth.ClientID != "" {
		app += " (" + cfg.Auth.ClientID + ")"
	}
	fmt.Fprintf(env.stdout, "One-time step: `certagent setup` uploads it; or, in the Azure portal, open App registrations > %s >\n"+
		"Certificates & secrets > Certificates > Upload certificate, and upload %s.\n"+
		"From then on the agent renews this credential itself.\n", app, files.Cert)
	return nil
}

// credentialShow asks the running agent, or reads the files when it does not run.
func credentialShow(ctx context.Context, env *cmdEnv, cfg *config.Config, asJSON bool) error {
	if c, err := apiClient(cfg); err == nil {
		if cr, err := c.Credential(ctx); err == nil {
			if asJSON {
				return json.NewEncoder(env.stdout).Encode(cr)
			}
			fmt.Fprintf(env.stdout, "agent credential (from the running agent)\n  method        %s\n  client id     %s\n  thumbprint    %s\n  subject       %s\n  valid         %s to %s (%d days left)\n  next renewal  %s\n",
				cr.Method, cr.ClientID, cr.Thumbprint, cr.Subject, cr.NotBefore.Format(time.DateOnly), cr.NotAfter.Format(time.DateOnly), cr.DaysRemaining, cr.NextRenewal.Format(time.DateOnly))
			return nil
		} else if !isUnreachable(err) {
			return err
		}
	}
	c, err := credential.Load(agent.CredentialFiles(cfg))
	if err != nil {
		return err
	}
	f := c.Facts()
	if asJSON {
		return json.NewEncoder(env.stdout).Encode(f)
	}
	fmt.Fprintf(env.stdout, "agent credential (from %s; the agent is not running)\n  thumbprint  %s\n  subject     %s\n  valid       %s to %s (%d days left)\n",
		cfg.Auth.CertificateFile, f.Thumbprint, f.Subject, f.NotBefore.Format(time.DateOnly), f.NotAfter.Format(time.DateOnly), certs.DaysBetween(time.Now(), f.NotAfter))
	return nil
}

func isUnreachable(err error) bool {
	var ue *client.UnreachableError
	return errors.As(err, &ue)
}
