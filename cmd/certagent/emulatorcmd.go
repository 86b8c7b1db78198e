package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/emulator/provider"
)

func runEmulator(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "emulator", "emulator [--listen ADDR] [--dir DIR] [--seed FILE] [--realistic] [--realistic-seed N] [--provider]")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on (loopback)")
	dir := fs.String("dir", ".certagent-emulator", "folder for the CA and the tenant's state (kept between runs)")
	seedFile := fs.String("seed", "", "YAML file describing the tenant to create (default: a demo tenant); ignored when DIR already holds a tenant")
	realistic := addRealisticFlags(fs)
	withProvider := fs.Bool("provider", false, "also play the backup provider: publish each customer's next certificate with its signature under /provider/, receive the agent's webhook at /provider/webhook (state in DIR/provider)")
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
	if on, seed := realistic.resolve(fs); on {
		opts = append(opts, emulator.WithRealistic(seed))
	}
	var prov *provider.Provider
	if *withProvider {
		var err error
		if prov, err = provider.New(filepath.Join(*dir, "provider")); err != nil {
			return err
		}
		opts = append(opts, emulator.WithProvider(prov))
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
	if s := emu.Settings(); s.Realistic() {
		fmt.Fprintf(env.stdout, "  realistic mode  %s\n                  repeat with --realistic-seed %d\n", s, s.Seed)
	}
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
	if prov != nil {
		fmt.Fprintf(env.stdout, "\nbackup provider:\n  signing key to pin   %s (%s)\n  webhook              %s%s  secret %s\n  publish              curl --cacert %s -X POST -d '{\"customer\":\"<tenant id>\"}' %s%spublish\n  next certificate at  %s%s\n",
			prov.SigningPubPath(), prov.Fingerprint(), emu.URL(), provider.WebhookPath, prov.SecretPath(), emu.CAFile(), emu.URL(), provider.ControlPrefix, emu.URL(), provider.CertificatePath("<tenant id>"))
	}
	fmt.Fprintf(env.stdout, "\ncontrol: curl --cacert %s %s/_emulator/state\nStop with Ctrl-C.\n", emu.CAFile(), emu.URL())
	<-ctx.Done()
	return nil
}

// realisticFlags are the flags of `certagent emulator` and `certagent dev` that turn on the
// emulator's realistic mode (emulator.WithRealistic). --seed is taken by the tenant seed
// file, hence --realistic-seed.
type realisticFlags struct {
	on   *bool
	seed *int64
}

func addRealisticFlags(fs *flag.FlagSet) *realisticFlags {
	return &realisticFlags{
		on:   fs.Bool("realistic", false, "make the emulated tenant as slow and inconsistent as Entra: new keys sign in after 5-20 s, removed ones keep working 5-30 s, reads lag writes by up to 2 s; the random seed is printed"),
		seed: fs.Int64("realistic-seed", 0, "seed of --realistic's random delays, to repeat a run (implies --realistic; default: a fresh seed)"),
	}
}

// resolve reports whether realistic mode is on and its seed: the one given, or a fresh one.
func (r *realisticFlags) resolve(fs *flag.FlagSet) (bool, int64) {
	seedGiven := false
	fs.Visit(func(f *flag.Flag) { seedGiven = seedGiven || f.Name == "realistic-seed" })
	switch {
	case seedGiven:
		return true, *r.seed
	case *r.on:
		return true, rand.Int64N(1 << 31)
	}
	return false, 0
}
