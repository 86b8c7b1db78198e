package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/agent/target"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

// TestStoreRebuild: after the store is emptied or deleted, `run` refuses, `store rebuild`
// recovers the rotations, the audit trail and the app snapshot, says what is lost, and `run`
// starts again with everything it recovered.
func TestStoreRebuild(t *testing.T) {
	for _, damage := range []string{"emptied", "deleted"} {
		t.Run(damage, func(t *testing.T) {
			env := testDevEnv(t, func(c *config.Config) { c.Policy.Approval = config.ApprovalManual })
			cfg := env.Config
			now := time.Now()
			certA := certtest.New(now, certtest.CommonName("provider A"))
			certB := certtest.New(now, certtest.CommonName("provider B"))
			certC := certtest.New(now, certtest.CommonName("provider C"))
			certD := certtest.New(now, certtest.CommonName("provider D"))
			thumb := func(c certtest.Cert) string { return certs.ThumbprintSHA1(c.DER) }

			ra := startRun(t, cfg)
			ctx := context.Background()
			drop := func(name string, c certtest.Cert) {
				if err := os.WriteFile(filepath.Join(cfg.DropFolder, name), c.PEM(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			drop("a.cer", certA)
			a := ra.waitRotation(thumb(certA), "pending_approval")
			if _, err := ra.client.Approve(ctx, a.ID, "ok"); err != nil {
				t.Fatal(err)
			}
			a = ra.waitRotation(thumb(certA), "applied")
			drop("b.cer", certB)
			b := ra.waitRotation(thumb(certB), "pending_approval")
			drop("c.cer", certC)
			c := ra.waitRotation(thumb(certC), "pending_approval")
			d, _, err := ra.client.Submit(ctx, certD.PEM(), "d.cer")
			if err != nil {
				t.Fatal(err)
			}
			// Wait until b's and c's files are filed (their archived names are audited).
			for _, r := range []apitype.Rotation{b, c} {
				deadline := time.Now().Add(time.Minute)
				for {
					got, err := ra.client.Rotation(ctx, r.ID)
					if err == nil && got.Source.ArchivedAs != "" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("rotation %s not filed: %+v", r.ID, got)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			cFiled, _ := ra.client.Rotation(ctx, c.ID)
			ra.stop()

			path := agent.StorePath(cfg)
			entriesBefore := auditCount(t, path)
			// c's file is gone from processed/: its rotation cannot be recreated.
			if err := os.Remove(filepath.Join(cfg.DropFolder, "processed", cFiled.Source.ArchivedAs)); err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "emptied":
				os.Truncate(path, 0)
			case "deleted":
				os.Remove(path)
			}

			if _, stderr, code := runCmd(t, "run", "-c", cfg.File); code != 1 || !strings.Contains(stderr, "certagent store rebuild") {
				t.Fatalf("run on a %s store: exit %d, %s; want a refusal pointing at store rebuild", damage, code, stderr)
			}
			if _, stderr, code := runCmd(t, "store", "rebuild", "-c", cfg.File); code != 2 || !strings.Contains(stderr, "--yes") {
				t.Errorf("store rebuild without a terminal or --yes: exit %d, %s; want 2", code, stderr)
			}
			out, stderr, code := runCmd(t, "store", "rebuild", "-c", cfg.File, "--yes")
			t.Logf("store rebuild:\n%s%s", out, stderr)
			if code != 0 {
				t.Fatalf("store rebuild: exit %d", code)
			}
			for _, want := range []string{
				a.ID + "  applied", b.ID + "  pending_approval",
				"rotation " + c.ID + " (pending_approval, c.cer", "is not in", "submit it again",
				"rotation " + d.ID + " (pending_approval, d.cer", "came through the API",
				"chain intact", "saved as the agent's last read",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("store rebuild output lacks %q", want)
				}
			}
			if damage == "emptied" {
				if m, _ := filepath.Glob(path + ".damaged-*"); len(m) != 1 {
					t.Errorf("the emptied file was not moved aside: %v", m)
				}
			}
			if m, _ := filepath.Glob(store.MarkerPath(path) + ".damaged-*"); len(m) != 1 {
				t.Errorf("the marker was not moved aside: %v", m)
			}

			// The new store holds the trail, the app's last read and the rebuild entry.
			if n := auditCount(t, path); n != entriesBefore+1 {
				t.Errorf("audit entries after the rebuild = %d, want the %d before and the rebuild's", n, entriesBefore)
			}
			checkSnapshot(t, path, env.Info.TargetAppID)
			if out, _, code := runCmd(t, "audit", "verify", "-c", cfg.File); code != 0 {
				t.Errorf("audit verify after the rebuild: exit %d\n%s", code, out)
			}
			if out, _, code := runCmd(t, "store", "check", "-c", cfg.File); code != 0 {
				t.Errorf("store check after the rebuild: exit %d\n%s", code, out)
			}

			// run starts, with what was recovered; b (from processed/) can still be applied.
			ra = startRun(t, cfg)
			if got := ra.waitRotation(thumb(certA), "applied"); got.ID != a.ID || got.KeyID != a.KeyID {
				t.Errorf("recovered rotation a = %s keyId %s, want %s keyId %s", got.ID, got.KeyID, a.ID, a.KeyID)
			}
			ra.waitRotation(thumb(certB), "pending_approval")
			if _, err := ra.client.Approve(ctx, b.ID, "after the rebuild"); err != nil {
				t.Fatal(err)
			}
			ra.waitRotation(thumb(certB), "applied")
			log, err := ra.client.Audit(ctx, 0, 500)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(log.Items, func(e apitype.AuditEntry) bool { return e.Action == string(rotation.ActionStoreRebuilt) }) {
				t.Error("the audit log has no store.rebuilt entry")
			}
			ra.stop()
			if out, _, code := runCmd(t, "audit", "verify", "-c", cfg.File); code != 0 {
				t.Errorf("audit verify after running on the rebuilt store: exit %d\n%s", code, out)
			}
		})
	}
}

func auditCount(t *testing.T, path string) int {
	t.Helper()
	s, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.VerifyAudit(context.Background())
	if err != nil || !r.Intact() {
		t.Fatalf("store audit = %+v, %v", r, err)
	}
	return r.Entries
}

func checkSnapshot(t *testing.T, path, appID string) {
	t.Helper()
	s, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.GetMeta(context.Background(), target.SnapshotKey(appID))
	if err != nil {
		t.Fatal(err)
	}
	var snap rotation.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.App.AppID != appID || len(snap.App.KeyCredentials) < 2 || snap.SyncedAt.IsZero() || len(snap.Ledger.Keys) != len(snap.App.KeyCredentials) {
		t.Errorf("snapshot = %+v, want the app with its certificates and a ledger of them", snap)
	}
}

// TestRestoredBackup: a store restored from an older backup of itself is behind its audit
// files. The agent runs on from the store without writing over the files, status shows
// audit_trail_unwritable, store check names it, and store rebuild puts the trail back.
func TestRestoredBackup(t *testing.T) {
	env := testDevEnv(t, nil)
	cfg := env.Config
	path := agent.StorePath(cfg)
	startRun(t, cfg).stop()
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, cfg).stop() // more entries: agent.start, agent.stop
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}

	ra := startRun(t, cfg)
	st, err := ra.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Problems, func(p apitype.StatusProblem) bool {
		return p.Code == "audit_trail_unwritable" && strings.Contains(p.Message, "older than its audit trail")
	}) {
		t.Errorf("status problems = %+v, want audit_trail_unwritable", st.Problems)
	}
	ra.stop()
	out, _, code := runCmd(t, "store", "check", "-c", cfg.File, "--json")
	if l := checkLines(t, out)["audit agreement"]; code != 1 || l.Status != statusFail || !strings.Contains(l.Fix, "store rebuild") {
		t.Errorf("store check of a restored backup: exit %d, %+v", code, l)
	}
	if out, stderr, code := runCmd(t, "store", "rebuild", "-c", cfg.File, "--yes"); code != 0 {
		t.Fatalf("store rebuild: exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code := runCmd(t, "audit", "verify", "-c", cfg.File); code != 0 {
		t.Errorf("audit verify after the rebuild: exit %d\n%s", code, out)
	}
	ra = startRun(t, cfg)
	st, _ = ra.client.Status(context.Background())
	for _, p := range st.Problems {
		if p.Code == "audit_trail_unwritable" {
			t.Errorf("after the rebuild status still has %+v", p)
		}
	}
}

// TestStoreRebuildTwoTargets: with two targets, store rebuild gives each recovered rotation
// its own app (the same certificate on both apps is two rotations), reads and saves both
// apps, and the agent runs on without writing anything again.
func TestStoreRebuildTwoTargets(t *testing.T) {
	const appB = "b0000000-0000-4000-8000-0000000000eb"
	env := testDevEnv(t, func(c *config.Config) {
		c.Targets = []config.Target{{Name: "exchange", AppID: c.Target.AppID}, {Name: "teams", AppID: appB}}
		c.Target = config.Target{}
	})
	cfg := env.Config
	if _, err := env.Emulator.AddApplication(env.Info.TenantID, emulator.SeedApplication{
		DisplayName: "Veeam Teams backup", AppID: appB, Owners: []string{env.Info.AgentAppID},
		KeyCredentials: []emulator.SeedKeyCredential{{Certificate: certtest.New(time.Now(), certtest.CommonName("teams 2026")).DER}},
	}); err != nil {
		t.Fatal(err)
	}
	both := certtest.New(time.Now(), certtest.CommonName("provider for both"))
	teamsOnly := certtest.New(time.Now(), certtest.CommonName("provider for teams"))
	ra := startRun(t, cfg)
	ctx := context.Background()
	for _, f := range []struct {
		dir string
		c   certtest.Cert
	}{{"exchange", both}, {"teams", both}, {"teams", teamsOnly}} {
		if err := os.WriteFile(filepath.Join(cfg.DropFolder, f.dir, f.c.Cert.Subject.CommonName+".cer"), f.c.PEM(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	var before []apitype.Rotation
	for {
		rs, err := ra.client.Rotations(ctx, "applied")
		if err == nil && len(rs) == 3 && !slices.ContainsFunc(rs, func(r apitype.Rotation) bool { return r.Source.ArchivedAs == "" }) {
			before = rs
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotations = %+v, %v; want 3 applied and filed", rs, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ra.stop()

	path := agent.StorePath(cfg)
	os.Remove(path)
	out, stderr, code := runCmd(t, "store", "rebuild", "-c", cfg.File, "--yes")
	t.Logf("store rebuild:\n%s%s", out, stderr)
	if code != 0 || strings.Count(out, "saved as the agent's last read") != 2 || !strings.Contains(out, "recovered    3 rotations") {
		t.Fatalf("store rebuild: exit %d; want both apps read and 3 rotations recovered", code)
	}
	checkSnapshot(t, path, env.Info.TargetAppID)
	checkSnapshot(t, path, appB)
	s, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range before {
		got, err := s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint)
		if err != nil || got.ID != r.ID || got.KeyID != r.KeyID {
			t.Errorf("rotation %s on %s after the rebuild = %s keyId %s, %v; want keyId %s", r.ID, r.Target.AppID, got.ID, got.KeyID, err, r.KeyID)
		}
	}
	s.Close()

	writes := func() int {
		n := 0
		for _, e := range env.Emulator.Requests() {
			if e.Method == "PATCH" {
				n++
			}
		}
		return n
	}
	patched := writes()
	ra = startRun(t, cfg)
	for _, name := range []string{"exchange", "teams"} {
		want := map[string]int{"exchange": 1, "teams": 2}[name]
		if rs, err := ra.client.RotationsOf(ctx, name, "applied"); err != nil || len(rs) != want {
			t.Errorf("applied rotations of %s after the rebuild = %d, %v; want %d", name, len(rs), err, want)
		}
	}
	if n := writes(); n != patched {
		t.Errorf("the agent wrote %d times after the rebuild; want none", n-patched)
	}
}
