package devenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/emulator"
)

// Unconfigured is the start of `certagent dev --setup`: an emulated tenant that holds only the
// provider's app (the demo's "Veeam Backup for Microsoft 365" with its certificate) and a
// Global Administrator, with device codes approved as that administrator at once, and a
// config that names the emulator and the folders but not the tenant, the agent's app or the
// target: what `certagent setup` fills in. Call Finish once setup has run.
type Unconfigured struct {
	Emulator *emulator.Emulator
	// ConfigFile is the config setup completes.
	ConfigFile string
	// TenantID is the emulated tenant.
	TenantID string
	// Admin is the administrator who approves the device code.
	Admin string
	// APIListener is bound to the API address.
	APIListener net.Listener

	o          Options
	dir        string
	sampleCert string
}

// SetupUnconfigured prepares Dir for `certagent dev --setup`. A Dir already used by `dev
// --setup` keeps its tenant (setup then finds everything in place); one used by plain `dev` is
// refused.
func SetupUnconfigured(o Options) (*Unconfigured, error) {
	if o.Dir == "" {
		return nil, errors.New("devenv: Dir is required")
	}
	if o.APIListen == "" {
		o.APIListen = "127.0.0.1:8471"
	}
	if o.EmulatorListen == "" {
		o.EmulatorListen = "127.0.0.1:0"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	emuDir := filepath.Join(dir, "emulator")
	if err := os.MkdirAll(emuDir, 0o700); err != nil {
		return nil, err
	}
	opts := []emulator.Option{emulator.WithDeviceCodeAutoApprove("")}
	if o.Logger != nil {
		opts = append(opts, emulator.WithLogger(o.Logger))
	}
	if o.Realistic {
		opts = append(opts, emulator.WithRealistic(o.RealisticSeed))
	}
	if _, err := os.Stat(filepath.Join(emuDir, "state.json")); errors.Is(err, os.ErrNotExist) {
		// The demo's provider app and certificates, without the agent's app.
		seed, _, err := emulator.Demo(emuDir, time.Now())
		if err != nil {
			return nil, err
		}
		seed.Applications = seed.Applications[:1]
		seed.Applications[0].Owners = nil
		opts = append(opts, emulator.WithSeed(seed))
	}
	emu, err := emulator.New(emuDir, opts...)
	if err != nil {
		return nil, err
	}
	if _, demo := emu.DemoInfo(); demo {
		return nil, fmt.Errorf("devenv: %s holds the demo tenant of `certagent dev`; use a fresh --dir for --setup", emuDir)
	}
	u := &Unconfigured{Emulator: emu, o: o, dir: dir, sampleCert: filepath.Join(emuDir, emulator.DemoNextProviderFile)}
	ok := false
	defer func() {
		if !ok {
			u.Close()
		}
	}()
	if err := emu.Start(o.EmulatorListen); err != nil {
		return nil, err
	}
	t := emu.State().Tenants[0]
	u.TenantID = t.ID
	for _, usr := range t.Users {
		u.Admin = usr.UserPrincipalName
		break
	}
	ln, err := net.Listen("tcp", o.APIListen)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	u.APIListener = ln
	u.ConfigFile = filepath.Join(dir, "certagent.yaml")
	state := filepath.Join(dir, "state")
	data, err := os.ReadFile(u.ConfigFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	out, changed, err := config.Merge(data, []config.Setting{
		{Key: "cloud.name", Value: config.CloudCustom},
		{Key: "cloud.authority_host", Value: emu.URL() + "/"},
		{Key: "cloud.graph_url", Value: emu.URL()},
		{Key: "cloud.ca_file", Value: emu.CAFile()},
		{Key: "state_dir", Value: state},
		{Key: "drop_folder", Value: filepath.Join(dir, "drop")},
		{Key: "auth.certificate_file", Value: filepath.Join(state, "agent.pem")},
		{Key: "auth.key_file", Value: filepath.Join(state, "agent.key")},
		{Key: "api.token_file", Value: filepath.Join(state, "api.token")},
		{Key: "api.listen", Value: ln.Addr().String()},
	})
	if err != nil {
		return nil, err
	}
	if changed {
		if err := os.WriteFile(u.ConfigFile, out, 0o600); err != nil {
			return nil, err
		}
	}
	ok = true
	return u, nil
}

// Finish loads the config setup completed and returns the environment the agent runs in.
func (u *Unconfigured) Finish() (*Env, error) {
	cfg, err := config.Load(u.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("devenv: the config setup wrote: %w", err)
	}
	if u.o.Edit != nil {
		u.o.Edit(cfg)
	}
	env := &Env{Emulator: u.Emulator, Config: cfg, APIListener: u.APIListener}
	env.Info = Info{
		APIURL:            "http://" + u.APIListener.Addr().String(),
		TokenFile:         cfg.API.TokenFile,
		DropFolder:        cfg.DropFolder,
		EmulatorURL:       u.Emulator.URL(),
		EmulatorCAFile:    u.Emulator.CAFile(),
		TenantID:          cfg.TenantID,
		TargetAppID:       cfg.Target.AppID,
		ConfigFile:        cfg.File,
		AgentAppID:        cfg.Auth.ClientID,
		SampleCertificate: u.sampleCert,
		StateDir:          cfg.StateDir,
		PID:               os.Getpid(),
	}
	if u.o.Realistic {
		seed := u.o.RealisticSeed
		env.Info.RealisticSeed = &seed
	}
	return env, nil
}

// Close stops the emulator and releases the API address (before Finish; after it, Env.Close
// does).
func (u *Unconfigured) Close() error {
	if u.APIListener != nil {
		u.APIListener.Close()
	}
	return u.Emulator.Close()
}
