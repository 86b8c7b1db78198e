package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/internal/devenv"
	"github.com/aucloud/certagent/internal/syncbuf"
)

// devSetup prepares `certagent dev`'s environment (an emulated tenant, the agent's
// credential registered on it, a config) without starting the agent: commands run against
// it in-process with -c env.Config.File.
func testDevEnv(t *testing.T, edit func(*config.Config)) *devenv.Env {
	t.Helper()
	env, err := devenv.Setup(devenv.Options{Dir: t.TempDir(), APIListen: "127.0.0.1:0", Edit: func(c *config.Config) {
		c.Intake.Settle = config.Duration(100 * time.Millisecond)
		if edit != nil {
			edit(c)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	// `certagent run` listens on api.listen itself.
	env.APIListener.Close()
	env.APIListener = nil
	t.Cleanup(func() { env.Close() })
	return env
}

// runningAgent is `certagent run` running in-process.
type runningAgent struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int
	stderr *syncbuf.Buffer
	client *client.Client
}

// startRun runs `certagent run -c cfg.File` in-process and waits until its API is ready.
func startRun(t *testing.T, cfg *config.Config) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{t: t, cancel: cancel, done: make(chan int, 1), stderr: &syncbuf.Buffer{}}
	go func() {
		env := &cmdEnv{stdout: &syncbuf.Buffer{}, stderr: ra.stderr, getenv: func(string) string { return "" }}
		ra.done <- exitCode(env, dispatch(ctx, env, []string{"run", "-c", cfg.File}))
	}()
	t.Cleanup(ra.stop)
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case code := <-ra.done:
			ra.done <- code
			t.Fatalf("certagent run exited %d before it was ready:\n%s", code, ra.stderr)
		default:
		}
		if tok, err := client.ReadTokenFile(cfg.API.TokenFile); err == nil {
			c, err := client.New("http://"+cfg.API.Listen, tok, client.WithActor("tester"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Ready(context.Background()); err == nil {
				ra.client = c
				return ra
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("certagent run not ready after a minute:\n%s", ra.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the agent and checks that it exited cleanly.
func (ra *runningAgent) stop() {
	if ra.cancel == nil {
		return
	}
	ra.cancel()
	ra.cancel = nil
	if code := <-ra.done; code != 0 {
		ra.t.Errorf("certagent run exited %d:\n%s", code, ra.stderr)
	}
}

// waitRotation waits until the rotation of the certificate with thumbprint is in state.
func (ra *runningAgent) waitRotation(thumb, state string) apitype.Rotation {
	ra.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rs, err := ra.client.Rotations(context.Background(), "")
		if err != nil {
			ra.t.Fatal(err)
		}
		for _, r := range rs {
			if r.Certificate.Thumbprint == thumb && r.State == state {
				return r
			}
		}
		if time.Now().After(deadline) {
			ra.t.Fatalf("no rotation of %s in state %s after a minute: %+v", thumb, state, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLines parses --json check output: one object per line.
func checkLines(t *testing.T, out string) map[string]check {
	t.Helper()
	m := map[string]check{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var c check
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %q is not a check: %v", l, err)
		}
		if c.Status != statusOK && c.Status != statusWarn && c.Status != statusFail {
			t.Errorf("check %s has status %q", c.Check, c.Status)
		}
		if c.Status != statusOK && c.Fix == "" && !strings.HasPrefix(c.Message, "not checked") {
			t.Errorf("check %s (%s) has no fix: %s", c.Check, c.Status, c.Message)
		}
		m[c.Check] = c
	}
	return m
}

// writeConfigCopy writes cfg, changed by edit, to a new file and returns its path.
func writeConfigCopy(t *testing.T, cfg *config.Config, edit func(*config.Config)) string {
	t.Helper()
	c := *cfg
	c.File = filepath.Join(t.TempDir(), "certagent.yaml")
	edit(&c)
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.File, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return c.File
}
