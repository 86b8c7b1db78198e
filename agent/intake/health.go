package intake

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aucloud/certagent/agent/health"
)

// Problem codes the intake reports while it cannot do its work.
const (
	// ProblemDropFolderUnavailable: the drop folder cannot be listed (deleted, renamed,
	// replaced by a file, not readable, a share that dropped).
	ProblemDropFolderUnavailable = health.DropFolderUnavailable
	// ProblemArchiveUnwritable: a file cannot be moved into processed/ or rejected/ (or its
	// reason note written there).
	ProblemArchiveUnwritable = health.ArchiveUnwritable
	// ProblemEntriesIgnored: the folder holds entries named like certificates that are never
	// taken in (a folder, a hidden file). Not an outage: files keep being taken in.
	ProblemEntriesIgnored = health.DropEntriesIgnored
)

// Problem is something that keeps the intake from working, with the path and the operating
// system's error, since when.
type Problem struct {
	Code  string
	Path  string
	Err   string
	Since time.Time
}

// Message says what is wrong and how to fix it, in words.
func (p Problem) Message() string {
	switch p.Code {
	case ProblemDropFolderUnavailable:
		return fmt.Sprintf("the drop folder %s cannot be read since %s (%s): certificates dropped there are not taken in; make the folder exist and be readable by the agent again (or fix drop_folder in the config); the agent retries by itself",
			p.Path, p.Since.UTC().Format(time.RFC3339), p.Err)
	case ProblemArchiveUnwritable:
		return fmt.Sprintf("files cannot be filed into %s since %s (%s): they stay in the drop folder until it is writable by the agent again; the agent retries by itself",
			p.Path, p.Since.UTC().Format(time.RFC3339), p.Err)
	case ProblemEntriesIgnored:
		return fmt.Sprintf("the drop folder %s holds entries the agent does not take in: %s", p.Path, p.Err)
	}
	return fmt.Sprintf("%s: %s (%s)", p.Code, p.Path, p.Err)
}

// Health returns p as a status problem: critical while files wait, a warning for entries
// that are ignored (someone probably meant them to be taken in).
func (p Problem) Health() health.Problem {
	sev := health.Critical
	if p.Code == ProblemEntriesIgnored {
		sev = health.Warning
	}
	return health.Problem{Code: p.Code, Severity: sev, Message: p.Message()}
}

// healthLog spaces out the repeated log lines of a lasting problem: the first at once, then
// after 1, 2, 4... minutes, at most one an hour.
const (
	healthLogFirst = time.Minute
	healthLogMax   = time.Hour
)

// problemSet is the intake's problems, shared between Run's goroutine (which raises and clears
// them) and readers (status, readiness).
type problemSet struct {
	mu       sync.Mutex
	problems map[string]*problemState // by code
}

type problemState struct {
	Problem
	nextLog time.Time
	every   time.Duration
}

// raise records a problem and reports whether it should be logged now (new, changed, or due
// again by the backoff).
func (h *problemSet) raise(p Problem, now time.Time) (logNow bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problems == nil {
		h.problems = map[string]*problemState{}
	}
	st := h.problems[p.Code]
	if st == nil || st.Path != p.Path || st.Err != p.Err {
		since := now
		if st != nil {
			since = st.Since
		}
		p.Since = since
		h.problems[p.Code] = &problemState{Problem: p, nextLog: now.Add(healthLogFirst), every: healthLogFirst}
		return true
	}
	if now.Before(st.nextLog) {
		return false
	}
	st.every = min(2*st.every, healthLogMax)
	st.nextLog = now.Add(st.every)
	return true
}

// clear drops the problem with code and returns it (ok false when there was none).
func (h *problemSet) clear(code string) (Problem, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.problems[code]
	if !ok {
		return Problem{}, false
	}
	delete(h.problems, code)
	return st.Problem, true
}

func (h *problemSet) list() []Problem {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Problem, 0, len(h.problems))
	for _, st := range h.problems {
		out = append(out, st.Problem)
	}
	slices.SortFunc(out, func(a, b Problem) int { return a.Since.Compare(b.Since) })
	return out
}

// Problems returns what keeps the intake from working now, oldest first; empty when it
// works. It is safe for concurrent use.
func (in *Intake) Problems() []Problem { return in.problems.list() }

// Ready returns a *health.UnavailableError while the drop folder cannot be read, nil
// otherwise. It is safe for concurrent use.
func (in *Intake) Ready() error {
	for _, p := range in.problems.list() {
		if p.Code == ProblemDropFolderUnavailable {
			return &health.UnavailableError{Problem: p.Health()}
		}
	}
	return nil
}

// raiseProblem records a problem and logs it with backoff.
func (in *Intake) raiseProblem(code, path string, err error) {
	in.errs.Add(1)
	p := Problem{Code: code, Path: path, Err: err.Error()}
	if in.problems.raise(p, in.cfg.Now()) {
		in.log.Error("drop folder problem; will retry", "code", code, "path", path, "error", err)
	}
}

// clearProblem clears a problem and logs that it is over.
func (in *Intake) clearProblem(code string) {
	if p, ok := in.problems.clear(code); ok {
		in.log.Info("drop folder problem cleared", "code", code, "path", p.Path, "since", p.Since)
	}
}
