// Package e2e runs certagent as real processes against the emulated tenant, for the
// end-to-end tests, the crash tests and the benchmarks. Tests only: shipped code never
// imports it.
//
// The emulator runs inside the test process (so a test can inject faults and read the
// tenant directly); the agent runs as a child process built from ./cmd/certagent, so a test
// can kill -9 it at any instant and measure its memory.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/devenv"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// build builds ./cmd/certagent into a temporary folder once per test binary; callers that
// come while the build runs wait for it.
func build() (string, error) {
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = fmt.Errorf("finding the module root: %v", err)
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "certagent-e2e-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "certagent")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/certagent")
		// As a release is built (make build, build-linux, the .deb): without cgo, a static
		// binary with Go's own resolver, so the tests and benchmarks run what ships.
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building certagent: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Binary builds certagent once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BuildInBackground starts building certagent (as Binary does) and returns at once, so that
// the build overlaps a test's other set-up; Binary and StartAgent then wait for it. A test
// binary that calls it should call RemoveBinary from its TestMain, so that a build still
// running when the tests end is waited for and removed.
func BuildInBackground() { go build() }

// RemoveBinary waits for a build still running and removes the folder holding the binary, if
// one was built. Call it from TestMain after m.Run; Binary must not be called after it.
func RemoveBinary() {
	buildOnce.Do(func() {}) // waits for a build still running
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Env is an emulated tenant (in this process) and a config for an agent process.
type Env struct {
	*devenv.Env
	Dir string
	t   testing.TB
}

// NewEnv sets up the demo tenant and an agent config in a temporary folder. edit may tune
// the config (a shorter settle window, say) before it is written.
func NewEnv(t testing.TB, edit func(*config.Config)) *Env {
	t.Helper()
	return NewEnvWith(t, edit)
}

// NewEnvWith is NewEnv with options for the emulator (a short token lifetime, a clock).
func NewEnvWith(t testing.TB, edit func(*config.Config), emu ...emulator.Option) *Env {
	t.Helper()
	dir := t.TempDir()
	e, err := devenv.Setup(devenv.Options{Dir: dir, APIListen: "127.0.0.1:0", Edit: edit, Emulator: emu})
	if err != nil {
		t.Fatal(err)
	}
	// The agent process binds the API address itself.
	e.APIListener.Close()
	e.APIListener = nil
	t.Cleanup(func() { e.Close() })
	return &Env{Env: e, Dir: dir, t: t}
}

// Emu returns the emulator.
func (e *Env) Emu() *emulator.Emulator { return e.Emulator }

// Creds returns the key credentials of the application appID (appId or object id) as the
// emulator's primary holds them: the truth, not a read that may lag.
func (e *Env) Creds(appID string) []emulator.KeyCredentialView {
	e.t.Helper()
	v, err := e.Emulator.Application(appID)
	if err != nil {
		e.t.Fatalf("reading application %s from the emulator: %v", appID, err)
	}
	return v.KeyCredentials
}

// CountThumb counts the credentials in creds with the thumbprint thumb.
func CountThumb(creds []emulator.KeyCredentialView, thumb string) int {
	n := 0
	for _, c := range creds {
		if strings.EqualFold(c.Thumbprint, thumb) {
			n++
		}
	}
	return n
}

// Agent is a certagent process.
type Agent struct {
	env  *Env
	opts agentOptions
	cmd  *exec.Cmd
	done chan struct{}

	// logMu protects log.
	logMu sync.Mutex
	log   bytes.Buffer

	// Client is the agent's API client.
	Client *client.Client
}

// AgentOption tunes the agent process StartAgent runs.
type AgentOption func(*agentOptions)

type agentOptions struct {
	env    []string
	actor  string
	prefix []string
}

// WithEnv adds environment variables ("KEY=value") to those the agent process inherits from
// the test process; they win over inherited ones of the same name.
func WithEnv(kv ...string) AgentOption {
	return func(o *agentOptions) { o.env = append(o.env, kv...) }
}

// WithCommandPrefix runs the agent under another program, such as setpriv dropping
// capabilities: the process started is prefix[0] with prefix[1:], then certagent and its
// arguments. Kill ends the wrapper, which must exec certagent (setpriv does).
func WithCommandPrefix(prefix ...string) AgentOption {
	return func(o *agentOptions) { o.prefix = prefix }
}

// WithActor makes Agent.Client act on behalf of name (client.WithActor): the agent's audit
// log records the test's calls under it.
func WithActor(name string) AgentOption {
	return func(o *agentOptions) { o.actor = name }
}

// StartAgent runs `certagent run -c <config>` and waits until its API answers /readyz.
func (e *Env) StartAgent(opts ...AgentOption) *Agent {
	e.t.Helper()
	a := &Agent{env: e}
	for _, o := range opts {
		o(&a.opts)
	}
	a.start()
	e.t.Cleanup(func() { a.Kill() })
	return a
}

func (a *Agent) start() {
	t := a.env.t
	t.Helper()
	args := append(append([]string{}, a.opts.prefix...), Binary(t), "run", "-c", a.env.Config.File)
	a.cmd = exec.Command(args[0], args[1:]...)
	if len(a.opts.env) > 0 {
		a.cmd.Env = append(os.Environ(), a.opts.env...)
	}
	pr, pw := io.Pipe()
	a.cmd.Stdout, a.cmd.Stderr = pw, pw
	a.done = make(chan struct{})
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reader sync.WaitGroup
	reader.Go(func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			a.logMu.Lock()
			a.log.Write(s.Bytes())
			a.log.WriteByte('\n')
			a.logMu.Unlock()
		}
		// After a line too long for s, keep draining, or the agent would block writing.
		io.Copy(io.Discard, pr)
	})
	go func() {
		a.cmd.Wait()
		pw.Close()
		reader.Wait() // so that Log holds all the agent printed once it has exited
		close(a.done)
	}()
	tok := a.waitToken()
	var copts []client.Option
	if a.opts.actor != "" {
		copts = append(copts, client.WithActor(a.opts.actor))
	}
	c, err := client.New("http://"+a.env.Config.API.Listen, tok, copts...)
	if err != nil {
		t.Fatal(err)
	}
	a.Client = c
	a.WaitFor("agent ready", 30*time.Second, func() bool {
		_, err := c.Ready(context.Background())
		return err == nil
	})
}

func (a *Agent) waitToken() []byte {
	var tok []byte
	a.WaitFor("API token file", 30*time.Second, func() bool {
		b, err := client.ReadTokenFile(a.env.Config.API.TokenFile)
		tok = b
		return err == nil
	})
	return tok
}

// Log returns what the agent printed so far.
func (a *Agent) Log() string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.log.String()
}

// PID returns the process id.
func (a *Agent) PID() int { return a.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (a *Agent) Exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Kill ends the process with SIGKILL (kill -9: no chance to clean up) and waits for it.
func (a *Agent) Kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.cmd.Process.Kill()
	<-a.done
}

// Stop asks the process to stop (SIGTERM; on Windows, a kill) and waits up to d.
func (a *Agent) Stop(d time.Duration) error {
	if runtime.GOOS == "windows" {
		a.Kill()
		return nil
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
		if code := a.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("agent exited with %d\n%s", code, a.Log())
		}
		return nil
	case <-time.After(d):
		a.Kill()
		return fmt.Errorf("agent did not stop within %s", d)
	}
}

// Restart starts the process again with the same config and options (after Kill or Stop).
func (a *Agent) Restart() {
	a.start()
}

// WaitFor polls cond every 20 ms until it holds or d passes (then the test fails, with the
// agent's log). It fails the test that made the Env; in a subtest use WaitForT.
func (a *Agent) WaitFor(what string, d time.Duration, cond func() bool) {
	a.env.t.Helper()
	a.WaitForT(a.env.t, what, d, cond)
}

// WaitForT is WaitFor failing t: a subtest must fail itself, as only the goroutine running
// a test may call its FailNow. d bounds a hang; it is not a timing assertion.
func (a *Agent) WaitForT(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if a.Exited() {
			t.Fatalf("agent exited while waiting for %s:\n%s", what, a.Log())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; agent log:\n%s", d, what, a.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Rotations returns the agent's rotations.
func (a *Agent) Rotations() []apitype.Rotation {
	rs, err := a.Client.Rotations(context.Background(), "")
	if err != nil {
		a.env.t.Fatalf("listing rotations: %v", err)
	}
	return rs
}

// WaitRotation waits until a rotation for thumbprint is in state, and returns it.
func (a *Agent) WaitRotation(thumbprint, state string, d time.Duration) apitype.Rotation {
	var found apitype.Rotation
	a.WaitFor("rotation "+thumbprint+" "+state, d, func() bool {
		for _, r := range a.Rotations() {
			if r.Certificate.Thumbprint == thumbprint && r.State == state {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// RSS returns the process's resident set size and its peak (VmRSS and VmHWM, bytes). Linux
// only.
func RSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n * 1024
		case "VmHWM:":
			peak = n * 1024
		}
	}
	return rss, peak, nil
}

// FreePort returns a loopback address that was free a moment ago.
func FreePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// CountFiles counts the regular files directly in dir whose names do not end in
// .reason.txt, nor start with "." (the temporary file a reason note is written to before it
// is renamed into place: counting it made TestThousandFiles see the archive full while a
// file was still being filed).
func CountFiles(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".reason.txt") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
