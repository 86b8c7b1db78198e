//go:build linux

package winsvc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator"
)

const (
	wine64Path = "/usr/lib/wine/wine64"
	// programData is %ProgramData%\CertAgent, where the agent keeps its config and state.
	programData = `C:\ProgramData\CertAgent`
)

// optIn skips the test unless CERTAGENT_WINE=1: each one installs services in a Wine prefix
// of its own and takes tens of seconds.
func optIn(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("CERTAGENT_WINE") != "1" {
		t.Skip("Wine service tests run with CERTAGENT_WINE=1 (make test-wine-service)")
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildExe builds certagent.exe for Windows with version stamped in, into dir.
func buildExe(t *testing.T, dir, version string) string {
	t.Helper()
	exe := filepath.Join(dir, "certagent.exe")
	t0 := time.Now()
	cmd := exec.Command("go", "build", "-ldflags", "-s -w -X main.version="+version, "-o", exe, "./cmd/certagent")
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building certagent.exe: %v\n%s", err, out)
	}
	t.Logf("built certagent.exe %s in %s", version, time.Since(t0).Round(100*time.Millisecond))
	return exe
}

// wine is a Wine prefix of a test's own, with a wineserver that lasts until the test ends
// (Debian's wrapper would end it, and every service, a second after the last command).
type wine struct {
	t   *testing.T
	dir string
	env []string
}

// newWine copies a pristine prefix, made once by scripts/wine/prefix.sh and cached, into a
// temporary folder (a copy takes under a second; making one, about 20).
func newWine(t *testing.T) *wine {
	t.Helper()
	if _, err := os.Stat(wine64Path); err != nil {
		t.Fatal("wine64 is missing: apt-get install -y --no-install-recommends wine64 wine (.ci/run does)")
	}
	tmpl := cachedPrefix(t)
	dir := filepath.Join(t.TempDir(), "prefix")
	t0 := time.Now()
	if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the prefix: %v\n%s", err, out)
	}
	w := &wine{t: t, dir: dir, env: append(os.Environ(),
		"WINEPREFIX="+dir, "WINEDEBUG=-all", "WINEARCH=win64", "WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=", "WAYLAND_DISPLAY=")}
	// Not CombinedOutput: the server forks into the background holding its output open.
	srv := exec.Command("wineserver", "-p")
	srv.Env = w.env
	srv.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := srv.Run(); err != nil {
		t.Fatalf("wineserver -p: %v", err)
	}
	t.Cleanup(func() {
		k := exec.Command("wineserver", "-k")
		k.Env = w.env
		k.Run()
	})
	t.Logf("fresh Wine prefix in %s", time.Since(t0).Round(100*time.Millisecond))
	return w
}

// cachedPrefix returns the pristine prefix, making it when the recipe, the shim or Wine
// changed.
func cachedPrefix(t *testing.T) string {
	t.Helper()
	root := moduleRoot(t)
	h := sha256.New()
	for _, f := range []string{"scripts/wine/prefix.sh", "scripts/wine/bcryptprimitives.c"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	ver, err := exec.Command(wine64Path, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	h.Write(ver)
	cache := os.Getenv("CERTAGENT_WINE_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(base, "certagent-wine")
	}
	dir := filepath.Join(cache, fmt.Sprintf("svc-%x", h.Sum(nil)[:6]))
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "svc.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".ready")); err == nil {
		return dir
	}
	t0 := time.Now()
	if out, err := exec.Command(filepath.Join(root, "scripts/wine/prefix.sh"), dir).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("scripts/wine/prefix.sh: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, ".ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("made the cached prefix %s in %s", dir, time.Since(t0).Round(time.Second))
	return dir
}

// run runs a Windows program in the prefix and returns its output and exit code. The Wine
// loader returns the code modulo 256 (msiexec's 1603 arrives as 67).
func (w *wine) run(args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wine64Path, args...)
	cmd.Env = w.env
	// A file, not a pipe: the Wine processes a command starts (services.exe, the service)
	// inherit its output and keep a pipe open long after the command ended.
	f, err := os.CreateTemp(w.t.TempDir(), "out")
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return strings.ReplaceAll(string(out), "\r", ""), code
}

// must runs a Windows program that must succeed.
func (w *wine) must(args ...string) string {
	w.t.Helper()
	out, code := w.run(args...)
	if code != 0 {
		w.t.Fatalf("wine %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// path returns the Linux path of a C: path.
func (w *wine) path(win string) string {
	rest, ok := strings.CutPrefix(win, `C:\`)
	if !ok {
		w.t.Fatalf("%s is not on C:", win)
	}
	return filepath.Join(w.dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(rest, `\`, "/")))
}

// write writes a file at a C: path.
func (w *wine) write(win string, data []byte) {
	w.t.Helper()
	p := w.path(win)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// serviceState returns the STATE of `sc query CertAgent` (RUNNING, STOPPED...), or "" when
// there is no such service.
func (w *wine) serviceState() string {
	out, code := w.run("sc", "query", "CertAgent")
	if code != 0 {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "STATE" {
			f := strings.Fields(v)
			if len(f) == 2 {
				return f[1]
			}
		}
	}
	return ""
}

// regQuery returns the values of a registry key as name → "TYPE data", or nil when the key
// does not exist.
func (w *wine) regQuery(key string) map[string]string {
	out, code := w.run("reg", "query", key)
	if code != 0 {
		return nil
	}
	vals := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], "REG_") && !strings.HasPrefix(line, "HKEY_") {
			vals[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return vals
}

// waitFor polls cond until it holds, or fails the test after limit with the agent's log.
func (w *wine) waitFor(what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(w.path(programData + `\certagent.log`))
			w.t.Fatalf("timed out after %s waiting for %s; sc query: %s; agent log:\n%s", limit, what, w.serviceState(), log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// tenant is the emulated tenant, served from the test process on 127.0.0.1, which Wine's
// programs reach as Windows programs would.
type tenant struct {
	emu  *emulator.Emulator
	demo emulator.DemoInfo
}

func newTenant(t *testing.T) *tenant {
	t.Helper()
	emu, err := emulator.New(filepath.Join(t.TempDir(), "emulator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	demo, ok := emu.DemoInfo()
	if !ok {
		t.Fatal("no demo tenant")
	}
	return &tenant{emu: emu, demo: demo}
}

// registerCredential makes the agent's key pair in the Windows state folder, as `certagent
// credential init` does, and uploads its certificate to the agent's app, as an admin would.
func (tn *tenant) registerCredential(t *testing.T, w *wine, stateDir string) {
	t.Helper()
	c, _, err := credential.Init(credential.Files{Cert: w.path(stateDir + `\agent.pem`), Key: w.path(stateDir + `\agent.key`)},
		credential.Options{CommonName: "certagent wine", Bits: 2048, Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.emu.AddKeyCredential(tn.demo.AgentAppID, emulator.SeedKeyCredential{Certificate: c.Cert.Raw, DisplayName: "certagent wine"}); err != nil {
		t.Fatal(err)
	}
	tn.emu.Settle()
}

// hasCert reports whether the target app holds the certificate.
func (tn *tenant) hasCert(t *testing.T, thumb string) bool {
	app, err := tn.emu.Application(tn.demo.TargetAppID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range app.KeyCredentials {
		if k.Thumbprint == thumb {
			return true
		}
	}
	return false
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get returns the status code of GET http://addr/path (0 when nothing answers).
func get(addr, path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// status reads the agent's status through its API with the token from the state folder.
func status(w *wine, addr, tokenFile string) (apitype.Status, error) {
	tok, err := client.ReadTokenFile(w.path(tokenFile))
	if err != nil {
		return apitype.Status{}, err
	}
	c, err := client.New("http://"+addr, tok)
	if err != nil {
		return apitype.Status{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Status(ctx)
}
