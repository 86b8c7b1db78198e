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

// TestSystemctl: with systemd running, install and uninstall ask systemctl, and status reads
// what it says.
func TestSystemctl(t *testing.T) {
	root := t.TempDir()
	var calls []string
	m := &Manager{Root: root, systemctl: func(args ...string) (string, error) {
		calls = append(calls, strings.Join(args, " "))
		if args[0] == "show" {
			return "ActiveState=active\nSubState=running\nMainPID=4242\nUnitFileState=enabled\nFragmentPath=/etc/systemd/system/certagent.service\n", nil
		}
		return "", nil
	}}
	if err := m.Install(testSpec(t)); err != nil {
		t.Fatal(err)
	}
	st, err := m.Query()
	if err != nil || st.State != Running || st.PID != 4242 || st.StartType != "enabled" {
		t.Errorf("Query = %+v, %v", st, err)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := m.Uninstall(); err != nil {
		t.Fatal(err)
	}
	want := []string{"daemon-reload", "enable certagent.service", "show --property=ActiveState,SubState,MainPID,UnitFileState,FragmentPath certagent.service",
		"restart certagent.service", "disable --now certagent.service", "daemon-reload"}
	if !slices.Equal(calls, want) {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
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
