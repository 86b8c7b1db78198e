package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
)

// checkLockTimeout is how long store check, audit verify and doctor wait for the store's
// lock: a running agent holds it for good, so waiting long tells nothing more.
const checkLockTimeout = 500 * time.Millisecond

func runStore(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "rebuild") {
		fmt.Fprintln(env.stderr, "usage: certagent store check|rebuild [-c FILE]")
		return usagef("store needs a subcommand: check or rebuild")
	}
	sub := args[0]
	synopsis := "store check [-c FILE] [--json]"
	if sub == "rebuild" {
		synopsis = "store rebuild [-c FILE] [--yes]"
	}
	fs := newFlags(env, "store "+sub, synopsis)
	configFile := fs.String("c", "", "config file of the agent (default "+config.DefaultPath()+")")
	var asJSON, yes *bool
	if sub == "check" {
		asJSON = fs.Bool("json", false, "print one JSON object per check")
	} else {
		yes = fs.Bool("yes", false, "do not ask for confirmation")
	}
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		return err
	}
	if sub == "check" {
		return storeCheck(ctx, env, cfg, *asJSON)
	}
	return storeRebuild(ctx, env, cfg, *yes)
}

// storeCheck reports on the store without writing anything: the file, its lock, bbolt's
// consistency, the schema, its id against the marker, the rotations, the audit chain and the
// JSON-lines files. It never creates, migrates or repairs.
func storeCheck(ctx context.Context, env *cmdEnv, cfg *config.Config, asJSON bool) error {
	var c checks
	path := agent.StorePath(cfg)
	auditDir := store.AuditDirOf(path)
	rebuild := fmt.Sprintf("run `certagent store rebuild -c %s`: it moves the file aside and rebuilds the store from the audit trail and the app, saying what it cannot recover", cfg.File)
	marker, markerErr := store.ReadMarker(path)
	hadStore := markerErr == nil || hasAuditFiles(auditDir)

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && hadStore:
		c.fail("file", fmt.Sprintf("%s is missing, but this state folder had a store (its marker or its audit trail files are there)", path),
			"restore the file from a backup, or "+rebuild)
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	case errors.Is(err, fs.ErrNotExist):
		c.warn("file", fmt.Sprintf("%s does not exist yet, and nothing shows that this state folder had a store", path),
			"nothing to do for a new install: the agent creates the store when it first starts (`certagent run`, or the service)")
		return c.print(env.stdout, asJSON, "store check")
	case err != nil:
		c.fail("file", fmt.Sprintf("%s cannot be read: %v", path, err), "run as administrator/root, and check state_dir in "+cfg.File)
		return c.print(env.stdout, asJSON, "store check")
	case !fi.Mode().IsRegular():
		c.fail("file", fmt.Sprintf("%s is not a regular file (%s)", path, fi.Mode().Type()), "move it aside; then "+rebuild)
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	case fi.Size() == 0:
		c.fail("file", fmt.Sprintf("%s is empty (0 bytes): its rotations, pending confirmations and audit trail are gone", path), rebuild)
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	}
	c.ok("file", "%s, %d bytes, modified %s", path, fi.Size(), fi.ModTime().UTC().Format(time.RFC3339))

	s, err := store.OpenReadOnly(path, store.LockTimeout(checkLockTimeout))
	switch {
	case errors.Is(err, store.ErrInUse):
		c.fail("lock", "the agent is running: it holds the store's lock, so the store cannot be checked now",
			"stop the agent first (`certagent stop`, or end `certagent run`), then run `certagent store check` again; while it runs, `certagent status` and `certagent audit verify` (the JSON-lines files) work")
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	case errors.Is(err, store.ErrDamaged):
		msg, _, _ := strings.Cut(err.Error(), "; `certagent store check`")
		c.fail("consistency", msg, rebuild)
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	case errors.Is(err, store.ErrNewerSchema):
		c.fail("schema", err.Error(), "run the certagent version that wrote it, or a later one")
		return c.print(env.stdout, asJSON, "store check")
	case err != nil:
		c.fail("open", err.Error(), "check the file's permissions (run as administrator/root); if it is damaged, "+rebuild)
		filesLine(&c, auditDir)
		return c.print(env.stdout, asJSON, "store check")
	}
	defer s.Close()
	c.ok("lock", "no agent holds the store")
	c.ok("consistency", "bbolt's check of every page passed")

	switch v := s.Schema(); {
	case v == store.SchemaVersion:
		c.ok("schema", "version %d", v)
	case v == 0:
		c.fail("schema", "the file is a bbolt file that holds no certagent data (an agent stopped while creating it, or another program's file)", rebuild)
	default:
		c.warn("schema", fmt.Sprintf("version %d; this certagent writes %d", v, store.SchemaVersion),
			"nothing to do: the agent migrates the file when it next starts (it chains the audit entries)")
	}

	switch {
	case markerErr == nil && marker.StoreID == s.ID():
		c.ok("identity", "store id %s matches its marker %s", s.ID(), store.MarkerPath(path))
	case markerErr == nil:
		c.fail("identity", fmt.Sprintf("store id %s is not the id in its marker %s (%s): this is not the store this state folder had", s.ID(), store.MarkerPath(path), marker.StoreID),
			fmt.Sprintf("if you restored or copied this file on purpose, remove %s and start the agent; otherwise put the right file back, or %s", store.MarkerPath(path), rebuild))
	case errors.Is(markerErr, fs.ErrNotExist):
		c.warn("identity", fmt.Sprintf("store id %s; its marker %s is missing", orNone(s.ID()), store.MarkerPath(path)),
			"nothing to do: the agent writes the marker when it next starts")
	default:
		c.fail("identity", markerErr.Error(), fmt.Sprintf("move %s aside; the agent writes a new one when it next starts", store.MarkerPath(path)))
	}

	if rs, err := s.List(ctx, rotation.Filter{}); err != nil {
		c.fail("rotations", err.Error(), rebuild)
	} else {
		c.ok("rotations", "%s", countByState(rs))
	}

	rep, err := s.AuditReport(ctx, auditDir)
	if err != nil {
		c.fail("audit", err.Error(), rebuild)
		return c.print(env.stdout, asJSON, "store check")
	}
	addChainLines(&c, rep, cfg)
	return c.print(env.stdout, asJSON, "store check")
}

// addChainLines reports the store's chain, the files' chain and their agreement.
func addChainLines(c *checks, rep store.AuditReport, cfg *config.Config) {
	st := rep.Store
	switch {
	case st.Unchained:
		c.warn("audit chain", fmt.Sprintf("%s in the store, written before the hash chain", plural(st.Entries, "entry")),
			"nothing to do: the agent chains them when it next starts")
	case st.Break != nil:
		c.fail("audit chain", "the store's audit log is broken: "+st.Break.String(),
			"the store's audit log was changed outside certagent; keep the file for investigation and compare it with the JSON-lines files (`certagent audit verify`)")
	default:
		c.ok("audit chain", "%s in the store%s, chain intact%s", plural(st.Entries, "entry"), seqRange(st), notes(st.Notes))
	}
	fl := rep.Files
	switch {
	case len(fl.Files) == 0 && st.Entries > 0:
		c.warn("audit files", fmt.Sprintf("no JSON-lines files in %s", fl.Path), "nothing to do: the agent writes them from the store when it next starts")
	case fl.Break != nil:
		c.fail("audit files", "the JSON-lines files' chain is broken: "+fl.Break.String(),
			"the files were changed outside certagent; keep them for investigation (`certagent audit verify` tells more)")
	default:
		c.ok("audit files", "%s in %s in %s%s, chain intact%s", plural(fl.Entries, "entry"), plural(len(fl.Files), "file"), fl.Path, seqRange(fl), notes(fl.Notes))
	}
	ag := rep.Agreement
	switch {
	case st.Unchained:
	case ag.Ahead:
		c.fail("audit agreement", fmt.Sprintf("the files go up to entry %d, the store only to %d: the store is older than its audit trail (restored from a backup?)", ag.FilesLast, ag.StoreLast),
			fmt.Sprintf("run `certagent store rebuild -c %s` to rebuild the store from the trail, or restore a newer backup", cfg.File))
	case ag.Differ != nil && ag.Forked:
		c.fail("audit agreement", "the store and the files disagree: "+ag.Differ.String(),
			fmt.Sprintf("if the store was restored from a backup, run `certagent store rebuild -c %s` to rebuild it from the files (the store moved aside keeps its own entries from %d on); otherwise keep both for investigation", cfg.File, ag.Differ.Seq))
	case ag.Differ != nil:
		c.fail("audit agreement", "the store and the files disagree: "+ag.Differ.String(),
			"one of them was changed outside certagent; keep both for investigation")
	case ag.Behind > 0:
		c.warn("audit agreement", fmt.Sprintf("the files lack the store's newest %s (the agent stopped between a commit and the file write)", plural(ag.Behind, "entry")),
			"nothing to do: the agent writes them when it next starts")
	default:
		c.ok("audit agreement", "the files hold exactly the store's entries")
	}
}

// filesLine reports the JSON-lines files alone, when the store cannot be read: they are what
// store rebuild imports.
func filesLine(c *checks, dir string) {
	r, err := store.VerifyAuditFiles(dir)
	switch {
	case err != nil:
		c.fail("audit files", err.Error(), "run as administrator/root")
	case len(r.Files) == 0:
		c.warn("audit files", "no JSON-lines files in "+dir+": a rebuild cannot recover the audit trail or the rotations", "restore the store from a backup if there is one")
	case r.Break != nil:
		c.fail("audit files", "the JSON-lines files' chain is broken: "+r.Break.String(),
			fmt.Sprintf("the files were changed outside certagent; a rebuild imports the %d entries before the break", r.Break.Seq-1))
	default:
		c.ok("audit files", "%s in %s in %s%s, chain intact: a rebuild imports them%s", plural(r.Entries, "entry"), plural(len(r.Files), "file"), r.Path, seqRange(r), notes(r.Notes))
	}
}

func seqRange(r store.ChainResult) string {
	if r.Entries == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d to %d)", r.First, r.Last)
}

func notes(ns []string) string {
	if len(ns) == 0 {
		return ""
	}
	return "; " + strings.Join(ns, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// countByState says how many rotations are in each state, in the states' order.
func countByState(rs []rotation.Rotation) string {
	if len(rs) == 0 {
		return "no rotations"
	}
	n := map[rotation.State]int{}
	for _, r := range rs {
		n[r.State]++
	}
	var parts []string
	for _, st := range rotation.States {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return plural(len(rs), "rotation") + ": " + strings.Join(parts, ", ")
}

// hasAuditFiles reports whether dir holds a JSON-lines file of the audit trail.
func hasAuditFiles(dir string) bool {
	files, _ := store.AuditFiles(dir)
	return len(files) > 0
}
