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

// Where `certagent install` puts the unit: /etc, which overrides a packaged unit in
// /lib/systemd/system of the same name.
const (
	unitDir  = "/etc/systemd/system"
	wantsDir = "/etc/systemd/system/multi-user.target.wants"
)

func (m *Manager) unitPath() string  { return filepath.Join(m.root(), unitDir, UnitName) }
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
	if m.systemctl != nil {
		return true
	}
	if m.Root != "" {
		return false
	}
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func (m *Manager) ctl(args ...string) (string, error) {
	if m.systemctl != nil {
		return m.systemctl(args...)
	}
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (m *Manager) install(s Spec) error {
	path := m.unitPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(RenderUnit(s)), 0o644); err != nil {
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", UnitName, err)
	}
	if m.systemdRunning() {
		if _, err := m.ctl("daemon-reload"); err != nil {
			return err
		}
		_, err := m.ctl("enable", UnitName)
		return err
	}
	// No systemd to ask (a container, a chroot, a test root): enable it as systemctl
	// would, with the [Install] section's symbolic link.
	if err := os.MkdirAll(filepath.Dir(m.wantsPath()), 0o755); err != nil {
		return fmt.Errorf("enabling %s: %w", UnitName, err)
	}
	os.Remove(m.wantsPath())
	if err := os.Symlink(filepath.Join(unitDir, UnitName), m.wantsPath()); err != nil {
		return fmt.Errorf("enabling %s: %w", UnitName, err)
	}
	return nil
}

func (m *Manager) uninstall() error {
	if _, err := os.Lstat(m.unitPath()); errors.Is(err, fs.ErrNotExist) {
		return ErrNotInstalled
	}
	if m.systemdRunning() {
		if _, err := m.ctl("disable", "--now", UnitName); err != nil {
			return err
		}
	}
	if err := os.Remove(m.wantsPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disabling %s: %w", UnitName, err)
	}
	if err := os.Remove(m.unitPath()); err != nil {
		return fmt.Errorf("removing %s: %w", UnitName, err)
	}
	if m.systemdRunning() {
		_, err := m.ctl("daemon-reload")
		return err
	}
	return nil
}

// errNoSystemd explains why start, stop and restart cannot work here.
var errNoSystemd = errors.New("systemd is not running on this machine (a container or a chroot?): run `certagent run` under your init system instead")

func (m *Manager) control(verb string) error {
	if !m.systemdRunning() {
		return errNoSystemd
	}
	_, err := m.ctl(verb, UnitName)
	return err
}

// start, stop and restart wait as systemctl does: start until READY=1 (Type=notify), stop
// until the process has exited.
func (m *Manager) start() error   { return m.control("start") }
func (m *Manager) stop() error    { return m.control("stop") }
func (m *Manager) restart() error { return m.control("restart") }

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

// kardianos's systemd backend. kardianos picks its backend by detection, which in a container
// without systemd falls through to SysV (and would write /etc/init.d scripts): certagent's
// service is a systemd unit or nothing, so the systemd backend is chosen whatever detection
// says.
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

// unitBase is kardianos's Config.Name on Linux: it names the unit <Name>.service.
const unitBase = "certagent"

// newRunner is the service that runs i (runService).
func newRunner(i service.Interface, opt service.KeyValue) (service.Service, error) {
	if err := chooseSystemd(); err != nil {
		return nil, err
	}
	return service.New(i, &service.Config{Name: unitBase, DisplayName: DisplayName, Description: Description, Option: opt})
}
