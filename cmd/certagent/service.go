package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/daemon"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/agent/standby"
)

// serviceConfigPath returns the absolute config path for -c, or the OS default.
func serviceConfigPath(flag string) (string, error) {
	if flag == "" {
		flag = config.DefaultPath()
	}
	return filepath.Abs(flag)
}

// loadLenient loads the config at path as a service installed before it is configured
// sees it: a missing file or empty required keys give the defaults (and the keys), any
// other problem is an error naming file and line.
func loadLenient(path string) (cfg *config.Config, missing []string, err error) {
	cfg, missing, err = config.LoadIncomplete(path)
	if errors.Is(err, fs.ErrNotExist) {
		cfg = config.Default()
		cfg.File = path
		return cfg, config.Required, nil
	}
	return cfg, missing, err
}

// runAsService is `certagent run --service`: the agent under the service manager, kept up
// on standby while it cannot run (agent/standby).
func runAsService(ctx context.Context, env *cmdEnv, configFlag string) error {
	path, err := serviceConfigPath(configFlag)
	if err != nil {
		return err
	}
	ver, _ := buildInfo()
	// The log settings are read once, at start: from the config when it can be read, else
	// the defaults.
	logCfg := config.Default().Log
	if cfg, _, err := config.LoadIncomplete(path); err == nil {
		logCfg = cfg.Log
	}
	log, closeLog, err := newServiceLogger(logCfg, env)
	if err != nil {
		return err
	}
	defer closeLog()

	err = daemon.RunService(ctx, func(ctx context.Context, ready func()) error {
		return standby.Run(ctx, standby.Config{
			ConfigFile: path,
			Initial:    initialValues,
			Ready:      ready,
			Version:    ver,
			Logger:     log,
			Start: func(cfg *config.Config, ln net.Listener) (standby.Agent, error) {
				return agent.New(agent.Options{Config: cfg, Logger: log, Version: ver, Listener: ln})
			},
		})
	}, serviceFailed)
	var ce *standby.ConfigError
	if errors.As(err, &ce) {
		// Not restarted by systemd (RestartPreventExitStatus=78); the journal and the Event
		// Log have the error.
		return &exitError{code: daemon.ExitConfig, msg: err.Error()}
	}
	if err != nil {
		log.Error("service failed", "err", err)
	}
	return err
}

// serviceFailed reports whether the service failed, for the Windows service manager: a
// failure stops it with a service-specific exit code, which the recovery actions answer with
// a restart. A config that cannot be used stops the service cleanly (exit code 0): with the
// recovery actions' non-crash flag, any other code would make the service manager restart it
// every minute with the same error. The Event Log names the file and line.
func serviceFailed(err error) bool {
	var ce *standby.ConfigError
	return err != nil && !errors.As(err, &ce)
}

// newServiceLogger builds the service's logger: the service manager's log (the Windows
// Event Log, or the systemd journal), or standard error where there is none, plus log.file
// when set.
func newServiceLogger(lc config.Log, env *cmdEnv) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(lc.Level)); err != nil {
		level = slog.LevelInfo
	}
	var hs []slog.Handler
	var closers []func() error
	sl, closeSL, err := daemon.ServiceLog(level)
	if err != nil {
		// The service runs on; what it logs goes to standard error (and log.file).
		fmt.Fprintf(env.stderr, "certagent: opening the service manager's log: %v\n", err)
	}
	if sl != nil {
		hs, closers = append(hs, sl), append(closers, closeSL)
	} else if runtime.GOOS != "windows" {
		hs = append(hs, textOrJSON(lc.Format, env.stderr, level))
	}
	if lc.File != "" {
		f, err := openLogFile(lc.File)
		if err != nil {
			return nil, nil, err
		}
		hs, closers = append(hs, textOrJSON(lc.Format, f, level)), append(closers, f.Close)
	}
	return slog.New(slog.NewMultiHandler(hs...)), func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

// installFlags are the options of install (and of service unit, which prints what install
// writes on Linux).
type installFlags struct {
	config *string
	user   *string
}

func addInstallFlags(env *cmdEnv, name, synopsis string) (*flag.FlagSet, *installFlags) {
	fs := newFlags(env, name, synopsis)
	f := &installFlags{
		config: fs.String("c", "", "config file the service runs with (default "+config.DefaultPath()+")"),
	}
	if runtime.GOOS == "linux" {
		f.user = fs.String("user", "", "Linux: the account the service runs as (default root; the .deb's unit runs as certagent)")
	}
	return fs, f
}

// spec builds what install registers, from the config (complete or not).
func (f *installFlags) spec() (daemon.Spec, *config.Config, []string, error) {
	path, err := serviceConfigPath(*f.config)
	if err != nil {
		return daemon.Spec{}, nil, nil, err
	}
	cfg, missing, err := loadLenient(path)
	if err != nil {
		return daemon.Spec{}, nil, nil, fmt.Errorf("not installing: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return daemon.Spec{}, nil, nil, err
	}
	s := daemon.Spec{Executable: exe, ConfigFile: path, ReadWritePaths: []string{cfg.StateDir, cfg.DropFolder}}
	if cfg.Log.File != "" {
		s.ReadWritePaths = append(s.ReadWritePaths, filepath.Dir(cfg.Log.File))
	}
	if f.user != nil {
		s.User = *f.user
	}
	return s, cfg, missing, nil
}

// serviceCommands are install, uninstall, start, stop, restart and service.
func serviceCommands() []command {
	return []command{
		{"install", "install (or update) the " + daemon.Name + " service: it runs `certagent run -c FILE`", runInstall},
		{"uninstall", "stop and remove the " + daemon.Name + " service (config and state are kept)", serviceAction("uninstall", (*daemon.Manager).Uninstall)},
		{"start", "start the " + daemon.Name + " service", serviceAction("start", (*daemon.Manager).Start)},
		{"stop", "stop the " + daemon.Name + " service", serviceAction("stop", (*daemon.Manager).Stop)},
		{"restart", "restart the " + daemon.Name + " service", serviceAction("restart", (*daemon.Manager).Restart)},
		{"service", "the installed service: service status [--json] | service unit [-c FILE]", runServiceCmd},
	}
}

func runInstall(_ context.Context, env *cmdEnv, args []string) error {
	fs, f := addInstallFlags(env, "install", "install [-c FILE]")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	s, cfg, missing, err := f.spec()
	if err != nil {
		return err
	}
	if err := prepareFolders(cfg, s.User); err != nil {
		return err
	}
	if err := (&daemon.Manager{}).Install(s); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "install: the %s service runs %s %s, and starts at boot\n", daemon.Name, s.Executable, strings.Join(daemon.Args(s.ConfigFile), " "))
	if len(missing) > 0 {
		fmt.Fprintf(env.stdout, "install: %s does not set %s yet: the service waits on standby until it does (`certagent setup` sets them)\n",
			s.ConfigFile, strings.Join(missing, ", "))
	}
	fmt.Fprintln(env.stdout, "install: start it with `certagent start`")
	return nil
}

// prepareFolders makes the state folder (private to administrators/root and the service) and
// the drop folder, so that the service, which runs with few rights (a virtual account on
// Windows, a read-only file system but these on Linux), finds them writable.
func prepareFolders(cfg *config.Config, user string) error {
	if err := securefile.MkdirAll(cfg.StateDir); err != nil {
		return fmt.Errorf("creating the state folder %s: %w", cfg.StateDir, err)
	}
	if runtime.GOOS == "windows" {
		// The service's account may move what administrators drop: the same private access
		// list as the state folder (SYSTEM, Administrators, NT SERVICE\CertAgent).
		if err := securefile.MkdirAll(cfg.DropFolder); err != nil {
			return fmt.Errorf("creating the drop folder %s: %w", cfg.DropFolder, err)
		}
		return nil
	}
	if err := os.MkdirAll(cfg.DropFolder, 0o750); err != nil {
		return fmt.Errorf("creating the drop folder %s: %w", cfg.DropFolder, err)
	}
	if user != "" && user != "root" {
		return chownToUser(user, cfg.StateDir, cfg.DropFolder)
	}
	return nil
}

func serviceAction(name string, do func(*daemon.Manager) error) func(context.Context, *cmdEnv, []string) error {
	return func(_ context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(env, name, name)
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if err := do(&daemon.Manager{}); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "%s: done\n", name)
		return nil
	}
}

func runServiceCmd(_ context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, "usage: certagent service status [--json] | service unit [-c FILE]")
		return usagef("service needs a subcommand: status or unit")
	}
	switch args[0] {
	case "status":
		fs := newFlags(env, "service status", "service status [--json]")
		asJSON := fs.Bool("json", false, "print JSON")
		if _, err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		st, err := (&daemon.Manager{}).Query()
		if err != nil {
			return err
		}
		return printServiceStatus(env, st, *asJSON)
	case "unit":
		fs, f := addInstallFlags(env, "service unit", "service unit [-c FILE] [--user NAME]")
		if _, err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		s, _, _, err := f.spec()
		if err != nil {
			return err
		}
		fmt.Fprint(env.stdout, daemon.RenderUnit(s))
		return nil
	}
	return usagef("unknown service subcommand %q: want status or unit", args[0])
}

// serviceStatusJSON is `service status --json`.
type serviceStatusJSON struct {
	Name       string   `json:"name"`
	Installed  bool     `json:"installed"`
	State      string   `json:"state"`
	PID        int      `json:"pid,omitempty"`
	StartType  string   `json:"startType,omitempty"`
	Account    string   `json:"account,omitempty"`
	Command    []string `json:"command,omitempty"`
	ConfigFile string   `json:"configFile,omitempty"`
	Definition string   `json:"definition,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

func printServiceStatus(env *cmdEnv, st daemon.Status, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(serviceStatusJSON{
			Name: daemon.Name, Installed: st.State != daemon.NotInstalled, State: string(st.State), PID: st.PID,
			StartType: st.StartType, Account: st.Account, Command: st.Command, ConfigFile: st.ConfigFile,
			Definition: st.Definition, Notes: st.Notes,
		})
	}
	w := func(k, v string) {
		if v != "" {
			fmt.Fprintf(env.stdout, "%-11s %s\n", k, v)
		}
	}
	w("service", daemon.Name+" ("+daemon.DisplayName+")")
	state := string(st.State)
	if st.PID > 0 {
		state += fmt.Sprintf(" (pid %d)", st.PID)
	}
	w("state", state)
	if st.State == daemon.NotInstalled {
		fmt.Fprintln(env.stdout, "Install it with `certagent install -c FILE` (on Windows, the MSI does).")
		return nil
	}
	w("starts", st.StartType)
	w("runs as", st.Account)
	cmd := make([]string, len(st.Command))
	for i, a := range st.Command {
		cmd[i] = a
		if strings.ContainsAny(a, " \t") {
			cmd[i] = `"` + a + `"`
		}
	}
	w("command", strings.Join(cmd, " "))
	w("config", st.ConfigFile)
	w("defined in", st.Definition)
	for _, n := range st.Notes {
		w("note", n)
	}
	return nil
}
