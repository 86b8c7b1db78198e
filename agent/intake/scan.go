package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
)

// listBatch is how many directory entries a scan reads at a time, so a huge folder is never
// held in memory as one listing.
const listBatch = 256

// completeQuiet is how long a file the kernel reported complete (closed after writing, or
// moved in) must stay unchanged before it is read: a writer that closes and at once reopens
// to append is caught, without the whole settle window.
const completeQuiet = 50 * time.Millisecond

// errWriterOpen says another process still has the file open for writing.
var errWriterOpen = errors.New("another process has the file open for writing")

// errNoCompleteEvents: this platform does not tell when a file is complete.
var errNoCompleteEvents = errors.New("no file-complete events on this platform")

// Retry delays: after Decision.Retry or a failure to read or move a file, the delay starts at
// retryMin and doubles up to retryMax. A file held open by another process (a copy in
// progress on Windows) is simply looked at again after busyDelay or Settle, whichever is
// longer.
const (
	retryMin  = time.Second
	retryMax  = 5 * time.Minute
	busyDelay = time.Second
)

// entry tracks one candidate file that is not filed yet. Times are monotonic (time.Now), so
// they also work under testing/synctest.
type entry struct {
	kind     certpolicy.NameKind
	typ      fs.FileMode // the type bits of the last Lstat (0 for a regular file)
	size     int64
	modTime  time.Time
	since    time.Time // when size/mtime/type were last seen to change, or first seen
	notAfter time.Time // zero, or: leave the file alone until then (retry, busy)
	attempts int       // failed or retried attempts, for the backoff
	gen      uint64    // the scan generation that last saw the file
	warned   bool      // a read or move error was logged for this file already
	// decided is the Handler's decision when filing it failed (a move error), so a retry
	// only moves the file, as long as it is unchanged.
	decided *decided
	// complete: the kernel said the file was closed after writing, or moved in, and it has
	// not changed since (since is then that moment).
	complete bool

	// A certificate's wait for its signature file (pair.go): awaitingSig says notAfter is the
	// end of Config.SignatureWait.
	awaitingSig bool
	// A signature file's: orphanSince is when it was first seen without its certificate
	// (zero while the certificate is there); pairedAs is the archived name of its
	// certificate, filed with pairedDecision, when moving the signature next to it is
	// still to do; pairedCert is the certificate's name.
	orphanSince    time.Time
	pairedAs       string
	pairedCert     string
	pairedDecision Decision
}

// decided is a decision waiting for its move.
type decided struct {
	Decision
	byIntake bool   // the intake refused the file by itself; the Handler never saw it
	sigName  string // the signature file that goes with the file, or ""
}

// due returns when e should be looked at next. A regular file must have settled; anything
// else (a symlink, a FIFO, a device) is moved as soon as it is seen.
func (e *entry) due(settle time.Duration) time.Time {
	t := e.settled(settle)
	if e.notAfter.After(t) {
		t = e.notAfter
	}
	return t
}

// settled returns when e's file counts as settled, whatever else it waits for.
func (e *entry) settled(settle time.Duration) time.Time {
	t := e.since
	switch {
	case e.typ != 0:
	case e.complete:
		t = t.Add(min(completeQuiet, settle))
	default:
		t = t.Add(settle)
	}
	return t
}

// same reports whether fi shows the file as e last saw it.
func (e *entry) same(fi fs.FileInfo) bool {
	return fi.Mode().Type() == e.typ && fi.Size() == e.size && fi.ModTime().Equal(e.modTime)
}

// update records fi and restarts the settle clock.
func (e *entry) update(fi fs.FileInfo, now time.Time) {
	e.typ, e.size, e.modTime = fi.Mode().Type(), fi.Size(), fi.ModTime()
	e.since = now
	e.decided = nil
	e.complete = false
}

// scan lists the whole folder: it starts tracking new candidates, notices changed ones and
// forgets those that vanished. Nothing is moved while the folder is being listed.
func (in *Intake) scan() {
	in.gen++
	d, err := os.Open(in.dir)
	if err != nil {
		in.scanFailed(err)
		return
	}
	defer d.Close()
	if fi, err := d.Stat(); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("it is not a folder")
		}
		in.scanFailed(err)
		return
	}
	var ignored []string
	for {
		ents, err := d.ReadDir(listBatch)
		for _, de := range ents {
			if why := in.ignoredWhy(de); why != "" {
				ignored = append(ignored, why)
			}
			if de.IsDir() {
				continue // processed/, rejected/, or any folder a person made: left alone
			}
			in.observe(de.Name(), false)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			in.scanFailed(err) // keep what is tracked: a failed listing proves nothing vanished
			return
		}
	}
	for name, e := range in.files {
		if e.gen != in.gen {
			delete(in.files, name) // gone: renamed away or deleted by a person
		}
	}
	in.clearProblem(ProblemDropFolderUnavailable)
	in.reportIgnored(ignored)
	in.checkArchive()
	in.lastScan.Store(in.cfg.Now().UnixNano())
}

// ignoreQuiet is how long a hidden file named like a certificate must stay unchanged before it
// is reported: some copy tools write to ".name.cer" and rename it when done.
const ignoreQuiet = time.Minute

// hiddenEntry is a hidden file as first seen unchanged: since when, by the agent's clock (a
// share's timestamps may be off).
type hiddenEntry struct {
	size  int64
	mod   time.Time
	since time.Time
	gen   uint64
}

// ignoredWhy says why an entry named like a certificate is never taken in, "" for any other
// entry: a folder (the intake takes files only) or a hidden file (a name starting with "." is
// taken for a copy in progress, and never read).
func (in *Intake) ignoredWhy(de fs.DirEntry) string {
	name := de.Name()
	if de.IsDir() {
		if name == ProcessedDir || name == RejectedDir || certpolicy.ClassifyName(name) != certpolicy.NameCertificate {
			return ""
		}
		return fmt.Sprintf("%q is a folder: certificates are taken only as files at the top of the drop folder; move the file out of it", name)
	}
	rest, hidden := strings.CutPrefix(name, ".")
	if !hidden || certpolicy.ClassifyName(rest) != certpolicy.NameCertificate {
		return ""
	}
	fi, err := de.Info()
	if err != nil {
		return ""
	}
	now := in.cfg.Now()
	h, ok := in.hidden[name]
	if !ok || h.size != fi.Size() || !h.mod.Equal(fi.ModTime()) {
		h = hiddenEntry{size: fi.Size(), mod: fi.ModTime(), since: now}
	}
	h.gen = in.gen
	if in.hidden == nil {
		in.hidden = map[string]hiddenEntry{}
	}
	in.hidden[name] = h
	if now.Sub(h.since) < ignoreQuiet {
		return ""
	}
	return fmt.Sprintf("%q is hidden: a name starting with \".\" is taken for a copy in progress and never read; rename it to %q", name, rest)
}

// reportIgnored keeps the drop_entries_ignored problem in step with the latest listing.
func (in *Intake) reportIgnored(whys []string) {
	for name, h := range in.hidden {
		if h.gen != in.gen {
			delete(in.hidden, name) // gone, or renamed to its real name
		}
	}
	if len(whys) == 0 {
		in.clearProblem(ProblemEntriesIgnored)
		return
	}
	slices.Sort(whys)
	p := Problem{Code: ProblemEntriesIgnored, Path: in.dir, Err: strings.Join(whys, "; ")}
	if in.problems.raise(p, in.cfg.Now()) {
		in.log.Warn("drop folder entries ignored", "path", in.dir, "entries", p.Err)
	}
}

// scanFailed records a failed listing as a status problem (logged with backoff while it
// lasts). The drop folder is not made again: a folder that vanished while the agent ran may
// be a share that dropped, and a local folder made in its place would swallow the files
// meant for the share. The problem clears at the first listing that works.
func (in *Intake) scanFailed(err error) {
	in.raiseProblem(ProblemDropFolderUnavailable, in.dir, err)
}

// checkArchive makes processed/ and rejected/ again when a person removed them, and checks
// that the agent can move files into them. It clears the archive problem when they work and
// no file waits for a move that failed.
func (in *Intake) checkArchive() {
	for _, d := range []string{in.dir, filepath.Join(in.dir, ProcessedDir), filepath.Join(in.dir, RejectedDir)} {
		if d != in.dir {
			if err := ensureDir(d); err != nil {
				in.raiseProblem(ProblemArchiveUnwritable, d, err)
				return
			}
		}
		if err := writable(d); err != nil {
			in.raiseProblem(ProblemArchiveUnwritable, d, err)
			return
		}
	}
	for _, e := range in.files {
		if e.decided != nil && e.attempts > 0 {
			return // a move failed and waits for its retry, which decides
		}
	}
	in.clearProblem(ProblemArchiveUnwritable)
}

// observe looks at one name in the folder (found by a listing or an event) and updates its
// tracking. written says an event reported a write, which restarts the settle clock even when
// size and mtime look the same (coarse timestamps on some file systems).
func (in *Intake) observe(name string, written bool) {
	kind := certpolicy.ClassifyName(name)
	if kind == certpolicy.NameTemporary {
		return // a copy in progress: its final name will show up by event or listing
	}
	fi, err := os.Lstat(filepath.Join(in.dir, name))
	if err != nil || fi.IsDir() {
		// Gone (or unreadable for now: the next listing or due check decides).
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(in.files, name)
		}
		return
	}
	now := time.Now()
	e := in.files[name]
	if e == nil {
		e = &entry{kind: kind}
		e.update(fi, now)
		in.files[name] = e
		in.seen.Add(1)
	} else if written && !e.complete || !e.same(fi) {
		// A write event that arrives after the file was reported complete, with the file
		// unchanged, is that same write, delivered late on the other watcher.
		e.update(fi, now)
	}
	e.gen = in.gen
	if due := e.due(in.cfg.Settle); due.Before(in.nextDue) || len(in.files) == 1 {
		in.nextDue = due
	}
	if kind == certpolicy.NameSignature {
		// A certificate waiting for this signature goes on once the signature has settled.
		if ce := in.files[signedName(name)]; ce != nil && ce.awaitingSig {
			ce.awaitingSig, ce.notAfter = false, e.settled(in.cfg.Settle)
			if ce.notAfter.Before(in.nextDue) {
				in.nextDue = ce.notAfter
			}
		}
	}
}

// observeComplete records that the kernel reported name complete: closed after writing, or
// moved into the folder.
func (in *Intake) observeComplete(name string) {
	in.observe(name, false)
	e := in.files[name]
	if e == nil || e.typ != 0 {
		return
	}
	e.complete, e.since, e.notAfter = true, time.Now(), time.Time{}
	if due := e.due(in.cfg.Settle); due.Before(in.nextDue) || len(in.files) == 1 {
		in.nextDue = due
	}
}

// processDue looks at every entry that is due, in name order, one at a time, and then works
// out when the next one is due. It stops early, starting no new file, once ctx is cancelled.
func (in *Intake) processDue(ctx context.Context) {
	now := time.Now()
	var due []string
	for name, e := range in.files {
		if !e.due(in.cfg.Settle).After(now) {
			due = append(due, name)
		}
	}
	slices.Sort(due)
	for _, name := range due {
		if ctx.Err() != nil {
			break
		}
		in.process(ctx, name)
		// process always leaves a tracked entry due later (settling again, backing off);
		// should any path miss that, this keeps the loop from spinning on it.
		if e := in.files[name]; e != nil && !e.due(in.cfg.Settle).After(now) {
			e.notAfter = time.Now().Add(max(in.cfg.Settle, busyDelay))
		}
	}
	in.recomputeDue()
}

// recomputeDue sets nextDue to the earliest due time of all entries.
func (in *Intake) recomputeDue() {
	first := true
	for _, e := range in.files {
		if d := e.due(in.cfg.Settle); first || d.Before(in.nextDue) {
			in.nextDue, first = d, false
		}
	}
}

// forget stops tracking name: it was filed or it vanished.
func (in *Intake) forget(name string) {
	delete(in.files, name)
}

// backoff returns the delay before attempt n+1 after n failed attempts.
func backoff(n int) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}
