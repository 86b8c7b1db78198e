package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/agent/target"
)

// rebuildReport is what store rebuild did and could not do.
type rebuildReport struct {
	movedAside []string
	storeID    string
	imported   []store.ChainedEntry
	trail      store.ChainResult
	apps       []rebuiltApp // one per target, in config order
	recovered  []rotation.Rotation
	lost       []string
	notes      []string
	entrySeq   uint64
	trailErr   error
}

// rebuiltApp is one target's app as rebuild read it: app, or the error that kept it from
// being read.
type rebuiltApp struct {
	target config.TargetConfig
	app    *certs.Application
	err    error
}

// appOf returns the read app with appID, or nil.
func (rep *rebuildReport) appOf(appID string) *rebuiltApp {
	for i := range rep.apps {
		if strings.EqualFold(rep.apps[i].target.AppID, appID) {
			return &rep.apps[i]
		}
	}
	return nil
}

// storeRebuild moves the store and its marker aside, makes a new store, imports the audit
// trail from the JSON-lines files, recreates the rotations the trail describes (taking each
// certificate from processed/ or from the app when the engine still needs it), records the
// app as Graph shows it now, appends a store.rebuilt entry, and says what it recovered and
// what is lost.
func storeRebuild(ctx context.Context, env *cmdEnv, cfg *config.Config, yes bool) error {
	path := agent.StorePath(cfg)
	auditDir := store.AuditDirOf(path)

	// The agent must not run: it holds the store's lock, or answers on its port (a store
	// deleted under a running agent is still open in it).
	state := "missing"
	if fi, err := os.Stat(path); err == nil {
		state = fmt.Sprintf("%d bytes", fi.Size())
		s, err := store.OpenReadOnly(path, store.LockTimeout(checkLockTimeout))
		switch {
		case errors.Is(err, store.ErrInUse):
			return fmt.Errorf("the agent is running: it holds %s; stop it first (`certagent stop`, or end `certagent run`), then run `certagent store rebuild` again", path)
		case err == nil:
			s.Close()
			state += ", opens and passes its checks: rebuilding replaces a working store (rotation histories are rebuilt from the audit trail)"
		case errors.Is(err, store.ErrLost):
			state = "empty (0 bytes)"
		default:
			state += ", damaged: " + err.Error()
		}
	}
	if agentAnswers(cfg.API.Listen) {
		return fmt.Errorf("the agent is running: it answers on %s (api.listen); stop it first (`certagent stop`, or end `certagent run`), then run `certagent store rebuild` again", cfg.API.Listen)
	}

	entries, trail, err := store.ReadAuditFiles(auditDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "state file   %s (%s)\n", path, state)
	fmt.Fprintf(env.stdout, "audit trail  %s\n", describeTrail(trail, len(entries)))
	for _, tc := range cfg.EffectiveTargets() {
		fmt.Fprintf(env.stdout, "target app   %s (%s), read through Graph as the agent\n", tc.AppID, tc.Name)
	}
	fmt.Fprintln(env.stdout)
	fmt.Fprintf(env.stdout, "store rebuild moves %s and its marker aside (nothing is deleted), makes a new store from the audit trail and the app, and says what it cannot recover.\n", filepath.Base(path))
	if !yes {
		if env.stdin == nil || env.interactive == nil || !env.interactive() {
			return usagef("store rebuild asks for confirmation, and standard input is not a terminal: pass --yes to rebuild without asking")
		}
		fmt.Fprint(env.stdout, "Rebuild the store? [y/N] ")
		answer, _ := bufio.NewReader(env.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return &exitError{code: 1, msg: "not rebuilt: nothing was changed"}
		}
	}
	fmt.Fprintln(env.stdout)

	rep, err := rebuild(ctx, env, cfg, entries, trail)
	printRebuild(env.stdout, cfg, rep)
	return err
}

func rebuild(ctx context.Context, env *cmdEnv, cfg *config.Config, entries []store.ChainedEntry, trail store.ChainResult) (*rebuildReport, error) {
	rep := &rebuildReport{imported: entries, trail: trail}
	path := agent.StorePath(cfg)
	now := env.clock().UTC()
	stamp := now.Format("20060102T150405Z")
	for _, p := range []string{path, store.MarkerPath(path)} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		aside := p + ".damaged-" + stamp
		if err := os.Rename(p, aside); err != nil {
			return rep, fmt.Errorf("moving %s aside: %w; nothing else was changed", p, err)
		}
		rep.movedAside = append(rep.movedAside, aside)
	}

	s, err := store.Open(path, store.NoAuditFiles())
	if err != nil {
		return rep, fmt.Errorf("creating the new store: %w", err)
	}
	rep.storeID = s.ID()
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()

	next := uint64(0)
	if trail.Last > 0 {
		next = trail.Last + 1 // never reuse a seq the files hold, even past a break
	}
	if err := s.ImportAudit(ctx, entries, next); err != nil {
		return rep, err
	}
	switch {
	case len(trail.Files) == 0:
		rep.lost = append(rep.lost, fmt.Sprintf("the audit trail: there are no JSON-lines files in %s (the store was written by a certagent without them, or they were removed)", trail.Path))
	case trail.Break != nil:
		rep.lost = append(rep.lost, fmt.Sprintf("the audit trail from entry %d on: the files' chain breaks there (%s); the files are kept as they are", trail.Break.Seq, trail.Break))
	}

	gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep.apps = readApps(gctx, cfg)

	recoverRotations(ctx, cfg, s, rep, now)

	msg := fmt.Sprintf("store rebuilt by %s from %s", actorName(), describeTrail(trail, len(entries)))
	for _, ra := range rep.apps {
		if ra.app == nil {
			rep.notes = append(rep.notes, fmt.Sprintf("the app %s (%s) was not read (%v): the agent reads it when it starts", ra.target.AppID, ra.target.Name, ra.err))
			continue
		}
		if err := saveSnapshot(ctx, s, *ra.app, now); err != nil {
			return rep, err
		}
		msg += fmt.Sprintf(" and the app %s (%s)", ra.app.AppID, plural(len(ra.app.KeyCredentials), "certificate"))
	}
	msg += fmt.Sprintf("; %s recovered", plural(len(rep.recovered), "rotation"))
	if len(rep.movedAside) > 0 {
		msg += "; old files moved to " + strings.Join(baseNames(rep.movedAside), ", ")
	}
	if len(rep.lost) > 0 {
		msg += "; lost: " + strings.Join(rep.lost, "; ")
	} else {
		msg += "; nothing lost"
	}
	actor := "cli"
	if name := actorName(); name != "cli" {
		actor += ":" + name
	}
	if err := s.Append(ctx, rotation.AuditEntry{At: now, Action: rotation.ActionStoreRebuilt, Actor: actor, Outcome: rotation.OutcomeOK, Message: msg}); err != nil {
		return rep, err
	}
	if got, err := s.Audit(ctx, rotation.AuditQuery{Limit: 1}); err == nil && len(got) == 1 {
		rep.entrySeq = got[0].Seq
	}
	closed = true
	if err := s.Close(); err != nil {
		return rep, err
	}
	// Open it as the agent will: the JSON-lines files catch up with the new entry.
	s, err = store.Open(path)
	if err != nil {
		return rep, fmt.Errorf("reopening the new store: %w", err)
	}
	rep.trailErr = s.TrailError()
	return rep, s.Close()
}

// recoverRotations recreates the rotations the trail describes. One the engine must still
// write (pending_approval, applying, failed) needs its certificate: from processed/, or from
// the app; without it, it is lost.
func recoverRotations(ctx context.Context, cfg *config.Config, s *store.Store, rep *rebuildReport, now time.Time) {
	targets := cfg.EffectiveTargets()
	// Entries written before they named their app are the one target's of that time.
	for _, r := range store.RecoverRotations(rep.imported, targets[0].AppID) {
		thumb := certs.NormalizeThumbprint(r.Certificate.Thumbprint)
		ra := rep.appOf(r.Target.AppID)
		if ra == nil {
			rep.notes = append(rep.notes, fmt.Sprintf("rotation %s is for app %s, which no target of %s names: recovered as it was, the agent leaves it alone", r.ID, r.Target.AppID, cfg.File))
		}
		var onApp *certs.KeyCredential
		if ra != nil && ra.app != nil {
			r.Target.ObjectID, r.Target.DisplayName = ra.app.ObjectID, ra.app.DisplayName
			for i, k := range ra.app.KeyCredentials {
				if certs.NormalizeThumbprint(k.Thumbprint()) == thumb {
					onApp = &ra.app.KeyCredentials[i]
				}
			}
		}
		processed := []string{filepath.Join(cfg.DropFolder, "processed")}
		if ra != nil && ra.target.DropFolder != cfg.DropFolder {
			processed = append([]string{filepath.Join(ra.target.DropFolder, "processed")}, processed...)
		}
		if r.Source.ArchivedAs != "" {
			r.DER = derFromProcessed(processed, r.Source.ArchivedAs, thumb, now)
		}
		if r.DER == nil && onApp != nil && len(onApp.Key) > 0 {
			r.DER = append([]byte(nil), onApp.Key...)
		}
		what := fmt.Sprintf("rotation %s (%s, %s, thumbprint %s)", r.ID, r.State, sourceName(r), r.Certificate.Thumbprint)
		needsDER := r.State == rotation.StatePendingApproval || r.State == rotation.StateApplying || r.State == rotation.StateFailed
		if needsDER && r.DER == nil {
			where := "it came through the API"
			if r.Source.ArchivedAs != "" {
				where = fmt.Sprintf("its file %s is not in %s", r.Source.ArchivedAs, strings.Join(processed, " or "))
			}
			rep.lost = append(rep.lost, fmt.Sprintf("%s: %s and the app does not hold the certificate: submit it again", what, where))
			continue
		}
		if r.State == rotation.StateApplying && r.IntentKeyID == "" {
			// Never written: the engine writes it under a new keyId.
			r.IntentKeyID = rotation.NewGUID()
		}
		if ra != nil && ra.app != nil && (r.State == rotation.StateApplied || r.State == rotation.StateConfirmed) && onApp == nil {
			rep.notes = append(rep.notes, what+": no longer on the app (removed outside certagent?)")
		}
		if _, created, err := s.Create(ctx, r); err != nil {
			rep.lost = append(rep.lost, fmt.Sprintf("%s: %v", what, err))
			continue
		} else if !created {
			continue
		}
		rep.recovered = append(rep.recovered, r)
	}
}

// readApps reads each target's app through Graph, signing in once per tenant.
func readApps(ctx context.Context, cfg *config.Config) []rebuiltApp {
	type session struct {
		gc  *graph.Client
		err error
	}
	sessions := map[string]session{}
	var out []rebuiltApp
	for _, tc := range cfg.EffectiveTargets() {
		key := strings.ToLower(tc.TenantID)
		se, ok := sessions[key]
		if !ok {
			se.gc, _, se.err = agent.GraphClientFor(cfg, tc.TenantID, nil)
			sessions[key] = se
		}
		ra := rebuiltApp{target: tc, err: se.err}
		if se.err == nil {
			if app, err := se.gc.Get(ctx, tc.AppID); err != nil {
				ra.err = err
			} else {
				ra.app = &app
			}
		}
		out = append(out, ra)
	}
	return out
}

// derFromProcessed returns the certificate filed as name in the first of the processed/
// folders that holds it, when it is the one with the thumbprint; nil otherwise.
func derFromProcessed(processed []string, name, thumb string, now time.Time) []byte {
	if name != filepath.Base(name) {
		return nil
	}
	for _, dir := range processed {
		if der := derFromFile(filepath.Join(dir, name), thumb, now); der != nil {
			return der
		}
	}
	return nil
}

func derFromFile(path, thumb string, now time.Time) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, certs.MaxFileSize+1))
	if err != nil {
		return nil
	}
	v := certpolicy.Default().Check(data, now)
	if v.DER == nil || certs.NormalizeThumbprint(certs.ThumbprintSHA1(v.DER)) != thumb {
		return nil
	}
	return v.DER
}

// saveSnapshot records the app as read now, the way the target keeps its last read (without
// key bytes), with a ledger that knows every credential on it.
func saveSnapshot(ctx context.Context, s *store.Store, app certs.Application, now time.Time) error {
	creds := make([]certs.KeyCredential, len(app.KeyCredentials))
	for i, k := range app.KeyCredentials {
		creds[i] = k.Clone()
	}
	app.KeyCredentials = creds
	var ledger rotation.Ledger
	ledger.Learn(app, now)
	for i := range app.KeyCredentials {
		c := &app.KeyCredentials[i]
		if c.CustomKeyIdentifier == nil && len(c.Key) > 0 {
			c.CustomKeyIdentifier = []byte(c.Thumbprint())
		}
		c.Key = nil
	}
	b, err := json.Marshal(rotation.Snapshot{App: app, SyncedAt: now, Ledger: ledger})
	if err != nil {
		return err
	}
	return s.PutMeta(ctx, target.SnapshotKey(app.AppID), b)
}

func printRebuild(w io.Writer, cfg *config.Config, rep *rebuildReport) {
	if rep == nil {
		return
	}
	for _, p := range rep.movedAside {
		fmt.Fprintf(w, "moved aside  %s\n", p)
	}
	if rep.storeID == "" {
		return
	}
	fmt.Fprintf(w, "new store    id %s\n", rep.storeID)
	fmt.Fprintf(w, "audit trail  imported %s\n", describeTrail(rep.trail, len(rep.imported)))
	for _, ra := range rep.apps {
		if ra.app != nil {
			fmt.Fprintf(w, "app          %s (%s): %s, saved as the agent's last read\n", ra.app.AppID, ra.app.DisplayName, plural(len(ra.app.KeyCredentials), "certificate"))
		} else {
			fmt.Fprintf(w, "app          %s (%s) not read: %v\n", ra.target.AppID, ra.target.Name, ra.err)
		}
	}
	fmt.Fprintf(w, "\nrecovered    %s\n", plural(len(rep.recovered), "rotation"))
	for _, r := range rep.recovered {
		fmt.Fprintf(w, "  %s  %-16s  %s  %s\n", r.ID, r.State, r.Certificate.Thumbprint, sourceName(r))
	}
	if len(rep.lost) == 0 {
		fmt.Fprintln(w, "lost         nothing")
	} else {
		fmt.Fprintln(w, "lost")
		for _, l := range rep.lost {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	for _, n := range rep.notes {
		fmt.Fprintf(w, "note         %s\n", n)
	}
	if rep.trailErr != nil {
		fmt.Fprintf(w, "note         the audit trail files are not written: %v\n", rep.trailErr)
	}
	if rep.entrySeq > 0 {
		fmt.Fprintf(w, "\nRecorded in the audit trail as entry %d (store.rebuilt).\n", rep.entrySeq)
		fmt.Fprintf(w, "Start the agent: `certagent start`, or `certagent run -c %s`.\n", cfg.File)
	}
}

func describeTrail(r store.ChainResult, usable int) string {
	switch {
	case len(r.Files) == 0:
		return fmt.Sprintf("no JSON-lines files in %s", r.Path)
	case r.Break != nil:
		return fmt.Sprintf("%s of %s in %s in %s (the chain breaks at %s)", plural(usable, "entry"), plural(r.Entries, "entry"), plural(len(r.Files), "file"), r.Path, r.Break)
	}
	return fmt.Sprintf("%s (%d to %d) in %s in %s, chain intact", plural(usable, "entry"), r.First, r.Last, plural(len(r.Files), "file"), r.Path)
}

func sourceName(r rotation.Rotation) string {
	switch {
	case r.Source.FileName != "":
		return r.Source.FileName
	case r.Source.Kind == rotation.SourceAPI:
		return "(API)"
	}
	return "(no file name)"
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// agentAnswers reports whether something answers the agent's /livez on listen.
func agentAnswers(listen string) bool {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, Proxy: nil,
	}}
	resp, err := hc.Get("http://" + listen + "/livez")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
