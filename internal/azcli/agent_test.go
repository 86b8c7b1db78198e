package azcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator"
)

// This file runs the certagent binary against the in-process emulator the way
// internal/devenv and internal/e2e do, without importing them: they link the agent and
// msgraph-sdk-go, which would make this package's -race test build as heavy as the agent's.

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	binOnce.Do(func() {}) // waits for a build still running
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds ./cmd/certagent once per test binary. Tests call it early in a
// goroutine so that the build overlaps az's set-up; certagentBinary waits for it.
func buildBinary() (string, error) {
	binOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("finding the module root: %v", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if binDir, binErr = os.MkdirTemp("", "certagent-azcli-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "certagent")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/certagent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building certagent: %v\n%s", err, out)
		}
	})
	return binPath, binErr
}

// certagentBinary returns the certagent binary, building it if need be.
func certagentBinary(tb testing.TB) string {
	tb.Helper()
	p, err := buildBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// tenant is a fresh demo tenant served by an in-process emulator.
type tenant struct {
	emu  *emulator.Emulator
	demo emulator.DemoInfo
	dir  string
}

func newTenant(tb testing.TB) *tenant {
	tb.Helper()
	dir := tb.TempDir()
	emu, err := emulator.New(filepath.Join(dir, "emulator"), emulator.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	demo, ok := emu.DemoInfo()
	if !ok {
		tb.Fatal("the emulator made no demo tenant")
	}
	return &tenant{emu: emu, demo: demo, dir: dir}
}

// app returns the application appID as the emulator holds it.
func (tn *tenant) app(tb testing.TB, appID string) emulator.ApplicationView {
	tb.Helper()
	a, err := tn.emu.Application(appID)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// requestLog renders the emulator's request log from index from on, one line a request.
func (tn *tenant) requestLog(from int) string {
	reqs := tn.emu.Requests()
	var b strings.Builder
	for i := from; i < len(reqs); i++ {
		r := reqs[i]
		q := ""
		if r.Query != "" {
			q = "?" + r.Query
		}
		fmt.Fprintf(&b, "  %s %-6s %s%s -> %d", r.Time.Format("15:04:05.000"), r.Method, r.Path, q, r.Status)
		if r.ErrorCode != "" {
			fmt.Fprintf(&b, " %s", r.ErrorCode)
		}
		if r.Fault != "" {
			fmt.Fprintf(&b, " fault=%q", r.Fault)
		}
		fmt.Fprintf(&b, " app=%s ua=%q\n", r.AppID, r.UserAgent)
	}
	return b.String()
}

// agentProcess is `certagent run` against a tenant.
type agentProcess struct {
	cfg    *config.Config
	client *client.Client
	cmd    *exec.Cmd
	done   chan struct{}

	// logMu protects log.
	logMu sync.Mutex
	log   bytes.Buffer
}

// startAgent sets certagent up as devenv does (its own credential, made by `certagent
// credential init` and registered on the agent's app) and runs it. proxyURL goes into its
// proxy variables, so that a call off loopback would fail.
func startAgent(tb testing.TB, tn *tenant, proxyURL string) *agentProcess {
	tb.Helper()
	bin := certagentBinary(tb)
	dir := filepath.Join(tn.dir, "agent")
	cfg := config.Default()
	cfg.File = filepath.Join(dir, "certagent.yaml")
	cfg.TenantID = tn.demo.TenantID
	cfg.Cloud.Name = config.CloudCustom
	cfg.Cloud.AuthorityHost = tn.emu.URL() + "/"
	cfg.Cloud.GraphURL = tn.emu.URL()
	cfg.Cloud.CAFile = tn.emu.CAFile()
	cfg.Auth.ClientID = tn.demo.AgentAppID
	cfg.Auth.KeyBits = 2048 // quicker to generate than the default; the size is not under test here
	cfg.Target.AppID = tn.demo.TargetAppID
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.DropFolder = filepath.Join(dir, "drop")
	cfg.Auth.CertificateFile = filepath.Join(cfg.StateDir, "agent.pem")
	cfg.Auth.KeyFile = filepath.Join(cfg.StateDir, "agent.key")
	cfg.API.TokenFile = filepath.Join(cfg.StateDir, "api.token")
	cfg.API.Listen = freeLoopbackAddr(tb)
	// A short settle window keeps the drop-folder step quick; settling is tested in
	// agent/intake.
	cfg.Intake.Settle = config.Duration(150 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("agent config: %v", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(cfg.File, b, 0o600); err != nil {
		tb.Fatal(err)
	}

	// The agent's own credential, as an admin makes it, registered as an admin would.
	out, err := exec.Command(bin, "credential", "init", "-c", cfg.File, "--json").CombinedOutput()
	if err != nil {
		tb.Fatalf("certagent credential init: %v\n%s", err, out)
	}
	var init struct {
		CertificateFile string `json:"certificateFile"`
	}
	if err := json.Unmarshal(out, &init); err != nil || init.CertificateFile == "" {
		tb.Fatalf("certagent credential init --json printed %q: %v", out, err)
	}
	der := readCertFile(tb, init.CertificateFile)
	if _, err := tn.emu.AddKeyCredential(tn.demo.AgentAppID, emulator.SeedKeyCredential{Certificate: der, DisplayName: "certagent sign-in"}); err != nil {
		tb.Fatal(err)
	}

	a := &agentProcess{cfg: cfg, done: make(chan struct{})}
	a.cmd = exec.Command(bin, "run", "-c", cfg.File)
	a.cmd.Env = append(os.Environ(), "HTTPS_PROXY="+proxyURL, "HTTP_PROXY="+proxyURL, "NO_PROXY=127.0.0.1,localhost")
	pr, pw := io.Pipe()
	a.cmd.Stdout, a.cmd.Stderr = pw, pw
	if err := a.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			a.logMu.Lock()
			a.log.Write(s.Bytes())
			a.log.WriteByte('\n')
			a.logMu.Unlock()
		}
		io.Copy(io.Discard, pr)
	})
	go func() {
		a.cmd.Wait()
		pw.Close()
		readers.Wait()
		close(a.done)
	}()
	tb.Cleanup(a.kill)

	var tok []byte
	a.waitFor(tb, "the API token file", 30*time.Second, func() bool {
		tok, err = client.ReadTokenFile(cfg.API.TokenFile)
		return err == nil
	})
	if a.client, err = client.New("http://"+cfg.API.Listen, tok, client.WithActor("azcli-test")); err != nil {
		tb.Fatal(err)
	}
	a.waitFor(tb, "the agent to be ready", 30*time.Second, func() bool {
		_, err := a.client.Ready(context.Background())
		return err == nil
	})
	return a
}

func readCertFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}

func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Log returns what the agent printed so far.
func (a *agentProcess) Log() string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.log.String()
}

func (a *agentProcess) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// kill ends the process (if it runs) and waits for it.
func (a *agentProcess) kill() {
	if a.cmd.Process != nil {
		a.cmd.Process.Kill()
		<-a.done
	}
}

// waitFor polls cond every 5 ms until it holds or d passes; then, or if the agent exits, the
// test fails with the agent's log. d bounds a hang: it is not a timing assertion.
func (a *agentProcess) waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if a.exited() {
			tb.Fatalf("the agent exited while waiting for %s; its log:\n%s", what, a.Log())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s; the agent's log:\n%s", d, what, a.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled reports whether a rotation state is final for a submission: applied or later, or
// refused.
func settled(state string) bool {
	switch state {
	case "applied", "confirmed", "failed", "rejected":
		return true
	}
	return false
}

// waitSettled polls the rotation id until it is settled and returns it.
func (a *agentProcess) waitSettled(tb testing.TB, id string, d time.Duration) apitype.Rotation {
	tb.Helper()
	var r apitype.Rotation
	a.waitFor(tb, "rotation "+id+" to be applied", d, func() bool {
		var err error
		r, err = a.client.Rotation(context.Background(), id)
		if err != nil {
			tb.Fatalf("reading rotation %s: %v", id, err)
		}
		return settled(r.State)
	})
	return r
}

// waitThumbprint waits until the agent has a settled rotation for thumbprint and returns it.
func (a *agentProcess) waitThumbprint(tb testing.TB, thumbprint string, d time.Duration) apitype.Rotation {
	tb.Helper()
	var found apitype.Rotation
	a.waitFor(tb, "a rotation of "+thumbprint, d, func() bool {
		rs, err := a.client.Rotations(context.Background(), "")
		if err != nil {
			tb.Fatalf("listing rotations: %v", err)
		}
		for _, r := range rs {
			if r.Certificate.Thumbprint == thumbprint && settled(r.State) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// thumbprintsOf returns the thumbprints of creds, in order.
func thumbprintsOf(creds []emulator.KeyCredentialView) []string {
	var out []string
	for _, c := range creds {
		out = append(out, c.Thumbprint)
	}
	return out
}

// count returns how many of creds hold the certificate der.
func count(creds []emulator.KeyCredentialView, der []byte) int {
	thumb := certs.ThumbprintSHA1(der)
	n := 0
	for _, c := range creds {
		if c.Thumbprint == thumb {
			n++
		}
	}
	return n
}
