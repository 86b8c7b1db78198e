package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/store"
)

// startupEnv is a state folder with a valid credential and a config that points at nothing
// (no start-up step reaches the network).
type startupEnv struct {
	dir, state, config, listen string
}

func newStartupEnv(t *testing.T) *startupEnv {
	t.Helper()
	dir := t.TempDir()
	env := &startupEnv{dir: dir, state: filepath.Join(dir, "state"), config: filepath.Join(dir, "certagent.yaml")}
	if err := os.MkdirAll(env.state, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := credential.Generate(credential.Options{CommonName: "certagent test", Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := credential.Save(credential.Files{Cert: filepath.Join(env.state, "agent.pem"), Key: filepath.Join(env.state, "agent.key")}, c); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.listen = ln.Addr().String()
	ln.Close()
	env.writeConfig(t, "")
	return env
}

func (env *startupEnv) writeConfig(t *testing.T, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`tenant_id: 11111111-1111-1111-1111-111111111111
cloud:
  name: custom
  authority_host: https://127.0.0.1:9/
  graph_url: https://127.0.0.1:9/
auth:
  client_id: 22222222-2222-2222-2222-222222222222
target:
  app_id: 33333333-3333-3333-3333-333333333333
state_dir: %q
drop_folder: %q
api:
  listen: %s
%s`, env.state, filepath.Join(env.dir, "drop"), env.listen, extra)
	if err := os.WriteFile(env.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runStartup runs `certagent run` in-process, expecting it to fail at start-up. A panic is
// caught and reported as a test failure (under a service manager it would be a crash loop
// with a stack trace).
func runStartup(t *testing.T, env *startupEnv) (stderr string, code int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("certagent run panicked: %v", p)
				code = -1
			}
		}()
		_, stderr, code = runCmd(t, "run", "-c", env.config)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("certagent run did not fail at start-up")
	}
	return stderr, code
}

// TestStartupFailures: every start-up failure ends in one clear line naming the file and
// what to do, exit 1, and no panic.
func TestStartupFailures(t *testing.T) {
	db := func(env *startupEnv) string { return filepath.Join(env.state, "certagent.db") }
	tests := []struct {
		name  string
		setup func(t *testing.T, env *startupEnv)
		want  []string // each must appear in stderr
	}{
		{"truncated store", func(t *testing.T, env *startupEnv) {
			s, err := store.Open(db(env))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			b, _ := os.ReadFile(db(env))
			os.WriteFile(db(env), b[:len(b)/3], 0o600)
		}, []string{"certagent.db", "cut short", "certagent store rebuild"}},
		{"random bytes as store", func(t *testing.T, env *startupEnv) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7 + i/13)
			}
			os.WriteFile(db(env), b, 0o600)
		}, []string{"certagent.db", "certagent store rebuild"}},
		{"5-byte store", func(t *testing.T, env *startupEnv) {
			os.WriteFile(db(env), []byte("hello"), 0o600)
		}, []string{"certagent.db", "certagent store rebuild"}},
		{"emptied store", func(t *testing.T, env *startupEnv) {
			s, err := store.Open(db(env))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			os.Truncate(db(env), 0)
		}, []string{"certagent.db", "empty", "certagent store rebuild"}},
		{"store missing beside the token", func(t *testing.T, env *startupEnv) {
			os.WriteFile(filepath.Join(env.state, "api.token"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
		}, []string{"certagent.db", "missing", "api.token", "certagent store rebuild"}},
		{"store held by another process", func(t *testing.T, env *startupEnv) {
			s, err := store.Open(db(env))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
		}, []string{"certagent.db", "in use", "certagent stop"}},
		{"state folder is a file", func(t *testing.T, env *startupEnv) {
			os.RemoveAll(env.state)
			os.WriteFile(env.state, []byte("not a folder"), 0o600)
		}, []string{stateMarker, "state_dir"}},
		{"token path is a directory", func(t *testing.T, env *startupEnv) {
			os.MkdirAll(filepath.Join(env.state, "api.token"), 0o700)
		}, []string{"api.token", "remove"}},
		{"unreadable agent key", func(t *testing.T, env *startupEnv) {
			os.WriteFile(filepath.Join(env.state, "agent.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
		}, []string{"agent.key", "certagent credential init"}},
		{"API port taken", func(t *testing.T, env *startupEnv) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			env.listen = ln.Addr().String()
			env.writeConfig(t, "")
		}, []string{"127.0.0.1:", "api.listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newStartupEnv(t)
			tc.setup(t, env)
			stderr, code := runStartup(t, env)
			t.Logf("stderr: %s", stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if w == stateMarker {
					w = env.state
				}
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr shows a stack trace:\n%s", stderr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n") + 1; n > 3 {
				t.Errorf("stderr has %d lines, want one clear line:\n%s", n, stderr)
			}
		})
	}
}

// stateMarker stands for the test's state folder in want lists.
const stateMarker = "\x00state"
