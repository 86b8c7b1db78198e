// Package daemon installs, controls and runs certagent as an operating-system service: the
// Windows service CertAgent (golang.org/x/sys/windows/svc and svc/mgr) and the systemd unit
// certagent.service on Linux (docs/contract.md, "Service"). The service runs exactly
// `certagent run --service -c FILE`; --service makes certagent talk to the service manager
// (Wine cannot tell a service from a console, so it is never guessed).
//
// What it sets that a generic service library does not: on Windows, automatic delayed start,
// the virtual account NT SERVICE\CertAgent, recovery actions that restart the service after
// 5 s, 10 s and 60 s with the non-crash-failure flag, an updated-in-place service on a second
// install, the Event Log source CertAgent, and STOP_PENDING with wait hints; on Linux, its
// own unit (Type=notify, Restart=on-failure, RestartSec=5, hardening) written under an
// injectable root so that tests need no running systemd. It also provides the log handlers
// for the Windows Event Log and the systemd journal.
package daemon

import (
	"errors"
	"time"
)

// Service identity (docs/contract.md, "Names and places").
const (
	Name        = "CertAgent"
	DisplayName = "Certificate Agent for Microsoft 365 Backup"
	Description = "Adds the backup provider's new certificate to the Entra ID app registration, keeping every existing one, and records each step."
	// UnitName is the systemd unit on Linux.
	UnitName = "certagent.service"
	// Account is the Windows virtual account the service runs as (README, "Installing").
	Account = `NT SERVICE\` + Name
)

// ServiceFlag is the hidden switch of `certagent run` that makes it run under the service
// manager.
const ServiceFlag = "--service"

// ExitConfig is the exit status of `run --service` when its config cannot be used (EX_CONFIG
// of sysexits.h): the systemd unit does not restart on it (RestartPreventExitStatus).
const ExitConfig = 78

// StopTimeout bounds how long a stop waits for the agent to finish the step under way. The
// service manager is told so (Windows: wait hints; systemd: TimeoutStopSec is larger).
const StopTimeout = 20 * time.Second

// Recovery is what the Windows service manager does when the service fails: restart it after
// each of these delays (the last one repeats), counting failures afresh after RecoveryReset
// without one.
var Recovery = []time.Duration{5 * time.Second, 10 * time.Second, 60 * time.Second}

// RecoveryReset is the Windows failure-count reset period.
const RecoveryReset = 24 * time.Hour

// Args returns the service's command line after the executable.
func Args(configFile string) []string { return []string{"run", ServiceFlag, "-c", configFile} }

// Spec is what Install registers.
type Spec struct {
	// Executable is the absolute path of the certagent binary the service runs. Required.
	Executable string
	// ConfigFile is the absolute config file the service runs with. Required.
	ConfigFile string
	// Linux only: User is the account the unit runs as ("" = root), and ReadWritePaths the
	// folders it may write (the state folder, the drop folder, the log file's folder); the
	// rest of the file system is read-only to it.
	User           string
	ReadWritePaths []string
}

func (s Spec) check() error {
	if s.Executable == "" || s.ConfigFile == "" {
		return errors.New("daemon: Spec.Executable and Spec.ConfigFile are required")
	}
	return nil
}

// State is what the service manager says the service is doing.
type State string

// States.
const (
	NotInstalled State = "not installed"
	Stopped      State = "stopped"
	Starting     State = "starting"
	Running      State = "running"
	Stopping     State = "stopping"
	Failed       State = "failed"
	Unknown      State = "unknown"
)

// Status is what `certagent service status` shows.
type Status struct {
	State State
	// PID is the service's process, when it runs.
	PID int
	// Command is the command line the service runs (executable first).
	Command []string
	// ConfigFile is the -c argument of Command.
	ConfigFile string
	// StartType says when it starts ("automatic (delayed)", "enabled"...).
	StartType string
	// Account is who it runs as.
	Account string
	// Definition is where the service is defined (the registry key or the unit file).
	Definition string
	// Notes are details worth saying (a recovery setting that could not be read...).
	Notes []string
}

// ConfigFileOf returns the -c argument of a service command line, or "".
func ConfigFileOf(args []string) string {
	for i, a := range args {
		if a == "-c" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// Manager installs and controls the service of this machine. The zero value is ready to use.
type Manager struct {
	// Root is prepended to the paths the Linux unit is written to and read from ("" = "/"),
	// so that tests install into a folder. With a Root, systemctl is never run and
	// kardianos/service is not asked: the unit is written as it would write it.
	Root string
	// userUnits (Linux, tests) makes the unit kardianos/service's per-user unit
	// ($HOME/.config/systemd/user, systemctl --user), so that a test runs the kardianos path
	// without root, against a stand-in systemctl.
	userUnits bool
}

// ErrNotInstalled is returned when the service is not installed.
var ErrNotInstalled = errors.New("the " + Name + " service is not installed")

// Install registers the service, or updates it in place when it exists (a running service
// keeps running the old command line until it restarts).
func (m *Manager) Install(s Spec) error {
	if err := s.check(); err != nil {
		return err
	}
	return m.install(s)
}

// Uninstall stops the service if it runs and removes it (on Windows, also its Event Log
// source). The config, the state and the drop folder are kept.
func (m *Manager) Uninstall() error { return m.uninstall() }

// Start starts the service and waits until it runs.
func (m *Manager) Start() error { return m.start() }

// Stop stops the service and waits until it has stopped.
func (m *Manager) Stop() error { return m.stop() }

// Restart stops the service (if it runs) and starts it again.
func (m *Manager) Restart() error { return m.restart() }

// Query returns the service's status; State NotInstalled (and no error) when there is none.
func (m *Manager) Query() (Status, error) { return m.query() }
