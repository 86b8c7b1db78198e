// Package daemon installs, controls and runs certagent as an operating-system service with
// github.com/kardianos/service: the Windows service CertAgent and the systemd unit
// certagent.service on Linux (docs/contract.md, "Service"). The service runs exactly
// `certagent run --service -c FILE`; --service makes certagent talk to the service manager
// (Wine cannot tell a service from a console, so it is never guessed).
//
// kardianos/service defines the service (service.Config) and does the work common to both:
// it runs the agent (Start and Stop of a service.Interface, under the Windows service
// manager through its handler, under systemd through its Run), creates and removes the
// Windows service and its Event Log source, writes, enables and removes the unit, and
// starts, stops and restarts the service.
//
// What it cannot do is done here. On Windows, with golang.org/x/sys: delayed automatic
// start, the unrestricted service SID, the three recovery actions with the
// non-crash-failure flag, error control normal, updating an installed service in place,
// waiting for a start and bounding a stop, progress (wait hints, checkpoints) while starting
// and stopping, ending the service when the agent ends by itself (with kardianos's exit code
// when it failed, which the recovery actions answer), and the status (PID, account, command
// line, recovery actions, without elevation). On Linux: the unit's text (RenderUnit, handed
// to kardianos as its SystemdScript: Type=notify, Restart=on-failure, RestartSec=5,
// RestartPreventExitStatus=78, hardening, ReadWritePaths), updating it in place, installing
// where systemd does not run (a container, a chroot, Manager.Root for the tests), READY=1
// and STOPPING=1, and the status. run_windows.go, service_windows.go and systemd_linux.go
// tell each part and why.
//
// It also provides the log handlers for the Windows Event Log and the systemd journal.
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
