package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aucloud/certagent/emulator"
)

func runEmulator(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "emulator", "emulator [--listen ADDR] [--dir DIR] [--seed FILE]")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on (loopback)")
	dir := fs.String("dir", ".certagent-emulator", "folder for the CA and the tenant's state (kept between runs)")
	seedFile := fs.String("seed", "", "YAML file describing the tenant to create (default: a demo tenant); ignored when DIR already holds a tenant")
	verbose := fs.Bool("v", false, "log every request")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := []emulator.Option{emulator.WithLogger(consoleLogger(env, *verbose))}
	if *seedFile != "" {
		seed, err := emulator.LoadSeed(*seedFile)
		if err != nil {
			return err
		}
		opts = append(opts, emulator.WithSeed(seed))
	}
	emu, err := emulator.New(*dir, opts...)
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := emu.Start(*listen); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(env.stdout, "emulated Entra ID tenant and Microsoft Graph at %s\n  CA certificate  %s\n  state           %s\n", emu.URL(), emu.CAFile(), abs)
	for _, t := range emu.State().Tenants {
		fmt.Fprintf(env.stdout, "  tenant          %s (%s)\n", t.ID, t.Domain)
		for _, a := range t.Applications {
			fmt.Fprintf(env.stdout, "    app %-36s %q, %d certificate(s), roles %v\n", a.AppID, a.DisplayName, len(a.KeyCredentials), a.Roles)
		}
	}
	if d, ok := emu.DemoInfo(); ok {
		fmt.Fprintf(env.stdout, "\ndemo tenant:\n  agent app %s signs in with %s\n  target app %s holds a provider certificate expiring %s\n  next provider certificate to drop: %s\n",
			d.AgentAppID, d.AgentCredentialFile, d.TargetAppID, d.ProviderNotAfter.Format("2006-01-02"), d.NextProviderCertFile)
	}
	fmt.Fprintf(env.stdout, "\ncontrol: curl --cacert %s %s/_emulator/state\nStop with Ctrl-C.\n", emu.CAFile(), emu.URL())
	<-ctx.Done()
	return nil
}
