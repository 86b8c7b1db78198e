package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/logevent"
)

func testSpec(t *testing.T) Spec {
	exe, err := os.Executable() // systemd-analyze checks that ExecStart's program exists
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Executable: exe, ConfigFile: "/etc/certagent/certagent.yaml", User: "certagent",
		ReadWritePaths: []string{"/var/lib/certagent", "/var/lib/certagent/drop", "/srv/provider drop"}}
}

// TestUnitVerifies checks the rendered unit with systemd's own checker, which exits 0 even
// when it warns: any output is a failure.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if testing.Short() {
			t.Skip("no systemd-analyze")
		}
		t.Fatal("systemd-analyze is missing: apt-get install systemd (.ci/run does)")
	}
	s := testSpec(t)
	unit := RenderUnit(s)
	for _, want := range []string{
		"\nType=notify\n", "\nRestart=on-failure\n", "\nRestartSec=5\n", "\nRestartPreventExitStatus=78\n",
		"\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nProtectHome=yes\n", "\nPrivateTmp=yes\n",
		"\nCapabilityBoundingSet=\n", "\nUMask=0077\n", "\nUser=certagent\n",
		"\nReadWritePaths=\"-/srv/provider drop\" -/var/lib/certagent\n",
		"\nExecStart=" + systemdQuote(s.Executable) + " run --service -c /etc/certagent/certagent.yaml\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", strings.TrimSpace(want), unit)
		}
	}
	path := filepath.Join(t.TempDir(), UnitName)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, unit)
	}
}

// TestInstallIntoRoot installs, updates, queries and removes the unit in a folder, with no
// systemd running: the test needs no root and touches nothing of the machine.
func TestInstallIntoRoot(t *testing.T) {
	root := t.TempDir()
	m := &Manager{Root: root}
	st, err := m.Query()
	if err != nil || st.State != NotInstalled {
		t.Fatalf("Query before install = %+v, %v", st, err)
	}
	s := testSpec(t)
	if err := m.Install(s); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(root, "etc/systemd/system/certagent.service")
	if b, err := os.ReadFile(unit); err != nil || string(b) != RenderUnit(s) {
		t.Fatalf("unit file: %v\n%s", err, b)
	}
	if target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/certagent.service")); err != nil || target != "/etc/systemd/system/certagent.service" {
		t.Errorf("not enabled: %q, %v", target, err)
	}
	st, err = m.Query()
	if err != nil || st.State != Unknown || st.ConfigFile != s.ConfigFile || st.Account != "certagent" || !strings.HasPrefix(st.StartType, "enabled") {
		t.Errorf("Query = %+v, %v", st, err)
	}

	// Again, with another config: updated in place.
	s.ConfigFile = "/srv/other config.yaml"
	if err := m.Install(s); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Query(); st.ConfigFile != s.ConfigFile {
		t.Errorf("after a second install the unit runs %q, want %q", st.ConfigFile, s.ConfigFile)
	}
	if err := m.Start(); !errors.Is(err, errNoSystemd) {
		t.Errorf("Start without systemd = %v, want errNoSystemd", err)
	}

	if err := m.Uninstall(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{unit, filepath.Join(root, "etc/systemd/system/multi-user.target.wants/certagent.service")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	if err := m.Uninstall(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second Uninstall = %v, want ErrNotInstalled", err)
	}
}

// fakeSystemctl puts a stand-in systemctl first on $PATH, which kardianos/service and
// Manager run: it records each call in the returned file, answers show as systemd would for
// a running unit, and fails start when $FAKE_SYSTEMCTL_FAIL is "start".
func fakeSystemctl(t *testing.T) (calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >>"$FAKE_SYSTEMCTL_LOG"
case "$1" in
show) printf 'ActiveState=active\nSubState=running\nMainPID=4242\nUnitFileState=enabled\nFragmentPath=%s\n' "$HOME/.config/systemd/user/certagent.service" ;;
"$FAKE_SYSTEMCTL_FAIL") echo "Job for certagent.service failed." >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_SYSTEMCTL_LOG", log)
	t.Setenv("FAKE_SYSTEMCTL_FAIL", "")
	return func() []string {
		b, err := os.ReadFile(log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		os.Remove(log)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
	}
}

// TestInstallWithKardianos runs the kardianos/service path, where systemd runs: its Install
// writes the unit (here kardianos's per-user unit under a temporary $HOME, so that no root is
// needed and /etc is not touched) and asks systemctl (a stand-in) to enable it; the file it
// writes is RenderUnit's text, byte for byte. A second install updates the unit in place;
// start, stop, restart and uninstall are kardianos's systemctl calls.
func TestInstallWithKardianos(t *testing.T) {
	calls := fakeSystemctl(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	m := &Manager{userUnits: true}
	unit := filepath.Join(home, ".config/systemd/user", UnitName)
	want := func(what string, w ...string) {
		t.Helper()
		if got := calls(); !slices.Equal(got, w) {
			t.Errorf("%s: systemctl calls %q, want %q", what, got, w)
		}
	}

	s := testSpec(t)
	if err := m.Install(s); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(unit); err != nil || string(b) != RenderUnit(s) {
		t.Fatalf("kardianos/service wrote (%v):\n%s\nwant RenderUnit's:\n%s", err, b, RenderUnit(s))
	}
	want("install", "enable_--user_certagent.service", "daemon-reload_--user")

	st, err := m.Query()
	if err != nil || st.State != Running || st.PID != 4242 || st.StartType != "enabled" || st.ConfigFile != s.ConfigFile || st.Account != "certagent" {
		t.Errorf("Query = %+v, %v", st, err)
	}
	want("query", "show_--user_--property=ActiveState,SubState,MainPID,UnitFileState,FragmentPath_certagent.service")

	// Again, with another config: kardianos refuses a unit that exists; updated in place.
	s.ConfigFile = "/srv/other config.yaml"
	if err := m.Install(s); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(unit); string(b) != RenderUnit(s) {
		t.Errorf("after a second install the unit is:\n%s", b)
	}
	want("second install", "daemon-reload_--user", "enable_--user_certagent.service")

	for _, c := range []struct {
		do   func() error
		call string
	}{{m.Start, "start"}, {m.Stop, "stop"}, {m.Restart, "restart"}} {
		if err := c.do(); err != nil {
			t.Errorf("%s: %v", c.call, err)
		}
		want(c.call, c.call+"_--user_certagent.service")
	}
	t.Setenv("FAKE_SYSTEMCTL_FAIL", "start")
	if err := m.Start(); err == nil || !strings.Contains(err.Error(), "journalctl -u certagent") {
		t.Errorf("a failed start = %v, want an error that says where to look", err)
	}
	calls()

	if err := m.Uninstall(); err != nil {
		t.Fatal(err)
	}
	want("uninstall", "stop_--user_certagent.service", "disable_--user_certagent.service", "daemon-reload_--user")
	if _, err := os.Lstat(unit); err == nil {
		t.Errorf("%s left behind", unit)
	}
	if err := m.Uninstall(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second Uninstall = %v, want ErrNotInstalled", err)
	}

	// A path that kardianos's template engine would take for an action is refused, before
	// anything is written.
	s.ConfigFile = "/etc/{{Name}}.yaml"
	if err := m.Install(s); err == nil || !strings.Contains(err.Error(), "{{") {
		t.Errorf("Install with {{ in a path = %v, want it refused", err)
	}
	if _, err := os.Lstat(unit); err == nil {
		t.Errorf("%s written for a refused install", unit)
	}
	want("refused install")
}

// journalFields decodes one native-protocol datagram.
func journalFields(t *testing.T, b []byte) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("unterminated field %q", b)
		}
		line := string(b[:i])
		b = b[i+1:]
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
			continue
		}
		n := binary.LittleEndian.Uint64(b[:8])
		fields[line] = string(b[8 : 8+n])
		b = b[8+n+1:]
	}
	return fields
}

func TestJournalHandler(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "journal.socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, closeFn, err := newJournalHandler(sock, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	log := slog.New(h)
	log.Error("rotation failed", "rotation_id", "r-1", "reason", "line one\nline two", logevent.Attr(logevent.RotationFailed))
	log.Debug("dropped")
	log.Info("plain")

	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	f := journalFields(t, buf[:n])
	want := map[string]string{
		"MESSAGE":               `rotation failed rotation_id=r-1 reason="line one\nline two"`,
		"PRIORITY":              "3",
		"SYSLOG_IDENTIFIER":     "certagent",
		"CERTAGENT_EVENT":       "rotation_failed",
		"CERTAGENT_EVENT_ID":    "201",
		"MESSAGE_ID":            logevent.RotationFailed.MessageID(),
		"CERTAGENT_ROTATION_ID": "r-1",
		"CERTAGENT_REASON":      "line one\nline two",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	n, err = conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if f := journalFields(t, buf[:n]); f["MESSAGE"] != "plain" || f["PRIORITY"] != "6" || f["CERTAGENT_EVENT"] != "" {
		t.Errorf("second record %q (the debug one must not be sent)", f)
	}
}
