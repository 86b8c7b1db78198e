package e2e

import (
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// TestKillDuringPatch kills the agent with SIGKILL while Graph holds its PATCH open, then
// restarts it: whether the write landed (the emulator applies it when the connection dies) or
// not (the emulator drops it), the certificate ends on the app exactly once and every old
// credential is kept.
func TestKillDuringPatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  emulator.Fault
		landed int // the certificate's credentials on the app right after the kill
	}{
		{"write lands after the kill", emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", DelayMs: 15000}, 1},
		{"write is lost with the kill", emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", DelayMs: 15000, Reset: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEnv(t, fastSettle)
			a := e.StartAgent()
			before := appCreds(t, e)
			if err := e.Emu().AddFaults(tc.fault); err != nil {
				t.Fatal(err)
			}
			c := certtest.New(time.Now(), certtest.CommonName("crash "+tc.name))
			thumb := certs.ThumbprintSHA1(c.DER)
			writeFile(t, filepath.Join(e.Config.DropFolder, "crash.cer"), c.PEM())

			// The intent is stored with the rotation; once it exists, wait for the agent's
			// read of the app that precedes the PATCH, then give the PATCH a moment to be on
			// the wire (the emulator holds it for 15 s).
			var created time.Time
			a.WaitFor("the rotation", 20*time.Second, func() bool {
				for _, r := range a.Rotations() {
					if r.Certificate.Thumbprint == thumb {
						created = r.CreatedAt
					}
				}
				return !created.IsZero()
			})
			a.WaitFor("the read before the write", 20*time.Second, func() bool {
				for _, r := range e.Emu().Requests() {
					if r.Method == "GET" && strings.HasPrefix(r.Path, "/v1.0/applications") && r.AppID == e.Info.AgentAppID && r.Time.After(created) {
						return true
					}
				}
				return false
			})
			time.Sleep(300 * time.Millisecond)
			a.Kill()
			// The emulator ends the held PATCH when the connection dies: applied, or dropped.
			waitUntil(t, "the held PATCH to end", func() bool {
				for _, r := range e.Emu().Requests() {
					if r.Method == "PATCH" {
						return true
					}
				}
				return false
			})
			if n := countThumb(appCreds(t, e), thumb); n != tc.landed {
				t.Fatalf("right after the kill the app holds the certificate %d times, want %d: the kill did not land inside the write", n, tc.landed)
			}
			e.Emu().ClearFaults()

			a.Restart()
			a.WaitRotation(thumb, "applied", 30*time.Second)
			after := appCreds(t, e)
			if n := countThumb(after, thumb); n != 1 {
				t.Fatalf("after the crash the app holds the certificate %d times, want exactly 1", n)
			}
			for _, old := range before {
				if countThumb(after, old.Thumbprint) != 1 {
					t.Errorf("old credential %s lost", old.KeyID)
				}
			}
			if len(after) != len(before)+1 {
				t.Errorf("app holds %d credentials, want %d", len(after), len(before)+1)
			}
		})
	}
}

// TestKillAtRandomInstants drops certificates while killing the agent at random moments,
// restarting it each time. At the end every certificate is on the app exactly once, every
// old credential is kept, and every file was filed exactly once.
func TestKillAtRandomInstants(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the crash loop (about 20 s)")
	}
	e := NewEnv(t, fastSettle)
	a := e.StartAgent()
	before := appCreds(t, e)
	now := time.Now()
	var want []string
	const rounds = 8
	for i := 0; i < rounds; i++ {
		// Slow the writes a little so that kills land inside them too.
		e.Emu().AddFaults(emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", DelayMs: 50 + mathrand.IntN(200)})
		for j := 0; j < 3; j++ {
			c := certtest.New(now, certtest.CommonName(fmt.Sprintf("round %d cert %d", i, j)))
			want = append(want, certs.ThumbprintSHA1(c.DER))
			writeFile(t, filepath.Join(e.Config.DropFolder, fmt.Sprintf("r%d-%d.cer", i, j)), c.PEM())
		}
		time.Sleep(time.Duration(100+mathrand.IntN(500)) * time.Millisecond)
		a.Kill()
		e.Emu().ClearFaults()
		a.Restart()
	}
	for _, thumb := range want {
		a.WaitRotation(thumb, "applied", 60*time.Second)
	}
	after := appCreds(t, e)
	for _, thumb := range want {
		if n := countThumb(after, thumb); n != 1 {
			t.Errorf("certificate %s on the app %d times, want 1", thumb, n)
		}
	}
	for _, old := range before {
		if countThumb(after, old.Thumbprint) != 1 {
			t.Errorf("old credential %s lost", old.KeyID)
		}
	}
	drop := e.Config.DropFolder
	a.WaitFor("every file filed", 30*time.Second, func() bool { return CountFiles(drop) == 0 })
	if got := CountFiles(filepath.Join(drop, "processed")); got != len(want) {
		ents, _ := os.ReadDir(filepath.Join(drop, "processed"))
		t.Errorf("processed/ holds %d files, want %d: %v", got, len(want), ents)
	}
	if got := CountFiles(filepath.Join(drop, "rejected")); got != 0 {
		t.Errorf("rejected/ holds %d files, want 0", got)
	}
}
