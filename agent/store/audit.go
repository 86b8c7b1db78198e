package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/rotation"
)

// DefaultAuditLimit is how many entries Audit returns when the query sets no Limit.
const DefaultAuditLimit = 100

// Append adds entries to the audit log, in order, in one transaction. Each gets the next
// sequence number; the Seq the caller set is ignored. Appending nothing does nothing.
func (s *Store) Append(ctx context.Context, audit ...rotation.AuditEntry) error {
	if len(audit) == 0 {
		return ctx.Err()
	}
	records, err := encodeAll(audit)
	if err != nil {
		return fmt.Errorf("appending to the audit log: %w", err)
	}
	if err := s.update(ctx, func(tx *bolt.Tx) error { return s.appendAudit(tx, records) }); err != nil {
		return s.wrap("appending to the audit log", err)
	}
	return nil
}

// maxQueued bounds the writes AppendAsync leaves queued; past it, AppendAsync waits for its
// commit like Append, so a stalled disk slows the caller down instead of filling memory.
const maxQueued = 10000

// AppendAsync queues entries for the audit log and returns without waiting for their commit
// (unless 10,000 writes are already waiting: then it waits like Append). A background flush
// commits them, together with whatever else is queued, in the order the writes were queued.
// It is for high-volume entries, such as a flood of rejected files audited one at a time: a
// lone caller of Append pays a full commit (two fsyncs) per call, AppendAsync tens of
// microseconds. The price: entries queued in the last moments before a crash may be lost, and
// a failure to write them is only logged. Flush and Close wait for queued entries.
func (s *Store) AppendAsync(ctx context.Context, audit ...rotation.AuditEntry) error {
	if len(audit) == 0 {
		return ctx.Err()
	}
	if s.readOnly {
		return s.wrap("appending to the audit log", ErrReadOnly)
	}
	records, err := encodeAll(audit)
	if err != nil {
		return fmt.Errorf("appending to the audit log: %w", err)
	}
	fn := func(tx *bolt.Tx) error { return s.appendAudit(tx, records) }
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return s.wrap("appending to the audit log", ErrClosed)
	case len(s.pending) >= maxQueued:
		s.mu.Unlock()
		if err := s.update(ctx, fn); err != nil {
			return s.wrap("appending to the audit log", err)
		}
		return nil
	}
	s.pending = append(s.pending, &op{fn: fn, done: make(chan struct{}), async: true})
	select {
	case s.wake <- struct{}{}:
	default: // a flush is already due
	}
	s.mu.Unlock()
	return nil
}

// Flush waits until every write queued before it (AppendAsync's included) is committed.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.update(ctx, func(*bolt.Tx) error { return nil }); err != nil {
		return s.wrap("flushing the audit log", err)
	}
	return nil
}

// Audit returns audit entries newest first: those with Seq < q.Before when q.Before is set,
// at most q.Limit of them (DefaultAuditLimit when q.Limit is zero or negative).
func (s *Store) Audit(ctx context.Context, q rotation.AuditQuery) ([]rotation.AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	var out []rotation.AuditEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if q.Before > 0 {
			// Seek lands on the first key >= Before; the entry before it is the newest wanted.
			if k, _ = c.Seek(seqKey(q.Before)); k != nil {
				k, v = c.Prev()
			} else {
				k, v = c.Last()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if len(k) != 8 {
				return fmt.Errorf("audit key %x is not a sequence number: %w", k, ErrDamaged)
			}
			seq := binary.BigEndian.Uint64(k)
			e, err := decodeAudit(seq, v)
			if err != nil {
				return fmt.Errorf("decoding audit entry %d: %w", seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("reading the audit log", err)
	}
	return out, nil
}

// pendingAudit is an audit entry ready to be chained: its record, sanitized, and the
// canonical encoding of the fields the hash covers besides seq and prevHash.
type pendingAudit struct {
	rec  auditRecord
	body []byte
}

// encodeAll prepares audit entries outside the transaction, to keep commits short: only the
// sequence numbers, the chain and the JSON are left for appendAudit.
func encodeAll(audit []rotation.AuditEntry) ([]pendingAudit, error) {
	out := make([]pendingAudit, len(audit))
	for i, a := range audit {
		rec := toAuditRecord(a)
		rec.sanitize()
		if err := checkTimes(&rec); err != nil {
			return nil, fmt.Errorf("encoding audit entry %q: %w", a.Action, err)
		}
		out[i] = pendingAudit{rec: rec, body: canonicalBody(&rec)}
	}
	return out, nil
}

// checkTimes refuses times JSON cannot hold (years outside 0-9999), so that a bad entry fails
// before its transaction, not inside one shared with others.
func checkTimes(rec *auditRecord) error {
	ts := []time.Time{rec.At}
	if rec.Cert != nil {
		ts = append(ts, rec.Cert.NotBefore, rec.Cert.NotAfter)
	}
	for _, t := range ts {
		if y := t.Year(); y < 0 || y > 9999 {
			return fmt.Errorf("time %s is outside the years 0 to 9999", t)
		}
	}
	return nil
}

// appendAudit puts prepared entries under the audit bucket's next sequence numbers, each
// chained to the entry before it, and notes them for the JSON-lines files (s.tx). It may run
// more than once for the same entries (a shared transaction that failed is retried), so it
// changes nothing in them. Only the committer calls it, holding s.sem.
func (s *Store) appendAudit(tx *bolt.Tx, entries []pendingAudit) error {
	if len(entries) == 0 {
		return nil
	}
	ab := tx.Bucket(bucketAudit)
	// Keys only ever grow: fill pages completely instead of splitting them half-full.
	ab.FillPercent = 1.0
	if !s.tx.headKnown {
		h, err := lastHash(ab)
		if err != nil {
			return err
		}
		s.tx.head, s.tx.headKnown = h, true
	}
	prev := s.tx.head
	for _, p := range entries {
		seq, err := ab.NextSequence()
		if err != nil {
			return err
		}
		rec := p.rec
		rec.Seq, rec.PrevHash = seq, prev
		rec.Hash = chainHash(seq, prev, p.body)
		v, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("encoding audit entry %q: %w", rec.Action, err)
		}
		if err := ab.Put(seqKey(seq), v); err != nil {
			return err
		}
		s.tx.lines = append(s.tx.lines, committedLine{seq: seq, hash: rec.Hash, json: v})
		prev = rec.Hash
	}
	s.tx.head = prev
	return nil
}

// lastHash returns the hash of the newest entry in the audit bucket, "" when it is empty.
func lastHash(ab *bolt.Bucket) (string, error) {
	k, v := ab.Cursor().Last()
	if k == nil {
		return "", nil
	}
	var head struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(v, &head); err != nil || len(head.Hash) != HashLen {
		return "", fmt.Errorf("the newest audit entry (key %x) carries no readable hash: %w", k, ErrDamaged)
	}
	return head.Hash, nil
}
