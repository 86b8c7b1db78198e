package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/store"
)

func runAudit(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(env.stderr, "usage: certagent audit verify [-c FILE] [--json]")
		return usagef("audit needs a subcommand: verify")
	}
	fs := newFlags(env, "audit verify", "audit verify [-c FILE] [--json]")
	configFile := fs.String("c", "", "config file of the agent (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		return err
	}
	return auditVerify(ctx, env, cfg, *asJSON)
}

// auditResult is audit verify's answer (--json).
type auditResult struct {
	Intact    bool               `json:"intact"`
	Store     *store.ChainResult `json:"store,omitempty"`
	Files     *store.ChainResult `json:"files,omitempty"`
	Agreement *store.Agreement   `json:"agreement,omitempty"`
	// Notes say what could not be verified and why.
	Notes []string `json:"notes,omitempty"`
}

// auditVerify checks the audit trail's hash chain end to end, in the store and in the
// JSON-lines files, and that they hold the same entries. While the agent runs (it holds the
// store) or when the store cannot be read, it verifies the files alone and says so. Exit 0
// when everything it could verify is intact, 1 otherwise.
func auditVerify(ctx context.Context, env *cmdEnv, cfg *config.Config, asJSON bool) error {
	path := agent.StorePath(cfg)
	dir := store.AuditDirOf(path)
	var res auditResult
	s, err := store.OpenReadOnly(path, store.LockTimeout(checkLockTimeout))
	if err == nil {
		defer s.Close()
		rep, err := s.AuditReport(ctx, dir)
		if err != nil {
			return err
		}
		res.Store, res.Files, res.Agreement = &rep.Store, &rep.Files, &rep.Agreement
		if rep.Store.Unchained {
			res.Notes = append(res.Notes, "the store's entries were written before the hash chain: the agent chains them when it next starts")
		}
	} else {
		why := fmt.Sprintf("the store cannot be read (%v)", err)
		if errors.Is(err, store.ErrInUse) {
			why = "the running agent holds the store"
		}
		res.Notes = append(res.Notes, why+": verified the JSON-lines files only; stop the agent to verify the store too")
		files, ferr := store.VerifyAuditFiles(dir)
		if ferr != nil {
			return ferr
		}
		res.Files = &files
	}
	res.Intact = (res.Store == nil || res.Store.Intact()) && res.Files.Intact() &&
		(res.Agreement == nil || res.Agreement.Agrees() || (res.Store != nil && res.Store.Unchained))
	if res.Store == nil && len(res.Files.Files) == 0 {
		res.Intact = false
		res.Notes = append(res.Notes, "nothing to verify: no readable store and no JSON-lines files in "+dir)
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printAudit(env.stdout, res)
	}
	if !res.Intact {
		return &exitError{code: 1, msg: "the audit trail is not intact"}
	}
	return nil
}

func printAudit(w io.Writer, res auditResult) {
	chain := func(name string, r *store.ChainResult) {
		if r == nil {
			return
		}
		where := r.Path
		if r.Source == "files" {
			where = fmt.Sprintf("%s in %s", plural(len(r.Files), "file"), r.Path)
		}
		switch {
		case r.Unchained:
			fmt.Fprintf(w, "%-6s %s in %s: not chained yet\n", name, plural(r.Entries, "entry"), where)
		case r.Break != nil:
			fmt.Fprintf(w, "%-6s BROKEN: first broken entry %d: %s (%s): %s\n", name, r.Break.Seq, r.Break.Kind, r.Break.Where, r.Break.Detail)
			fmt.Fprintf(w, "       %s read in %s\n", plural(r.Entries, "entry"), where)
		default:
			fmt.Fprintf(w, "%-6s intact: %s%s in %s\n", name, plural(r.Entries, "entry"), seqRange(*r), where)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "       note: %s\n", n)
		}
	}
	chain("store", res.Store)
	chain("files", res.Files)
	if a := res.Agreement; a != nil && (res.Store == nil || !res.Store.Unchained) {
		switch {
		case a.Ahead:
			fmt.Fprintf(w, "agree  NO: the files go up to entry %d, the store only to %d\n", a.FilesLast, a.StoreLast)
		case a.Differ != nil:
			fmt.Fprintf(w, "agree  NO: %s\n", a.Differ)
		case a.Behind > 0:
			fmt.Fprintf(w, "agree  yes; the files lack the store's newest %s, which the agent writes at its next start\n", plural(a.Behind, "entry"))
		default:
			fmt.Fprintln(w, "agree  yes: the files hold exactly the store's entries")
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note   %s\n", n)
	}
}
