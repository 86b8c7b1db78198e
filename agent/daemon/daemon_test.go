package daemon

import (
	"bytes"
	"encoding/hex"
	"flag"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aucloud/certagent/agent/logevent"
)

func TestSystemdQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{
		"/usr/bin/certagent", "--service", "/etc/certagent/certagent.yaml",
		"/srv/my certs/config.yaml", `/odd/"quoted" name`, "/100%/x", "/$HOME/x", `/back\slash`, "tab\there",
	} {
		q := systemdQuote(s)
		if got := parseExecStart(q); len(got) != 1 || got[0] != s {
			t.Errorf("parseExecStart(systemdQuote(%q) = %q) = %q", s, q, got)
		}
	}
	line := strings.Join([]string{systemdQuote("/opt/cert agent/certagent"), "run", "--service", "-c", systemdQuote("/etc/c a/x.yaml")}, " ")
	if got, want := parseExecStart(line), []string{"/opt/cert agent/certagent", "run", "--service", "-c", "/etc/c a/x.yaml"}; !slices.Equal(got, want) {
		t.Errorf("parseExecStart(%q) = %q, want %q", line, got, want)
	}
	if got := ConfigFileOf(Args("/etc/c a/x.yaml")); got != "/etc/c a/x.yaml" {
		t.Errorf("ConfigFileOf(Args) = %q", got)
	}
}

func TestWritablePaths(t *testing.T) {
	got := writablePaths([]string{"/var/lib/certagent/drop", "", "/var/lib/certagent/", "/srv/drop", "/var/lib/certagentx"})
	want := []string{"/srv/drop", "/var/lib/certagent", "/var/lib/certagentx"}
	if !slices.Equal(got, want) {
		t.Errorf("writablePaths = %q, want %q", got, want)
	}
}

func TestFailureActionsEncoding(t *testing.T) {
	// As `sc failure CertAgent reset= 86400 actions= restart/5000/restart/10000/restart/60000`
	// leaves it in the registry.
	want, _ := hex.DecodeString("805101000000000000000000030000001400000001000000881300000100000010270000" + "0100000060ea0000")
	got := EncodeFailureActions(Recovery, RecoveryReset)
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeFailureActions = %x\nwant                   %x", got, want)
	}
	actions, reset, err := DecodeFailureActions(got)
	if err != nil || reset != RecoveryReset || len(actions) != 3 {
		t.Fatalf("DecodeFailureActions = %v, %v, %v", actions, reset, err)
	}
	for i, a := range actions {
		if a.Type != scActionRestart || a.Delay != Recovery[i] {
			t.Errorf("action %d = %+v, want restart after %s", i, a, Recovery[i])
		}
	}
	if _, _, err := DecodeFailureActions(got[:30]); err == nil {
		t.Error("a truncated value decoded")
	}
	if s := describeRecovery(actions, reset, true); s != "recovery: restart after 5s, then restart after 10s, then restart after 1m0s, failures counted afresh after 24h0m0s; also when it stops with an error" {
		t.Errorf("describeRecovery = %q", s)
	}
}

// collect is a recordHandler that keeps its entries.
func collect(level slog.Level) (*recordHandler, *[]entry) {
	var es []entry
	return &recordHandler{enabled: func(l slog.Level) bool { return l >= level }, emit: func(e entry) error { es = append(es, e); return nil }}, &es
}

func TestRecordHandler(t *testing.T) {
	h, es := collect(slog.LevelInfo)
	log := slog.New(h).With("component", "rotation").WithGroup("r")
	log.Info("rotation applied", "key_id", "k 1", logevent.Attr(logevent.RotationApplied))
	slog.New(h).With(logevent.Attr(logevent.ConfigInvalid)).Error("config invalid", "err", errString("x.yaml:3: tenant_id: bad"))
	slog.New(h).Debug("not enabled")
	if len(*es) != 2 {
		t.Fatalf("%d entries, want 2", len(*es))
	}
	e := (*es)[0]
	if e.Kind != logevent.RotationApplied || e.Text() != `rotation applied component=rotation r.key_id="k 1"` {
		t.Errorf("entry %+v, text %q", e, e.Text())
	}
	e = (*es)[1]
	if e.Kind != logevent.ConfigInvalid || e.Text() != `config invalid err="x.yaml:3: tenant_id: bad"` {
		t.Errorf("entry %+v, text %q", e, e.Text())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestEventFor(t *testing.T) {
	tests := []struct {
		level slog.Level
		kind  logevent.Kind
		id    uint32
		typ   eventType
		ok    bool
	}{
		{slog.LevelInfo, logevent.Started, 100, eventInfo, true},
		{slog.LevelWarn, logevent.NotConfigured, 110, eventWarning, true},
		{slog.LevelError, logevent.RotationFailed, 201, eventError, true},
		{slog.LevelError, "", logevent.OtherErrorID, eventError, true},
		{slog.LevelWarn, "", 0, 0, false},
		{slog.LevelInfo, "", 0, 0, false},
	}
	for _, tt := range tests {
		id, typ, ok := eventFor(entry{Level: tt.level, Kind: tt.kind})
		if id != tt.id || typ != tt.typ || ok != tt.ok {
			t.Errorf("eventFor(%s, %q) = %d, %d, %v; want %d, %d, %v", tt.level, tt.kind, id, typ, ok, tt.id, tt.typ, tt.ok)
		}
	}
}

var update = flag.Bool("update", false, "rewrite installer/linux/certagent.service from RenderUnit")

// PackagedUnit is the spec of the unit the .deb ships (installer/linux/certagent.service).
var PackagedUnit = Spec{Executable: "/usr/bin/certagent", ConfigFile: "/etc/certagent/certagent.yaml",
	User: "certagent", ReadWritePaths: []string{"/var/lib/certagent"}}

// TestPackagedUnit holds the .deb's unit file to what RenderUnit writes (go test -update
// rewrites it).
func TestPackagedUnit(t *testing.T) {
	const path = "../../installer/linux/certagent.service"
	want := RenderUnit(PackagedUnit)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n"))) != want {
		t.Errorf("%s is not RenderUnit(PackagedUnit); run go test ./agent/daemon -run TestPackagedUnit -update\n%s", path, got)
	}
}
