//go:build linux

package winsvc

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/internal/certtest"
)

// msis returns the two MSIs `make test-wine-service` builds: an older and a newer version.
func msis(t *testing.T) (older, newer string) {
	t.Helper()
	older, newer = os.Getenv("CERTAGENT_MSI_OLD"), os.Getenv("CERTAGENT_MSI_NEW")
	if older == "" || newer == "" {
		t.Skip("CERTAGENT_MSI_OLD and CERTAGENT_MSI_NEW name two MSIs (make test-wine-service builds them)")
	}
	return older, newer
}

// msiTable returns a table of an MSI as msiinfo exports it: rows of tab-separated columns,
// without the three header lines.
func msiTable(t *testing.T, msi, table string) [][]string {
	t.Helper()
	out, err := exec.Command("msiinfo", "export", msi, table).Output()
	if err != nil {
		t.Fatalf("msiinfo export %s %s: %v", msi, table, err)
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(out), "\r", ""), "\n"), "\n")
	var rows [][]string
	for _, l := range lines[min(3, len(lines)):] {
		rows = append(rows, strings.Split(l, "\t"))
	}
	return rows
}

// row returns the first row whose column col is key, or nil.
func row(rows [][]string, col int, key string) []string {
	for _, r := range rows {
		if len(r) > col && r[col] == key {
			return r
		}
	}
	return nil
}

// TestMSITables checks the built MSI's tables: wixl can exit 0 on a broken MSI, so the
// tables are the proof of what Windows Installer will do.
func TestMSITables(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the MSIs")
	}
	_, msi := msis(t)
	files := msiTable(t, msi, "File")
	for _, f := range []string{"certagent.exe", "certagent.example.yaml", "CertAgent.psd1", "CertAgent.psm1", "CertAgent.Format.ps1xml"} {
		found := false
		for _, r := range files {
			found = found || strings.HasSuffix(r[2], f) // FileName may be "SHORT~1|long"
		}
		if !found {
			t.Errorf("File lacks %s", f)
		}
	}
	comps := msiTable(t, msi, "Component")
	if len(comps) < 20 || row(comps, 0, "Service") == nil || row(comps, 0, "Settings") == nil || row(comps, 0, "EventSource") == nil {
		t.Errorf("Component: %d rows, want the Service, Settings and EventSource components and the module's", len(comps))
	}
	for _, c := range comps { // 256: 64-bit
		if len(c) > 3 && c[3] != "256" && c[3] != "260" {
			t.Errorf("component %s has attributes %s, want 64-bit (256)", c[0], c[3])
		}
	}
	si := row(msiTable(t, msi, "ServiceInstall"), 1, "CertAgent")
	if si == nil || si[3] != "16" || si[4] != "2" || si[8] != `NT SERVICE\CertAgent` || si[10] != `run --service -c "[CONFIGFILE]"` {
		t.Errorf("ServiceInstall = %q, want own process, automatic, NT SERVICE\\CertAgent, run --service -c \"[CONFIGFILE]\"", si)
	}
	sc := row(msiTable(t, msi, "ServiceControl"), 1, "CertAgent")
	// 163 = start on install (1) + stop on install (2) and uninstall (32) + remove on uninstall (128).
	if sc == nil || sc[2] != "163" || sc[4] != "1" {
		t.Errorf("ServiceControl = %q, want event 163 with wait", sc)
	}
	reg := msiTable(t, msi, "Registry")
	for name, value := range map[string]string{
		"InstallDir": "[INSTALLDIR]", "ConfigFile": "[CONFIGFILE]", "ApiPort": "[APIPORT]", "ApiUrl": "http://127.0.0.1:[APIPORT]",
		"TokenFile": `[CommonAppDataFolder]CertAgent\state\api.token`, "TenantId": "[TENANTID]", "ClientId": "[CLIENTID]",
		"TargetAppId": "[TARGETAPPID]", "DropFolder": "[DROPFOLDER]", "Approval": "[APPROVAL]", "WebhookUrl": "[WEBHOOKURL]",
		"EventMessageFile": "[System64Folder]EventCreate.exe",
	} {
		r := row(reg, 3, name)
		if r == nil || r[4] != value || r[1] != "2" {
			t.Errorf("Registry %s = %q, want HKLM (2) %s", name, r, value)
		}
	}
	props := msiTable(t, msi, "Property")
	if p := row(props, 0, "UpgradeCode"); p == nil || !strings.EqualFold(p[1], "{b4a72c49-608a-4750-9557-10f2cc81cfaf}") {
		t.Errorf("UpgradeCode = %q: it must never change", p)
	}
	if p := row(props, 0, "SecureCustomProperties"); p == nil || !strings.Contains(p[1], "TENANTID;CLIENTID;TARGETAPPID") {
		t.Errorf("SecureCustomProperties = %q", p)
	}
	up := msiTable(t, msi, "Upgrade")
	if len(up) != 2 || row(up, 6, "WIX_UPGRADE_DETECTED") == nil || row(up, 6, "WIX_DOWNGRADE_DETECTED") == nil {
		t.Errorf("Upgrade = %q, want the upgrade and the downgrade rows", up)
	}
	if lc := row(msiTable(t, msi, "LaunchCondition"), 0, "NOT WIX_DOWNGRADE_DETECTED"); lc == nil || !strings.Contains(lc[1], "A newer version of [ProductName] is already installed") {
		t.Errorf("LaunchCondition for a downgrade = %q, want the message", lc)
	}
	seq := msiTable(t, msi, "InstallExecuteSequence")
	order := []string{"AppSearch", "RestoreCmdLineTenantId", "DefaultConfigFile", "InstallValidate", "RemoveExistingProducts", "InstallInitialize",
		"StopServices", "InstallFiles", "WriteRegistryValues", "InstallServices", "MsiConfigureServices", "StartServices", "InstallFinalize"}
	last := -1
	for _, a := range order {
		r := row(seq, 0, a)
		if r == nil {
			t.Errorf("InstallExecuteSequence lacks %s", a)
			continue
		}
		var n int
		for _, c := range r[2] {
			n = n*10 + int(c-'0')
		}
		if n <= last {
			t.Errorf("InstallExecuteSequence: %s at %d is not after the previous action (%d)", a, n, last)
		}
		last = n
	}
	if r := row(msiTable(t, msi, "MsiServiceConfigFailureActions"), 1, "CertAgent"); r == nil || r[3] != "86400" || r[6] != "1[~]1[~]1" || r[7] != "5000[~]10000[~]60000" {
		t.Errorf("MsiServiceConfigFailureActions = %q, want restarts after 5 s, 10 s, 60 s", r)
	}
	cfg := msiTable(t, msi, "MsiServiceConfig")
	for _, want := range []string{"3", "4", "5"} { // delayed start, non-crash failures, SID type
		if row(cfg, 3, want) == nil {
			t.Errorf("MsiServiceConfig lacks ConfigType %s: %q", want, cfg)
		}
	}
}

// TestMSIUnderWine installs the older MSI silently with properties pointing at the emulated
// tenant, and takes it through what customer IT does: the service runs, the config is
// written from the properties, the module is where PowerShell looks, a dropped certificate
// is applied; the newer MSI upgrades it keeping config, state and rotations; the older one is
// refused; a repair puts back a deleted file; the uninstall removes the service and the
// program files and keeps %ProgramData%\CertAgent.
func TestMSIUnderWine(t *testing.T) {
	optIn(t)
	older, newer := msis(t)
	t0 := time.Now()
	w := newWine(t)
	tn := newTenant(t)
	ca, err := os.ReadFile(tn.emu.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	w.write(programData+`\emulator-ca.pem`, ca)
	for name, p := range map[string]string{"older.msi": older, "newer.msi": newer} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		w.write(`C:\install\`+name, b)
	}
	listen := freePort(t)
	port := listen[strings.LastIndexByte(listen, ':')+1:]
	var lastLog string // the log of the last msiexec
	msiexec := func(args ...string) int {
		t.Helper()
		log := `C:\install\msiexec-` + time.Now().Format("150405.000") + ".log"
		out, code := w.run(append([]string{"msiexec"}, append(args, "/qn", "/l*v", log)...)...)
		t.Logf("msiexec %s: exit %d %s", strings.Join(args, " "), code, strings.TrimSpace(out))
		b, _ := os.ReadFile(w.path(log))
		lastLog = strings.ReplaceAll(string(b), "\r", "")
		return code
	}

	t1 := time.Now()
	if code := msiexec("/i", `C:\install\older.msi`, "TENANTID="+tn.demo.TenantID, "CLIENTID="+tn.demo.AgentAppID,
		"TARGETAPPID="+tn.demo.TargetAppID, "APIPORT="+port, "CLOUD=custom", "AUTHORITYHOST="+tn.emu.URL()+"/",
		"GRAPHURL="+tn.emu.URL(), `CAFILE=`+programData+`\emulator-ca.pem`); code != 0 {
		t.Fatalf("install: exit %d", code)
	}
	t.Logf("install %s", time.Since(t1).Round(100*time.Millisecond))
	if st := w.serviceState(); st != "RUNNING" {
		t.Fatalf("sc query after install: %s, want RUNNING", st)
	}
	reg := w.regQuery(`HKLM\SOFTWARE\CertAgent`)
	for name, want := range map[string]string{
		"TenantId": tn.demo.TenantID, "ClientId": tn.demo.AgentAppID, "TargetAppId": tn.demo.TargetAppID, "ApiPort": port,
		"ApiUrl": "http://127.0.0.1:" + port, "InstallDir": `C:\Program Files\CertAgent\`, "ConfigFile": programData + `\certagent.yaml`,
		"TokenFile": programData + `\state\api.token`, "Version": "1.0.0",
	} {
		if got := reg[name]; got != "REG_SZ "+want {
			t.Errorf("HKLM\\SOFTWARE\\CertAgent %s = %q, want %q", name, got, want)
		}
	}
	configFile := w.path(programData + `\certagent.yaml`)
	w.waitFor("the config written from the properties", 30*time.Second, func() bool { _, err := os.Stat(configFile); return err == nil })
	cfgBytes, _ := os.ReadFile(configFile)
	for _, want := range []string{tn.demo.TenantID, tn.demo.AgentAppID, tn.demo.TargetAppID, "127.0.0.1:" + port, tn.emu.URL(), "written by the CertAgent service"} {
		if !bytes.Contains(cfgBytes, []byte(want)) {
			t.Errorf("the written config lacks %q:\n%s", want, cfgBytes)
		}
	}
	psd1 := w.path(`C:\Program Files\WindowsPowerShell\Modules\CertAgent\1.0.0\CertAgent.psd1`)
	if b, err := os.ReadFile(psd1); err != nil || !regexp.MustCompile(`ModuleVersion\s*=\s*'1\.0\.0'`).Match(b) {
		t.Errorf("the module is not where PowerShell looks (%s): %v", psd1, err)
	}
	if _, err := os.Stat(w.path(`C:\Program Files\CertAgent\certagent.example.yaml`)); err != nil {
		t.Errorf("example config: %v", err)
	}

	// No credential yet: the service waits on standby and says so; once an admin made and
	// registered it, the agent starts by itself.
	tokenFile := programData + `\state\api.token`
	w.waitFor("standby status", 30*time.Second, func() bool {
		st, err := status(w, listen, tokenFile)
		return err == nil && len(st.Problems) > 0 && st.Problems[0].Code == health.AgentCredentialMissing
	})
	tn.registerCredential(t, w, programData+`\state`)
	w.waitFor("/readyz 200", 60*time.Second, func() bool { return get(listen, "/readyz") == 200 })
	next := certtest.New(time.Now(), certtest.CommonName("provider via the MSI"))
	thumb := certs.ThumbprintSHA1(next.DER)
	w.write(programData+`\drop\next.cer`, next.PEM())
	w.waitFor("the certificate on the emulated app", 60*time.Second, func() bool { return tn.hasCert(t, thumb) })
	if st, err := status(w, listen, tokenFile); err != nil || st.Version != "v1.0.0" {
		t.Errorf("status version %q (%v), want v1.0.0", st.Version, err)
	}

	// Upgrade, without properties: they are remembered; config, state and rotations stay.
	t2 := time.Now()
	if code := msiexec("/i", `C:\install\newer.msi`); code != 0 {
		t.Fatalf("upgrade: exit %d", code)
	}
	t.Logf("upgrade %s", time.Since(t2).Round(100*time.Millisecond))
	if st := w.serviceState(); st != "RUNNING" {
		t.Fatalf("sc query after the upgrade: %s", st)
	}
	w.waitFor("the new version", 60*time.Second, func() bool {
		st, err := status(w, listen, tokenFile)
		return err == nil && st.Version == "v1.1.0"
	})
	if after, _ := os.ReadFile(configFile); !bytes.Equal(after, cfgBytes) {
		t.Errorf("the upgrade changed the config:\n%s", after)
	}
	if got := w.regQuery(`HKLM\SOFTWARE\CertAgent`)["TenantId"]; got != "REG_SZ "+tn.demo.TenantID {
		t.Errorf("TenantId after the upgrade = %q: not remembered", got)
	}
	tok, _ := client.ReadTokenFile(w.path(tokenFile))
	c, _ := client.New("http://"+listen, tok)
	if rs, err := c.Rotations(context.Background(), "applied"); err != nil || len(rs) != 1 || rs[0].Certificate.Thumbprint != thumb {
		t.Errorf("rotations after the upgrade: %d, %v; want the applied one", len(rs), err)
	}
	if _, err := os.Stat(w.path(`C:\Program Files\WindowsPowerShell\Modules\CertAgent\1.1.0\CertAgent.psd1`)); err != nil {
		t.Errorf("the new module: %v", err)
	}
	if _, err := os.Stat(w.path(`C:\Program Files\WindowsPowerShell\Modules\CertAgent\1.0.0`)); err == nil {
		t.Error("the old module's folder is still there")
	}

	// Downgrade: refused, with the message; the newer version keeps running.
	if code := msiexec("/i", `C:\install\older.msi`); code != 1603%256 {
		t.Errorf("downgrade: exit %d, want 1603 (the Wine loader shows %d)", code, 1603%256)
	}
	// Refused by the launch condition NOT WIX_DOWNGRADE_DETECTED, whose message
	// (TestMSITables) Windows shows and logs; Wine's log has the condition's verdict only.
	if !regexp.MustCompile(`WIX_DOWNGRADE_DETECTED = \{`).MatchString(lastLog) || !strings.Contains(lastLog, "LaunchConditions. Return value 0") {
		t.Errorf("the downgrade was not refused by the launch condition:\n%s", grepLines(lastLog, "DOWNGRADE|LaunchConditions|rror"))
	}
	if st, err := status(w, listen, tokenFile); err != nil || st.Version != "v1.1.0" || w.serviceState() != "RUNNING" {
		t.Errorf("after the refused downgrade: version %q (%v), %s", st.Version, err, w.serviceState())
	}

	// Repair puts back a deleted program file.
	example := w.path(`C:\Program Files\CertAgent\certagent.example.yaml`)
	os.Remove(example)
	// msiexec /i with REINSTALL: Wine's msiexec /f answers 1605 (unknown product) whether
	// given the package or the ProductCode; Windows takes all three (README).
	if code := msiexec("/i", `C:\install\newer.msi`, "REINSTALL=ALL", "REINSTALLMODE=omus"); code != 0 {
		t.Errorf("repair: exit %d", code)
	}
	if _, err := os.Stat(example); err != nil {
		t.Errorf("repair did not put back the example config: %v", err)
	}
	w.waitFor("running after the repair", 60*time.Second, func() bool { return get(listen, "/readyz") == 200 })

	// Uninstall: service, program files, registry and event source go; ProgramData stays.
	if code := msiexec("/x", `C:\install\newer.msi`); code != 0 {
		t.Fatalf("uninstall: exit %d", code)
	}
	if st := w.serviceState(); st != "" {
		t.Errorf("after uninstall sc query says %s", st)
	}
	for _, gone := range []string{`C:\Program Files\CertAgent`, `C:\Program Files\WindowsPowerShell\Modules\CertAgent`} {
		if _, err := os.Stat(w.path(gone)); err == nil {
			t.Errorf("%s is still there", gone)
		}
	}
	for _, key := range []string{`HKLM\SOFTWARE\CertAgent`, `HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\CertAgent`} {
		if v := w.regQuery(key); v != nil {
			t.Errorf("%s is still there: %v", key, v)
		}
	}
	kept, _ := filepath.Glob(filepath.Join(w.path(programData), "drop", "processed", "*_next.cer"))
	for _, p := range []string{configFile, w.path(programData + `\state\certagent.db`), w.path(tokenFile)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("uninstall removed %s", p)
		}
	}
	if len(kept) != 1 {
		t.Errorf("uninstall removed the processed certificate")
	}
	t.Logf("MSI cycle under Wine %s (total %s)", time.Since(t1).Round(100*time.Millisecond), time.Since(t0).Round(100*time.Millisecond))
}

// TestMSIWithoutProperties: installed without the tenant's properties, the service runs
// unconfigured and its status says what to set. (APIPORT alone is given, so that the test
// does not take the default port of this shared machine: the service then writes a config
// holding the port and the three keys, empty, for a person to fill in.)
func TestMSIWithoutProperties(t *testing.T) {
	optIn(t)
	_, newer := msis(t)
	w := newWine(t)
	b, err := os.ReadFile(newer)
	if err != nil {
		t.Fatal(err)
	}
	w.write(`C:\install\newer.msi`, b)
	listen := freePort(t)
	port := listen[strings.LastIndexByte(listen, ':')+1:]
	if out, code := w.run("msiexec", "/i", `C:\install\newer.msi`, "/qn", "APIPORT="+port); code != 0 {
		t.Fatalf("install: exit %d %s", code, out)
	}
	if st := w.serviceState(); st != "RUNNING" {
		t.Fatalf("sc query: %s, want RUNNING", st)
	}
	w.waitFor("standby", 30*time.Second, func() bool { return get(listen, "/livez") == 200 })
	if code := get(listen, "/readyz"); code != 503 {
		t.Errorf("/readyz: %d, want 503", code)
	}
	st, err := status(w, listen, programData+`\state\api.token`)
	if err != nil || len(st.Problems) != 1 || st.Problems[0].Code != health.NotConfigured ||
		!strings.Contains(st.Problems[0].Message, "tenant_id, auth.client_id, target.app_id") {
		t.Errorf("status: %+v, %v; want not_configured naming the three keys", st.Problems, err)
	}
	if out, code := w.run("msiexec", "/x", `C:\install\newer.msi`, "/qn"); code != 0 {
		t.Errorf("uninstall: exit %d %s", code, out)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func grepLines(s, re string) string {
	r := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if r.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
