//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/health"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/internal/certtest"
)

// serviceProc is `certagent run --service` as systemd runs it: $NOTIFY_SOCKET set.
type serviceProc struct {
	cmd    *exec.Cmd
	notify chan string
	done   chan struct{}
	mu     sync.Mutex
	out    bytes.Buffer
}

func startService(t *testing.T, configFile string) *serviceProc {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &serviceProc{notify: make(chan string, 10), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			p.notify <- string(buf[:n])
		}
	}()
	p.cmd = exec.Command(Binary(t), "run", "--service", "-c", configFile)
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "JOURNAL_STREAM=")
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			p.mu.Lock()
			p.out.Write(append(s.Bytes(), '\n'))
			p.mu.Unlock()
		}
	}()
	go func() { p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *serviceProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *serviceProc) wantNotify(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-p.notify:
		if got != want {
			t.Fatalf("systemd got %q, want %q; log:\n%s", got, want, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("systemd never got %q; log:\n%s", want, p.log())
	case <-p.done:
		t.Fatalf("the service exited before %q; log:\n%s", want, p.log())
	}
}

func (p *serviceProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("the service exited while waiting for %s; log:\n%s", what, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServiceBeforeConfigured runs the service as systemd would, before it is configured:
// it tells systemd it is ready, serves /livez, answers /readyz 503 and says what is missing;
// then, without a restart, it picks up a config whose agent app is not registered
// (graph_unreachable with the AADSTS code, still not ready), then the right one, and applies
// a dropped certificate. It stops on SIGTERM with STOPPING=1.
func TestServiceBeforeConfigured(t *testing.T) {
	e := NewEnv(t, fastSettle)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Config.API.Listen = l.Addr().String()
	l.Close()
	good, err := e.Config.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := e.Config.File
	rewrite := func(edit func(c *config.Config)) {
		t.Helper()
		c, err := config.Parse(file, good)
		if err != nil {
			t.Fatal(err)
		}
		edit(c)
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, file, b)
	}
	rewrite(func(c *config.Config) { c.Auth.ClientID, c.Target.AppID = "", "" })

	p := startService(t, file)
	p.wantNotify(t, "READY=1")
	tok, err := client.ReadTokenFile(e.Config.API.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("http://"+e.Config.API.Listen, tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Live(ctx); err != nil {
		t.Fatalf("/livez on standby: %v", err)
	}
	if _, err := c.Ready(ctx); !client.IsCode(err, apitype.CodeNotReady) {
		t.Errorf("/readyz on standby = %v, want 503 not_ready", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 1 || st.Problems[0].Code != health.NotConfigured ||
		!strings.Contains(st.Problems[0].Message, "auth.client_id, target.app_id") {
		t.Errorf("standby problems %+v, want not_configured naming auth.client_id and target.app_id", st.Problems)
	}

	// The agent's app is not registered in the tenant: the agent runs, Entra refuses it.
	rewrite(func(c *config.Config) { c.Auth.ClientID = "0badc0de-0000-4000-8000-000000000000" })
	var problem apitype.StatusProblem
	p.waitFor(t, "graph_unreachable", func() bool {
		st, err := c.Status(ctx)
		for _, pr := range st.Problems {
			if err == nil && pr.Code == health.GraphUnreachable {
				problem = pr
				return true
			}
		}
		return false
	})
	if !strings.Contains(problem.Message, "AADSTS") || problem.Severity != health.Critical {
		t.Errorf("graph_unreachable = %+v, want a critical problem with the AADSTS code", problem)
	}
	if _, err := c.Ready(ctx); !client.IsCode(err, apitype.CodeNotReady) {
		t.Errorf("/readyz while Entra refuses the agent = %v, want 503", err)
	}

	// The right config: ready, and it works.
	writeFile(t, file, good)
	p.waitFor(t, "ready", func() bool { _, err := c.Ready(ctx); return err == nil })
	next := certtest.New(time.Now(), certtest.CommonName("provider via the service"))
	writeFile(t, filepath.Join(e.Config.DropFolder, "next.cer"), next.PEM())
	p.waitFor(t, "applied", func() bool { return countThumb(appCreds(t, e), certs.ThumbprintSHA1(next.DER)) == 1 })

	p.cmd.Process.Signal(os.Interrupt)
	p.wantNotify(t, "STOPPING=1")
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; log:\n%s", code, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop")
	}
	for _, ev := range []string{"event=not_configured", "event=started", "event=rotation_applied", "event=stopped"} {
		if !strings.Contains(p.log(), ev) {
			t.Errorf("the log lacks %s:\n%s", ev, p.log())
		}
	}
}

// TestServiceConfigInvalid: a config that cannot be parsed stops the service with exit
// status 78 (no restart by systemd) and the error with file and line.
func TestServiceConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "certagent.yaml")
	writeFile(t, file, []byte("tenant_id: contoso.onmicrosoft.com\nstate_dir: "+dir+"\napi:\n  listn: 127.0.0.1:1\n"))
	p := startService(t, file)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop on an invalid config")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 78 {
		t.Errorf("exit %d, want 78", code)
	}
	if !strings.Contains(p.log(), file+":4: api.listn") || !strings.Contains(p.log(), "event=config_invalid") {
		t.Errorf("the log does not name file:line and the key:\n%s", p.log())
	}
	select {
	case n := <-p.notify:
		t.Errorf("systemd got %q from a service that cannot start", n)
	default:
	}
}
