package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/kardianos/service"
)

// What kardianos/service does on Linux, with its systemd backend: Install writes the unit
// file from SystemdScript, runs systemctl enable and daemon-reload; Uninstall runs systemctl
// disable, removes the file and runs daemon-reload; Start, Stop and Restart run systemctl
// start, stop and restart (which wait as systemd does: start until READY=1, Type=notify);
// Run runs the service (run_unix.go).
//
// SystemdScript is our unit: RenderUnit's text, which holds no template action, so that
// kardianos's template engine writes it byte for byte (install refuses a path with "{{" in
// it, which the engine would take for an action). Not kardianos's template with its keys:
// its quoting (cmd) leaves systemd's specifiers (%), variables ($) and backslashes as they
// are, and it has no key for ReadWritePaths or the hardening.
//
// What is ours:
//   - updating an installed unit: kardianos's Install refuses a unit file that exists;
//   - installing where systemd does not run (a container, a chroot, where the .deb too only
//     enables the unit) or under Manager.Root (the tests): no systemctl can be asked there,
//     so the files are written as systemctl enable would, from RenderUnit's text again; the
//     tests that install under a Root thus read what kardianos would write, and
//     TestInstallWithKardianos runs kardianos's own Install (a per-user unit, a stand-in
//     systemctl) and compares its file with RenderUnit's;
//   - status (query): kardianos's Status (systemctl is-active) reports a deactivating unit
//     as not installed and a failed one as an error, and has no PID, command line or user;
//   - READY=1 and STOPPING=1 (run_unix.go): kardianos does not talk to systemd.

// Where `certagent install` puts the unit: /etc, which overrides a packaged unit in
// /lib/systemd/system of the same name. kardianos/service writes the same place.
const (
	unitDir  = "/etc/systemd/system"
	wantsDir = "/etc/systemd/system/multi-user.target.wants"
	// unitBase is kardianos's Config.Name on Linux: it names the unit <Name>.service.
	unitBase = "certagent"
)

// kardianos's systemd backend. kardianos picks its backend by detection, which in a container
// without systemd falls through to SysV (and would write /etc/init.d scripts): certagent's
// service is a systemd unit or nothing, so the systemd backend is chosen whatever detection
// says. Install, Uninstall, Start, Stop and Restart go through it only where systemd runs
// (systemdRunning).
var (
	systemdOnce sync.Once
	systemdErr  error
)

type alwaysSystemd struct{ service.System }

func (alwaysSystemd) Detect() bool { return true }

func chooseSystemd() error {
	systemdOnce.Do(func() {
		for _, s := range service.AvailableSystems() {
			if s.String() == "linux-systemd" {
				service.ChooseSystem(alwaysSystemd{s})
				return
			}
		}
		systemdErr = errors.New("kardianos/service has no linux-systemd backend")
	})
	return systemdErr
}

// kardianos is the unit as kardianos/service defines it; unit is its SystemdScript (install
// only).
func (m *Manager) kardianos(s Spec, unit string) (service.Service, error) {
	if err := chooseSystemd(); err != nil {
		return nil, err
	}
	c := &service.Config{
		Name:        unitBase,
		DisplayName: DisplayName,
		Description: Description,
		UserName:    s.User,
		Executable:  s.Executable,
		Option:      service.KeyValue{"UserService": m.userUnits},
	}
	if s.ConfigFile != "" {
		c.Arguments = Args(s.ConfigFile)
	}
	if unit != "" {
		c.Option["SystemdScript"] = unit
	}
	return service.New(idle{}, c)
}

// newRunner is the service that runs i (runService).
func newRunner(i service.Interface, opt service.KeyValue) (service.Service, error) {
	if err := chooseSystemd(); err != nil {
		return nil, err
	}
	return service.New(i, &service.Config{Name: unitBase, DisplayName: DisplayName, Description: Description, Option: opt})
}

func (m *Manager) unitPath() string {
	if m.userUnits {
		// kardianos's place for a per-user unit (UserService).
		home, _ := os.UserHomeDir()
		return filepath.Join(home, ".config/systemd/user", UnitName)
	}
	return filepath.Join(m.root(), unitDir, UnitName)
}

func (m *Manager) wantsPath() string { return filepath.Join(m.root(), wantsDir, UnitName) }

func (m *Manager) root() string {
	if m.Root == "" {
		return "/"
	}
	return m.Root
}

// systemdRunning reports whether systemctl can talk to a running systemd: the real root,
// and systemd as PID 1 (sd_booted's test). In a container or chroot it is not.
func (m *Manager) systemdRunning() bool {
	if m.userUnits {
		return true
	}
	if m.Root != "" {
		return false
	}
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ctl runs systemctl for what kardianos/service does not ask it (with --user where kardianos
// puts it, for the tests' per-user unit).
func (m *Manager) ctl(action string, args ...string) (string, error) {
	all := []string{action}
	if m.userUnits {
		all = append(all, "--user")
	}
	all = append(all, args...)
	out, err := exec.Command("systemctl", all...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("systemctl %s: %w: %s", strings.Join(all, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// kardianosError adds where to look to an error of kardianos/service's systemctl, which keeps
// only its exit status (not what systemctl said).
func kardianosError(op string, err error) error {
	return fmt.Errorf("%s %s: %w (`systemctl status %s` and `journalctl -u %s` say why)", op, UnitName, err, unitBase, unitBase)
}

func (m *Manager) install(s Spec) error {
	unit := RenderUnit(s)
	if strings.Contains(unit, "{{") {
		return fmt.Errorf("installing %s: a path holds \"{{\", which kardianos/service's unit template would take for an action: choose another", UnitName)
	}
	path := m.unitPath()
	if !m.systemdRunning() {
		// No systemd to ask (a container, a chroot, a test root): the unit, enabled as
		// systemctl would, with the [Install] section's symbolic link.
		if err := writeUnit(path, unit); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(m.wantsPath()), 0o755); err != nil {
			return fmt.Errorf("enabling %s: %w", UnitName, err)
		}
		os.Remove(m.wantsPath())
		if err := os.Symlink(filepath.Join(unitDir, UnitName), m.wantsPath()); err != nil {
			return fmt.Errorf("enabling %s: %w", UnitName, err)
		}
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		// kardianos's Install refuses a unit that exists ("Init already exists"): rewrite it
		// in place (a running service keeps its command line until it restarts), and tell
		// systemd as kardianos's Install does.
		if err := writeUnit(path, unit); err != nil {
			return err
		}
		if _, err := m.ctl("daemon-reload"); err != nil {
			return err
		}
		_, err := m.ctl("enable", UnitName)
		return err
	}
	ks, err := m.kardianos(s, unit)
	if err != nil {
		return err
	}
	if err := ks.Install(); err != nil {
		return kardianosError("installing", err)
	}
	return nil
}

// writeUnit replaces the unit file at path with unit, at once.
func writeUnit(path, unit string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(unit), 0o644); err != nil {
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	return nil
}

func (m *Manager) uninstall() error {
	if _, err := os.Lstat(m.unitPath()); errors.Is(err, fs.ErrNotExist) {
		return ErrNotInstalled
	}
	if !m.systemdRunning() {
		if err := os.Remove(m.wantsPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disabling %s: %w", UnitName, err)
		}
		if err := os.Remove(m.unitPath()); err != nil {
			return fmt.Errorf("removing %s: %w", UnitName, err)
		}
		return nil
	}
	ks, err := m.kardianos(Spec{}, "")
	if err != nil {
		return err
	}
	// kardianos's Uninstall disables and removes the unit but leaves the service running:
	// stopped first.
	if err := ks.Stop(); err != nil {
		return kardianosError("stopping", err)
	}
	if err := ks.Uninstall(); err != nil {
		return kardianosError("removing", err)
	}
	return nil
}

// errNoSystemd explains why start, stop and restart cannot work here.
var errNoSystemd = errors.New("systemd is not running on this machine (a container or a chroot?): run `certagent run` under your init system instead")

// control runs kardianos's Start, Stop or Restart. They wait as systemctl does: start until
// READY=1 (Type=notify), stop until the process has exited.
func (m *Manager) control(op string, do func(service.Service) error) error {
	if !m.systemdRunning() {
		return errNoSystemd
	}
	ks, err := m.kardianos(Spec{}, "")
	if err != nil {
		return err
	}
	if err := do(ks); err != nil {
		return kardianosError(op, err)
	}
	return nil
}

func (m *Manager) start() error   { return m.control("starting", service.Service.Start) }
func (m *Manager) stop() error    { return m.control("stopping", service.Service.Stop) }
func (m *Manager) restart() error { return m.control("restarting", service.Service.Restart) }

func (m *Manager) query() (Status, error) {
	st := Status{State: NotInstalled}
	path := m.unitPath()
	if _, err := os.Stat(path); err != nil {
		// A packaged unit (the .deb's) counts too.
		packaged := filepath.Join(m.root(), "/lib/systemd/system", UnitName)
		if _, perr := os.Stat(packaged); perr != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return st, nil
			}
			return st, err
		}
		path = packaged
	}
	st.State, st.Definition, st.Account = Unknown, path, "root"
	if err := readUnit(path, &st); err != nil {
		return st, err
	}
	if _, err := os.Lstat(m.wantsPath()); err == nil {
		st.StartType = "enabled (starts at boot)"
	} else {
		st.StartType = "disabled"
	}
	if !m.systemdRunning() {
		st.Notes = append(st.Notes, "systemd is not running here: the state is unknown")
		return st, nil
	}
	out, err := m.ctl("show", "--property=ActiveState,SubState,MainPID,UnitFileState,FragmentPath", UnitName)
	if err != nil {
		return st, err
	}
	props := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	switch props["ActiveState"] {
	case "active", "reloading":
		st.State = Running
	case "activating":
		st.State = Starting
	case "deactivating":
		st.State = Stopping
	case "inactive":
		st.State = Stopped
	case "failed":
		st.State = Failed
	}
	st.PID, _ = strconv.Atoi(props["MainPID"])
	if s := props["UnitFileState"]; s != "" {
		st.StartType = s
	}
	if p := props["FragmentPath"]; p != "" {
		st.Definition = p
	}
	return st, nil
}

// readUnit takes the command line and the user from a unit file.
func readUnit(path string, st *Status) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "ExecStart":
			st.Command = parseExecStart(strings.TrimLeft(strings.TrimSpace(v), "-@:+!"))
			st.ConfigFile = ConfigFileOf(st.Command)
		case "User":
			st.Account = strings.TrimSpace(v)
		}
	}
	return sc.Err()
}
