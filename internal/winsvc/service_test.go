//go:build linux

package winsvc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/daemon"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/internal/certtest"
)

// agentConfig is a config that points at the emulated tenant, with Windows paths (single
// quotes: YAML takes the backslashes as they are). clientID "" leaves auth.client_id out.
func agentConfig(tn *tenant, listen, clientID, stateDir, dropFolder string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant_id: %s\n", tn.demo.TenantID)
	fmt.Fprintf(&b, "cloud:\n  name: custom\n  authority_host: %s/\n  graph_url: %s\n  ca_file: '%s\\emulator-ca.pem'\n", tn.emu.URL(), tn.emu.URL(), programData)
	if clientID != "" {
		fmt.Fprintf(&b, "auth:\n  client_id: %s\n", clientID)
	}
	fmt.Fprintf(&b, "target:\n  app_id: %s\n", tn.demo.TargetAppID)
	fmt.Fprintf(&b, "state_dir: '%s'\ndrop_folder: '%s'\n", stateDir, dropFolder)
	fmt.Fprintf(&b, "intake:\n  settle: 300ms\napi:\n  listen: %s\nlog:\n  level: debug\n  file: '%s\\certagent.log'\n", listen, programData)
	return []byte(b.String())
}

// TestServiceUnderWine installs certagent.exe with `certagent install` in a fresh prefix and
// takes it through what an administrator does: start, the API from outside, a dropped
// certificate applied to the emulated app, the recovery settings, a crash, stop, install
// again with another config, a config still incomplete, and uninstall.
func TestServiceUnderWine(t *testing.T) {
	optIn(t)
	t0 := time.Now()
	exe := buildExe(t, t.TempDir(), "1.0.0-wine")
	w := newWine(t)
	tn := newTenant(t)
	ca, err := os.ReadFile(tn.emu.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	w.write(programData+`\emulator-ca.pem`, ca)
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	const installed = `C:\Program Files\CertAgent\certagent.exe`
	w.write(installed, data)
	state, drop := programData+`\state`, programData+`\drop`
	tn.registerCredential(t, w, state)
	listen := freePort(t)
	configFile := programData + `\certagent.yaml`
	w.write(configFile, agentConfig(tn, listen, tn.demo.AgentAppID, state, drop))
	t.Logf("set-up %s", time.Since(t0).Round(100*time.Millisecond))

	t1 := time.Now()
	out := w.must(installed, "install", "-c", configFile)
	if !strings.Contains(out, "run --service -c "+configFile) {
		t.Errorf("install said:\n%s", out)
	}
	w.must(installed, "start")
	if st := w.serviceState(); st != "RUNNING" {
		t.Fatalf("sc query CertAgent: %s, want RUNNING", st)
	}
	if code := get(listen, "/livez"); code != 200 {
		t.Errorf("/livez from Linux: %d, want 200", code)
	}
	w.waitFor("/readyz 200", 60*time.Second, func() bool { return get(listen, "/readyz") == 200 })

	// The registry, as Windows keeps what install set (Wine's service manager keeps recovery
	// actions and delayed start nowhere: install wrote the values Windows would hold).
	svc := w.regQuery(`HKLM\SYSTEM\CurrentControlSet\Services\CertAgent`)
	wantImage := `"` + installed + `" run --service -c ` + configFile
	for name, want := range map[string]string{
		"ImagePath":                        "REG_SZ " + wantImage,
		"ObjectName":                       `REG_SZ NT SERVICE\CertAgent`,
		"DisplayName":                      "REG_SZ " + daemon.DisplayName,
		"Start":                            "REG_DWORD 0x2",
		"DelayedAutostart":                 "REG_DWORD 0x1",
		"FailureActionsOnNonCrashFailures": "REG_DWORD 0x1",
		"FailureActions":                   fmt.Sprintf("REG_BINARY %X", daemon.EncodeFailureActions(daemon.Recovery, daemon.RecoveryReset)),
	} {
		if got := svc[name]; got != want {
			t.Errorf("HKLM\\...\\Services\\CertAgent %s = %q, want %q", name, got, want)
		}
	}
	if ev := w.regQuery(`HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\CertAgent`); ev == nil || !strings.Contains(ev["EventMessageFile"], "EventCreate.exe") {
		t.Errorf("Event Log source: %v", ev)
	}
	qf, code := w.run("sc", "qfailure", "CertAgent")
	t.Logf("sc qfailure CertAgent: exit %d, %q (Wine 8's sc has no qfailure; the registry holds the actions)", code, strings.TrimSpace(qf))
	out = w.must(installed, "service", "status")
	for _, want := range []string{"running (pid", "automatic (delayed)", `NT SERVICE\CertAgent`, "config      " + configFile,
		"recovery: restart after 5s, then restart after 10s, then restart after 1m0s", "also when it stops with an error"} {
		if !strings.Contains(out, want) {
			t.Errorf("service status lacks %q:\n%s", want, out)
		}
	}

	// A certificate dropped into the Windows drop folder is applied and filed.
	next := certtest.New(time.Now(), certtest.CommonName("provider under Wine"))
	thumb := certs.ThumbprintSHA1(next.DER)
	w.write(drop+`\next.cer`, next.PEM())
	w.waitFor("the certificate on the emulated app", 60*time.Second, func() bool { return tn.hasCert(t, thumb) })
	w.waitFor("next.cer in processed", 30*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(w.path(drop), "processed", "*_next.cer"))
		return len(m) == 1
	})

	// A crash (taskkill /F). Windows would start the service again after 5 s (the recovery
	// actions checked above). Wine 8 carries out no recovery action, and its service manager
	// does not even notice the process is gone: sc query says RUNNING with the dead PID until
	// a control is sent, which fails ("Pipe closed") and makes it look; start then works.
	w.must("taskkill", "/F", "/IM", "certagent.exe")
	restarted := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if get(listen, "/livez") == 200 {
			restarted = true
			break
		}
	}
	if restarted {
		t.Logf("after taskkill /F the service came back by itself: recovery worked")
	} else {
		t.Logf("after taskkill /F nothing answers for 10 s and sc query says %s: Wine does not carry out recovery actions (known); stop and start by hand", w.serviceState())
		out, code := w.run(installed, "stop")
		t.Logf("certagent stop of the dead process: exit %d: %s", code, strings.TrimSpace(out))
		w.must(installed, "start")
	}
	w.waitFor("/readyz 200 after the crash", 60*time.Second, func() bool { return get(listen, "/readyz") == 200 })

	ts := time.Now()
	w.must(installed, "stop")
	t.Logf("certagent stop took %s", time.Since(ts).Round(100*time.Millisecond))
	if st := w.serviceState(); st != "STOPPED" {
		t.Errorf("after certagent stop: %s, want STOPPED", st)
	}
	if code := get(listen, "/livez"); code != 0 {
		t.Errorf("/livez after stop: %d, want nothing listening", code)
	}
	logText, _ := os.ReadFile(w.path(programData + `\certagent.log`))
	for _, want := range []string{"event=started", "event=rotation_applied", "event=stopped"} {
		if !strings.Contains(string(logText), want) {
			t.Errorf("log.file lacks %s", want)
		}
	}

	// Installed again with another config, which is not complete: updated in place; the
	// service runs on standby and says what is missing, then picks up the fix.
	listen2 := freePort(t)
	config2 := programData + `\incomplete.yaml`
	w.write(config2, agentConfig(tn, listen2, "", programData+`\state2`, programData+`\drop2`))
	out = w.must(installed, "install", "-c", config2)
	if !strings.Contains(out, "does not set auth.client_id yet") {
		t.Errorf("install of an incomplete config said:\n%s", out)
	}
	if got := w.regQuery(`HKLM\SYSTEM\CurrentControlSet\Services\CertAgent`)["ImagePath"]; !strings.HasSuffix(got, "-c "+config2) {
		t.Errorf("ImagePath after the second install: %q", got)
	}
	w.must(installed, "start")
	if st := w.serviceState(); st != "RUNNING" {
		t.Fatalf("sc query with an incomplete config: %s, want RUNNING", st)
	}
	if code := get(listen2, "/livez"); code != 200 {
		t.Errorf("/livez on standby: %d", code)
	}
	if code := get(listen2, "/readyz"); code != 503 {
		t.Errorf("/readyz on standby: %d, want 503", code)
	}
	st, err := status(w, listen2, programData+`\state2\api.token`)
	if err != nil || len(st.Problems) != 1 || st.Problems[0].Code != health.NotConfigured || !strings.Contains(st.Problems[0].Message, "auth.client_id") {
		t.Errorf("standby status: %+v, %v; want not_configured naming auth.client_id", st.Problems, err)
	}
	tn.registerCredential(t, w, programData+`\state2`)
	w.write(config2, agentConfig(tn, listen2, tn.demo.AgentAppID, programData+`\state2`, programData+`\drop2`))
	w.waitFor("the agent after the config was fixed, without a restart", 60*time.Second, func() bool { return get(listen2, "/readyz") == 200 })

	w.must(installed, "uninstall")
	if st := w.serviceState(); st != "" {
		t.Errorf("after uninstall sc query says %s, want no service", st)
	}
	if ev := w.regQuery(`HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\CertAgent`); ev != nil {
		t.Errorf("the Event Log source is still there: %v", ev)
	}
	if _, err := os.Stat(w.path(configFile)); err != nil {
		t.Errorf("uninstall removed the config: %v", err)
	}
	t.Logf("service cycle under Wine %s (total %s)", time.Since(t1).Round(100*time.Millisecond), time.Since(t0).Round(100*time.Millisecond))
}
