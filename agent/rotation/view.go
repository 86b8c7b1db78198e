package rotation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
)

// ReadOptions tune how the engine reads an app until it trusts what it sees. The zero value
// is usable.
type ReadOptions struct {
	// Reads bounds how many reads one view may take (default 10).
	Reads int
	// Confirm is how many identical reads in a row, each consistent with the ledger, a view
	// needs before anything is written on it (default 2). When the reads of this view
	// disagreed (a credential seen in some and not in others), it needs RemovalReads.
	Confirm int
	// RemovalReads is how many reads in a row must lack a credential the ledger holds as live
	// before it counts as removed outside the agent (default 3).
	RemovalReads int
	// ReadDelay is the pause after a read that looks behind; it doubles up to 4s (default
	// 250ms).
	ReadDelay time.Duration
	// ConfirmGap is the pause between a consistent read and the read that confirms it
	// (default 25ms): a short one, since Graph's load balancer spreads back-to-back reads
	// over replicas anyway, and every rotation waits it.
	ConfirmGap time.Duration
	// WrittenTimeout is how long a credential this agent wrote (and Graph acknowledged) may
	// stay invisible before the ledger stops taking its absence as a read being behind:
	// something else, such as a person's edit built on an older read, replaced the
	// collection without it (default 2m).
	WrittenTimeout time.Duration
	// Sleep waits d or until ctx ends; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.Reads <= 0 {
		o.Reads = 10
	}
	if o.Confirm <= 0 {
		o.Confirm = 2
	}
	if o.RemovalReads <= 0 {
		o.RemovalReads = 3
	}
	if o.ReadDelay <= 0 {
		o.ReadDelay = 250 * time.Millisecond
	}
	if o.ConfirmGap <= 0 {
		o.ConfirmGap = 25 * time.Millisecond
	}
	if o.WrittenTimeout <= 0 {
		o.WrittenTimeout = 2 * time.Minute
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// maxReadDelay caps the doubling pause between reads that look behind.
const maxReadDelay = 4 * time.Second

// Changes are what reads showed happening to the app outside this agent.
type Changes struct {
	// Added are credentials the ledger did not know, now trusted as on the app.
	Added []certs.KeyCredential
	// Removed are credentials the ledger held as live that several reads in a row lacked.
	Removed []LedgerEntryID
	// Overwritten are credentials this agent wrote that never became visible within
	// WrittenTimeout: another write replaced the collection without them.
	Overwritten []LedgerEntryID
	// Retired are credentials this agent was retiring that a trusted read lacks: a retire
	// read back here rather than by Engine.Retire (the agent stopped in between).
	Retired []LedgerEntryID
}

// LedgerEntryID is a keyId with what the ledger knew of it.
type LedgerEntryID struct {
	KeyID string
	LedgerEntry
}

func (c *Changes) merge(o Changes) {
	c.Added = append(c.Added, o.Added...)
	c.Removed = append(c.Removed, o.Removed...)
	c.Overwritten = append(c.Overwritten, o.Overwritten...)
	c.Retired = append(c.Retired, o.Retired...)
}

// Empty reports whether nothing changed outside certagent (Retired is certagent's own).
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Overwritten) == 0
}

// Describe says what changed, for the audit log.
func (c Changes) Describe(appID string) string {
	var parts []string
	for _, k := range c.Added {
		parts = append(parts, fmt.Sprintf("added keyId %s (thumbprint %s, %q)", k.KeyID, k.Thumbprint(), k.DisplayName))
	}
	for _, k := range c.Removed {
		parts = append(parts, fmt.Sprintf("removed keyId %s (thumbprint %s)", k.KeyID, k.Thumbprint))
	}
	for _, k := range c.Overwritten {
		parts = append(parts, fmt.Sprintf("keyId %s (thumbprint %s), written by certagent, was replaced by another write before it became visible", k.KeyID, k.Thumbprint))
	}
	return fmt.Sprintf("app %s changed outside certagent: %s", appID, strings.Join(parts, "; "))
}

// unsettledError is a view that did not settle within the read budget: reads kept
// disagreeing with each other or with the ledger. Transient: the engine tries again later and
// never writes on such a view.
type unsettledError struct {
	appID   string
	reads   int
	verdict Verdict
}

func (e *unsettledError) Error() string {
	var why []string
	if len(e.verdict.Behind) > 0 {
		why = append(why, "reads are behind (keyIds "+strings.Join(e.verdict.Behind, ", ")+")")
	}
	if len(e.verdict.Missing) > 0 {
		why = append(why, "credentials come and go between reads (keyIds "+strings.Join(e.verdict.Missing, ", ")+")")
	}
	if len(why) == 0 {
		why = append(why, "consecutive reads disagree")
	}
	return fmt.Sprintf("the credentials of app %s did not settle in %d reads: %s (Graph's replication lag, or someone editing the app right now); nothing was written on that view",
		e.appID, e.reads, strings.Join(why, "; "))
}
func (e *unsettledError) Transient() bool { return true }
func (e *unsettledError) Reason() certs.Reason {
	return certs.Reason{Code: certs.GraphUnavailable, Message: e.Error()}
}

// viewReader reads one app for one operation, remembering every credential any of its reads
// showed (with key bytes), so that a credential a concurrent edit added can be recognised
// after the operation's write.
type viewReader struct {
	kc     KeyCredentials
	appID  string
	ledger *Ledger
	opts   ReadOptions

	observed map[string]certs.KeyCredential // by lower-case keyId, first sighting
	reads    int
	lastRead time.Time // when the last read's answer came
	changes  Changes
}

func newViewReader(kc KeyCredentials, appID string, ledger *Ledger, opts ReadOptions) *viewReader {
	if ledger == nil {
		ledger = &Ledger{}
	}
	return &viewReader{kc: kc, appID: appID, ledger: ledger, opts: opts.withDefaults(), observed: map[string]certs.KeyCredential{}}
}

func (r *viewReader) read(ctx context.Context) (certs.Application, error) {
	app, err := r.kc.Get(ctx, r.appID)
	r.reads++
	if err != nil {
		return certs.Application{}, err
	}
	r.lastRead = r.opts.Now()
	for _, c := range app.KeyCredentials {
		if _, ok := r.observed[lower(c.KeyID)]; !ok {
			r.observed[lower(c.KeyID)] = c.Clone()
		}
	}
	return app, nil
}

// settle reads the app until confirm reads in a row are identical and consistent with the
// ledger, and returns the last of them. Along the way a live credential that RemovalReads
// reads in a row lack becomes gone, and a gone one that as many show becomes live again
// (both reported in r.changes). It returns an *unsettledError when the budget runs out.
func (r *viewReader) settle(ctx context.Context, confirm int) (certs.Application, error) {
	o := r.opts
	delay := o.ReadDelay
	missStreak := map[string]int{}
	backStreak := map[string]int{}
	var last []string // keyIds of the previous consistent read
	same := 0
	disagreed := false
	var v Verdict
	for n := 0; n < o.Reads; n++ {
		app, err := r.read(ctx)
		if err != nil {
			return certs.Application{}, err
		}
		now := o.Now()
		r.expireWritten(now)
		v = r.ledger.Judge(app)
		for _, id := range v.Missing {
			missStreak[id]++
			if missStreak[id] >= o.RemovalReads {
				r.changes.Removed = append(r.changes.Removed, LedgerEntryID{KeyID: id, LedgerEntry: r.ledger.Keys[id]})
				r.ledger.Gone(id, now)
				delete(missStreak, id)
			}
		}
		for id := range missStreak {
			if !slices.Contains(v.Missing, id) {
				delete(missStreak, id) // present again: the reads that lacked it were behind
				disagreed = true
			}
		}
		for id := range backStreak {
			if !slices.Contains(v.Behind, id) {
				delete(backStreak, id)
			}
		}
		for _, id := range v.Behind {
			if r.ledger.State(id) == KeyGone {
				backStreak[id]++
				if backStreak[id] >= o.RemovalReads {
					r.ledger.Revive(id, now)
					delete(backStreak, id)
				}
			}
		}
		v = r.ledger.Judge(app)
		if !v.Consistent() {
			disagreed = disagreed || len(last) > 0
			last, same = nil, 0
			if err := o.Sleep(ctx, delay); err != nil {
				return certs.Application{}, err
			}
			delay = min(2*delay, maxReadDelay)
			continue
		}
		ids := sortedKeyIDs(app.KeyCredentials)
		if last != nil && slices.Equal(ids, last) {
			same++
		} else {
			if last != nil {
				disagreed = true
			}
			last, same = ids, 1
		}
		need := confirm
		if disagreed {
			need = max(confirm, o.RemovalReads)
		}
		if same >= need {
			for _, id := range v.New {
				r.changes.Added = append(r.changes.Added, r.observed[id])
			}
			r.changes.Retired = append(r.changes.Retired, r.ledger.Learn(app, now)...)
			return app, nil
		}
		if err := o.Sleep(ctx, o.ConfirmGap); err != nil {
			return certs.Application{}, err
		}
	}
	return certs.Application{}, &unsettledError{appID: r.appID, reads: r.reads, verdict: v}
}

// expireWritten stops waiting for written credentials older than WrittenTimeout.
func (r *viewReader) expireWritten(now time.Time) {
	for id, e := range r.ledger.Keys {
		if e.State == KeyWritten && now.Sub(e.Since) > r.opts.WrittenTimeout {
			r.changes.Overwritten = append(r.changes.Overwritten, LedgerEntryID{KeyID: id, LedgerEntry: e})
			r.ledger.Forget(id)
		}
	}
}

func sortedKeyIDs(creds []certs.KeyCredential) []string {
	ids := make([]string, len(creds))
	for i, c := range creds {
		ids[i] = lower(c.KeyID)
	}
	slices.Sort(ids)
	return ids
}

// ReadApp reads the app until a view settles (see ReadOptions), updating ledger, and returns
// the view and what changed outside the agent. The engine's periodic sync uses it.
func ReadApp(ctx context.Context, kc KeyCredentials, appID string, ledger *Ledger, opts ReadOptions) (certs.Application, Changes, error) {
	r := newViewReader(kc, appID, ledger, opts)
	app, err := r.settle(ctx, r.opts.Confirm)
	return app, r.changes, err
}
