package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
)

// storeWith writes a store with n audit entries and one rotation into env's state folder.
func storeWith(t *testing.T, env *startupEnv, n int) string {
	t.Helper()
	path := filepath.Join(env.state, "certagent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	der := []byte("not really a certificate, but the store does not care")
	r := rotation.Rotation{ID: rotation.NewGUID(), State: rotation.StateApplied,
		Certificate: certs.Certificate{Thumbprint: certs.ThumbprintSHA1(der)}, DER: der, Target: rotation.Target{AppID: "33333333-3333-4333-8333-333333333333"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if _, _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := s.Append(ctx, rotation.AuditEntry{At: time.Now(), Action: rotation.ActionAgentStart, Actor: "agent", Outcome: rotation.OutcomeOK, Message: fmt.Sprintf("entry %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStoreCheck: good, damaged, emptied, missing and locked stores each get their lines,
// with a fix for every problem; store check never writes.
func TestStoreCheck(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, env *startupEnv, path string)
		code     int
		check    string // the line to look at
		status   string
		contains string
	}{
		{"good", func(*testing.T, *startupEnv, string) {}, 0, "audit agreement", statusOK, "exactly"},
		{"good rotations", func(*testing.T, *startupEnv, string) {}, 0, "rotations", statusOK, "1 rotation: 1 applied"},
		{"good chain", func(*testing.T, *startupEnv, string) {}, 0, "audit chain", statusOK, "5 entries in the store (1 to 5), chain intact"},
		{"random bytes", func(t *testing.T, env *startupEnv, path string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7 + i/13)
			}
			os.WriteFile(path, b, 0o600)
		}, 1, "consistency", statusFail, "store rebuild"},
		{"truncated", func(t *testing.T, env *startupEnv, path string) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/3], 0o600)
		}, 1, "consistency", statusFail, "cut short"},
		{"emptied", func(t *testing.T, env *startupEnv, path string) { os.Truncate(path, 0) }, 1, "file", statusFail, "empty"},
		{"deleted", func(t *testing.T, env *startupEnv, path string) { os.Remove(path) }, 1, "file", statusFail, "missing"},
		{"files tampered", func(t *testing.T, env *startupEnv, path string) {
			f := filepath.Join(store.AuditDirOf(path), "audit-000001.jsonl")
			b, _ := os.ReadFile(f)
			os.WriteFile(f, bytes.Replace(b, []byte("entry 3"), []byte("entry 9"), 1), 0o600)
		}, 1, "audit files", statusFail, "entry 3 modified"},
		{"files behind", func(t *testing.T, env *startupEnv, path string) {
			f := filepath.Join(store.AuditDirOf(path), "audit-000001.jsonl")
			b, _ := os.ReadFile(f)
			lines := bytes.SplitAfter(b, []byte("\n"))
			os.WriteFile(f, bytes.Join(lines[:3], nil), 0o600)
		}, 0, "audit agreement", statusWarn, "newest 2 entries"},
		{"marker of another store", func(t *testing.T, env *startupEnv, path string) {
			os.WriteFile(store.MarkerPath(path), []byte(`{"storeId":"0123","createdAt":"2026-01-01T00:00:00Z"}`), 0o600)
		}, 1, "identity", statusFail, "not the store this state folder had"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newStartupEnv(t)
			path := storeWith(t, env, 5)
			tc.setup(t, env, path)
			before, _ := os.ReadFile(path)
			out, stderr, code := runCmd(t, "store", "check", "-c", env.config, "--json")
			t.Logf("store check:\n%s%s", out, stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			lines := checkLines(t, out)
			l, ok := lines[tc.check]
			if !ok || l.Status != tc.status || !strings.Contains(l.Message+" "+l.Fix, tc.contains) {
				t.Errorf("line %q = %+v, want %s mentioning %q", tc.check, l, tc.status, tc.contains)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("store check changed the store file")
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}

	t.Run("new install", func(t *testing.T) {
		env := newStartupEnv(t)
		out, _, code := runCmd(t, "store", "check", "-c", env.config, "--json")
		if l := checkLines(t, out)["file"]; code != 0 || l.Status != statusWarn {
			t.Errorf("store check before the first start: exit %d, %+v; want a warning and exit 0", code, l)
		}
		if _, err := os.Stat(filepath.Join(env.state, "certagent.db")); !os.IsNotExist(err) {
			t.Error("store check created the store")
		}
	})
	t.Run("agent running", func(t *testing.T) {
		env := newStartupEnv(t)
		path := storeWith(t, env, 2)
		held, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		out, _, code := runCmd(t, "store", "check", "-c", env.config)
		if code != 1 || !strings.Contains(out, "the agent is running") || !strings.Contains(out, "certagent stop") {
			t.Errorf("store check of a held store: exit %d\n%s", code, out)
		}
	})
}

// TestAuditVerify: an intact trail passes; a modified, deleted or reordered entry fails,
// naming the first broken entry and what is wrong with it; while the agent holds the store
// the files alone are verified.
func TestAuditVerify(t *testing.T) {
	edit := func(path string, fn func(lines [][]byte) [][]byte) {
		f := filepath.Join(store.AuditDirOf(path), "audit-000001.jsonl")
		b, _ := os.ReadFile(f)
		lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
		os.WriteFile(f, append(bytes.Join(fn(lines), []byte("\n")), '\n'), 0o600)
	}
	tests := []struct {
		name string
		fn   func(lines [][]byte) [][]byte
		want string
	}{
		{"modified", func(l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte("entry 4"), []byte("entry 0"), 1)
			return l
		}, "first broken entry 4: modified (audit-000001.jsonl:4)"},
		{"deleted", func(l [][]byte) [][]byte { return append(l[:3:3], l[4:]...) }, "first broken entry 4: deleted (audit-000001.jsonl:4): entry 4 is missing"},
		{"reordered", func(l [][]byte) [][]byte {
			l[3], l[4] = l[4], l[3]
			return l
		}, "first broken entry 5: reordered (audit-000001.jsonl:4): it comes before entry 4"},
	}
	env := newStartupEnv(t)
	path := storeWith(t, env, 8)
	out, _, code := runCmd(t, "audit", "verify", "-c", env.config)
	if code != 0 || !strings.Contains(out, "store  intact: 8 entries (1 to 8)") || !strings.Contains(out, "agree  yes") {
		t.Errorf("audit verify of an intact trail: exit %d\n%s", code, out)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newStartupEnv(t)
			path := storeWith(t, env, 8)
			edit(path, tc.fn)
			out, _, code := runCmd(t, "audit", "verify", "-c", env.config)
			t.Logf("audit verify:\n%s", out)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want 1 with %q", code, tc.want)
			}
			if !strings.Contains(out, "store  intact") {
				t.Error("the store's own chain should still be intact")
			}
			out, _, _ = runCmd(t, "audit", "verify", "-c", env.config, "--json")
			if !strings.Contains(out, `"intact": false`) || !strings.Contains(out, `"kind": "`+tc.name+`"`) {
				t.Errorf("--json lacks the break:\n%s", out)
			}
		})
	}
	t.Run("agent running", func(t *testing.T) {
		held, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		out, _, code := runCmd(t, "audit", "verify", "-c", env.config)
		if code != 0 || !strings.Contains(out, "files  intact: 8 entries") || !strings.Contains(out, "verified the JSON-lines files only") {
			t.Errorf("audit verify while the agent holds the store: exit %d\n%s", code, out)
		}
	})
}

// TestStoreRebuildAsks: on a terminal, store rebuild asks first, and anything but yes
// changes nothing.
func TestStoreRebuildAsks(t *testing.T) {
	env := newStartupEnv(t)
	path := storeWith(t, env, 3)
	os.Truncate(path, 0)
	for _, answer := range []string{"n\n", "", "maybe\n"} {
		var out, errb bytes.Buffer
		e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
			stdin: strings.NewReader(answer), interactive: func() bool { return true }}
		code := exitCode(e, dispatch(context.Background(), e, []string{"store", "rebuild", "-c", env.config}))
		if code != 1 || !strings.Contains(out.String(), "Rebuild the store? [y/N]") || !strings.Contains(errb.String(), "not rebuilt") {
			t.Errorf("answer %q: exit %d\n%s%s", answer, code, out.String(), errb.String())
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Errorf("answer %q: the store file changed: %v", answer, err)
		}
		if m, _ := filepath.Glob(path + ".damaged-*"); len(m) != 0 {
			t.Errorf("answer %q: moved aside %v", answer, m)
		}
	}
}
