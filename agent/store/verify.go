package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/rotation"
)

// Kinds of break in an audit chain (Break.Kind).
const (
	// BreakModified: an entry's content does not match its hash, or the next entry does not
	// link to it (it was changed and its hash recomputed).
	BreakModified = "modified"
	// BreakDeleted: entries are missing (a gap in the sequence numbers).
	BreakDeleted = "deleted"
	// BreakReordered: an entry is out of its place (before an entry it should follow, or
	// under another entry's sequence number in the store).
	BreakReordered = "reordered"
	// BreakUnreadable: a line or record is not an audit entry at all.
	BreakUnreadable = "unreadable"
)

// Break is the first place an audit chain is broken.
type Break struct {
	// Seq is the first broken entry.
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	// Where is "store" or the file and line, "audit-000001.jsonl:17".
	Where  string `json:"where"`
	Detail string `json:"detail"`
}

func (b *Break) String() string {
	return fmt.Sprintf("entry %d %s (%s): %s", b.Seq, b.Kind, b.Where, b.Detail)
}

// ChainResult is the verification of one copy of the audit trail: the store's or the
// JSON-lines files'.
type ChainResult struct {
	// Source is "store" or "files"; Path the store file or the files' folder.
	Source string   `json:"source"`
	Path   string   `json:"path"`
	Files  []string `json:"files,omitempty"`
	// Entries counts what was read; First and Last are the lowest and highest sequence
	// numbers among them.
	Entries int    `json:"entries"`
	First   uint64 `json:"first,omitempty"`
	Last    uint64 `json:"last,omitempty"`
	// Break is the first break, nil when the chain is intact.
	Break *Break `json:"break,omitempty"`
	// Notes are what is worth knowing but is not a break: entries a store rebuild declared
	// lost, a partial last line that the agent cuts off at its next start.
	Notes []string `json:"notes,omitempty"`
	// Unchained is set for a store of schema version 1: its entries carry no chain until
	// the agent's next start migrates it.
	Unchained bool `json:"unchained,omitempty"`
}

// Intact reports whether the chain has no break.
func (r ChainResult) Intact() bool { return r.Break == nil }

// ChainedEntry is an audit entry with its place in the chain, as read from the store or a
// file.
type ChainedEntry struct {
	rotation.AuditEntry
	PrevHash string
	Hash     string
	// Where is "store" or the file and line it was read from.
	Where string
}

// chainItem is one entry as read from a copy of the trail.
type chainItem struct {
	rec   auditRecord
	key   uint64 // the store's key; 0 for a line of a file
	where string
	err   error // it could not be read
}

func (it *chainItem) entry() ChainedEntry {
	return ChainedEntry{AuditEntry: it.rec.entry(it.rec.Seq), PrevHash: it.rec.PrevHash, Hash: it.rec.Hash, Where: it.where}
}

// verifyChain walks items in their stored order and returns the first break. A store rebuild
// that could not recover entries leaves a gap followed by its store.rebuilt entry linked to
// the entry before the gap; with rebuildGaps such a gap is a note, not a break.
func verifyChain(items []chainItem, rebuildGaps bool) (*Break, []string) {
	pos := make(map[uint64]int, len(items))
	for i, it := range items {
		if _, seen := pos[it.rec.Seq]; !seen && it.err == nil {
			pos[it.rec.Seq] = i
		}
	}
	var notes []string
	var prev *chainItem
	for i := range items {
		it := &items[i]
		rec := &it.rec
		expect := uint64(1)
		if prev != nil {
			expect = prev.rec.Seq + 1
		}
		switch {
		case it.err != nil:
			return &Break{Seq: expect, Kind: BreakUnreadable, Where: it.where, Detail: it.err.Error()}, notes
		case it.key != 0 && rec.Seq != it.key:
			return &Break{Seq: it.key, Kind: BreakReordered, Where: it.where,
				Detail: fmt.Sprintf("the store holds entry %d under sequence number %d", rec.Seq, it.key)}, notes
		case len(rec.Hash) != HashLen || hashOf(rec) != rec.Hash:
			return &Break{Seq: rec.Seq, Kind: BreakModified, Where: it.where, Detail: "its content does not match its hash"}, notes
		}
		switch {
		case prev == nil && rec.Seq == 1 && rec.PrevHash == "":
		case prev == nil:
			return &Break{Seq: 1, Kind: BreakDeleted, Where: it.where,
				Detail: fmt.Sprintf("the trail starts with entry %d: %s", rec.Seq, span(1, rec.Seq-1))}, notes
		case rec.Seq == expect && rec.PrevHash == prev.rec.Hash:
		case rec.Seq == expect:
			return &Break{Seq: prev.rec.Seq, Kind: BreakModified, Where: prev.where,
				Detail: fmt.Sprintf("entry %d does not link to it: it was changed and its hash recomputed (or entry %d's prevHash was changed)", rec.Seq, rec.Seq)}, notes
		case rec.Seq < expect:
			return &Break{Seq: rec.Seq, Kind: BreakReordered, Where: it.where,
				Detail: fmt.Sprintf("it comes after entry %d", prev.rec.Seq)}, notes
		default:
			if j, ok := pos[expect]; ok && j > i {
				return &Break{Seq: rec.Seq, Kind: BreakReordered, Where: it.where,
					Detail: fmt.Sprintf("it comes before entry %d (%s)", expect, items[j].where)}, notes
			}
			if rebuildGaps && rec.Action == string(rotation.ActionStoreRebuilt) && rec.PrevHash == prev.rec.Hash {
				notes = append(notes, fmt.Sprintf("%s: not recovered by the store rebuild recorded in entry %d", span(expect, rec.Seq-1), rec.Seq))
				break
			}
			return &Break{Seq: expect, Kind: BreakDeleted, Where: it.where,
				Detail: fmt.Sprintf("%s before entry %d", span(expect, rec.Seq-1), rec.Seq)}, notes
		}
		prev = it
	}
	return nil, notes
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("entry %d is missing", from)
	}
	return fmt.Sprintf("entries %d to %d are missing", from, to)
}

// storeItems reads every audit entry of the store, oldest first.
func storeItems(tx *bolt.Tx) ([]chainItem, error) {
	ab := tx.Bucket(bucketAudit)
	if ab == nil {
		return nil, nil
	}
	var items []chainItem
	err := ab.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			items = append(items, chainItem{where: "store", err: fmt.Errorf("key %x is not a sequence number", k)})
			return nil
		}
		key := binary.BigEndian.Uint64(k)
		rec, err := decodeAuditRecord(v)
		if err != nil {
			err = fmt.Errorf("the record under sequence number %d does not decode: %v", key, err)
		}
		items = append(items, chainItem{rec: rec, key: key, where: "store", err: err})
		return nil
	})
	return items, err
}

// fileItems reads every line of the JSON-lines files in dir, oldest first. A partial last
// line of the newest file (a write cut short) is returned as a note, not an item.
func fileItems(dir string) (items []chainItem, files []string, notes []string, err error) {
	list, err := listTrail(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for fi, tf := range list {
		files = append(files, tf.path)
		f, err := os.Open(tf.path)
		if err != nil {
			return nil, files, nil, err
		}
		r := bufio.NewReaderSize(f, 64<<10)
		name := filepath.Base(tf.path)
		for n := 1; ; n++ {
			line, rerr := r.ReadBytes('\n')
			if rerr == io.EOF && len(line) == 0 {
				break
			}
			where := fmt.Sprintf("%s:%d", name, n)
			if rerr == io.EOF {
				if fi == len(list)-1 {
					notes = append(notes, where+": a partial last line (a write cut short); the agent cuts it off and writes the entry again at its next start")
					break
				}
				items = append(items, chainItem{where: where, err: errors.New("a partial line at the end of a file that is not the newest")})
				break
			}
			if rerr != nil {
				f.Close()
				return nil, files, nil, rerr
			}
			rec, err := decodeAuditRecord(bytes.TrimSuffix(line, []byte{'\n'}))
			if err != nil || rec.Seq == 0 {
				if err == nil {
					err = errors.New("no seq")
				}
				items = append(items, chainItem{where: where, err: fmt.Errorf("the line is not an audit entry: %v", err)})
				continue
			}
			items = append(items, chainItem{rec: rec, where: where})
		}
		f.Close()
	}
	return items, files, notes, nil
}

// summarize counts items and finds the lowest and highest sequence numbers among them.
func summarize(r *ChainResult, items []chainItem) {
	r.Entries = len(items)
	for _, it := range items {
		if it.err != nil {
			continue
		}
		if r.First == 0 || it.rec.Seq < r.First {
			r.First = it.rec.Seq
		}
		r.Last = max(r.Last, it.rec.Seq)
	}
}

// VerifyAudit checks the store's audit chain from its first entry to its last.
func (s *Store) VerifyAudit(ctx context.Context) (ChainResult, error) {
	var items []chainItem
	if err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		items, err = storeItems(tx)
		return err
	}); err != nil {
		return ChainResult{}, s.wrap("reading the audit log", err)
	}
	return s.verifyItems(items), nil
}

func (s *Store) verifyItems(items []chainItem) ChainResult {
	r := ChainResult{Source: "store", Path: s.path}
	summarize(&r, items)
	if s.schema < 2 && s.schema != 0 {
		r.Unchained = true
		return r
	}
	r.Break, r.Notes = verifyChain(items, true)
	return r
}

// VerifyAuditFiles checks the chain of the JSON-lines files in dir (AuditDirOf the store),
// across files, from the first line of the oldest to the last line of the newest. It reads
// them only; it works while the agent runs.
func VerifyAuditFiles(dir string) (ChainResult, error) {
	items, files, notes, err := fileItems(dir)
	if err != nil {
		return ChainResult{}, fmt.Errorf("reading the audit trail files in %s: %w", dir, err)
	}
	return verifyFileItems(dir, items, files, notes), nil
}

func verifyFileItems(dir string, items []chainItem, files, notes []string) ChainResult {
	r := ChainResult{Source: "files", Path: dir, Files: files, Notes: notes}
	summarize(&r, items)
	brk, more := verifyChain(items, true)
	r.Break, r.Notes = brk, append(r.Notes, more...)
	return r
}

// ReadAuditFiles reads and verifies the JSON-lines files in dir. It returns the entries of
// the intact start of the chain: all of them when the chain is intact, otherwise those
// before its first break.
func ReadAuditFiles(dir string) ([]ChainedEntry, ChainResult, error) {
	items, files, notes, err := fileItems(dir)
	if err != nil {
		return nil, ChainResult{}, fmt.Errorf("reading the audit trail files in %s: %w", dir, err)
	}
	r := verifyFileItems(dir, items, files, notes)
	var out []ChainedEntry
	for i := range items {
		it := &items[i]
		if r.Break != nil && (it.err != nil || it.where == r.Break.Where) {
			break
		}
		out = append(out, it.entry())
	}
	return out, r, nil
}

// Agreement compares the store's audit log with the JSON-lines files.
type Agreement struct {
	// StoreLast and FilesLast are the newest sequence numbers in each.
	StoreLast uint64 `json:"storeLast"`
	FilesLast uint64 `json:"filesLast"`
	// Behind counts store entries newer than the files' newest (written at the next commit or
	// the next start).
	Behind int `json:"behind,omitempty"`
	// Ahead is set when the files go further than the store.
	Ahead bool `json:"ahead,omitempty"`
	// Differ is the first entry that both hold with different hashes, or that the store
	// holds and the files lack (before their newest).
	Differ *Break `json:"differ,omitempty"`
	// Forked is set when, from Differ on, the store and the files are each a well-formed
	// continuation of the entries before it: what a store restored from an older backup
	// looks like once the agent ran on it.
	Forked bool `json:"forked,omitempty"`
}

// Agrees reports whether the files hold exactly the store's entries (Behind aside).
func (a Agreement) Agrees() bool { return !a.Ahead && a.Differ == nil }

// AuditReport is the store's and the files' audit chains and how they agree.
type AuditReport struct {
	Store     ChainResult `json:"store"`
	Files     ChainResult `json:"files"`
	Agreement Agreement   `json:"agreement"`
}

// Intact reports whether both chains are intact and agree.
func (r AuditReport) Intact() bool {
	return r.Store.Intact() && r.Files.Intact() && r.Agreement.Agrees()
}

// AuditReport verifies the store's chain and the files' in dir, and compares them.
func (s *Store) AuditReport(ctx context.Context, dir string) (AuditReport, error) {
	var sitems []chainItem
	if err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		sitems, err = storeItems(tx)
		return err
	}); err != nil {
		return AuditReport{}, s.wrap("reading the audit log", err)
	}
	fitems, files, notes, err := fileItems(dir)
	if err != nil {
		return AuditReport{}, fmt.Errorf("reading the audit trail files in %s: %w", dir, err)
	}
	rep := AuditReport{Store: s.verifyItems(sitems), Files: verifyFileItems(dir, fitems, files, notes)}
	rep.Agreement = compare(sitems, fitems)
	return rep, nil
}

// compare walks the store's entries and the files' by sequence number.
func compare(sitems, fitems []chainItem) Agreement {
	var a Agreement
	inFiles := make(map[uint64]*chainItem, len(fitems))
	for i := range fitems {
		it := &fitems[i]
		if it.err == nil {
			if _, dup := inFiles[it.rec.Seq]; !dup {
				inFiles[it.rec.Seq] = it
			}
			a.FilesLast = max(a.FilesLast, it.rec.Seq)
		}
	}
	for i := range sitems {
		it := &sitems[i]
		if it.err != nil {
			if a.Differ == nil && it.key != 0 {
				a.Differ = &Break{Seq: it.key, Kind: BreakUnreadable, Where: "store", Detail: it.err.Error()}
			}
			continue
		}
		a.StoreLast = max(a.StoreLast, it.key)
		f, ok := inFiles[it.key]
		switch {
		case ok && (f.rec.Hash != it.rec.Hash || hashOf(&f.rec) != hashOf(&it.rec)) && a.Differ == nil:
			a.Differ = &Break{Seq: it.key, Kind: BreakModified, Where: f.where,
				Detail: "the store and the files hold different entries under this sequence number: one of them was changed"}
			if f.rec.PrevHash == it.rec.PrevHash && hashOf(&f.rec) == f.rec.Hash && hashOf(&it.rec) == it.rec.Hash {
				a.Forked = true
				a.Differ.Detail = "the store and the files go separate ways from this entry, each chain intact: the store was restored from an older backup and the agent ran on it, or one of them was rewritten"
			}
		case !ok && it.key > a.FilesLast:
			a.Behind++
		case !ok && a.Differ == nil:
			a.Differ = &Break{Seq: it.key, Kind: BreakDeleted, Where: "files",
				Detail: "the store holds this entry and the files do not"}
		}
	}
	a.Ahead = a.FilesLast > a.StoreLast
	return a
}

// ImportAudit puts entries, read from the JSON-lines files, into the empty audit log of a
// new store, verbatim: with their sequence numbers and hashes, each checked against its
// content. The next entry appended gets sequence number max(next, newest imported + 1), and
// its prevHash is the hash of the newest imported entry. `certagent store rebuild` uses it.
func (s *Store) ImportAudit(ctx context.Context, entries []ChainedEntry, next uint64) error {
	recs := make([]auditRecord, len(entries))
	for i, e := range entries {
		rec := toAuditRecord(e.AuditEntry)
		rec.sanitize()
		rec.Seq, rec.PrevHash, rec.Hash = e.Seq, e.PrevHash, e.Hash
		if hashOf(&rec) != rec.Hash {
			return fmt.Errorf("importing audit entry %d (%s): its content does not match its hash", e.Seq, e.Where)
		}
		recs[i] = rec
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAudit)
		if k, _ := ab.Cursor().First(); k != nil {
			return refusal{errors.New("the audit log is not empty")}
		}
		s.tx.other, s.tx.headKnown = true, false
		ab.FillPercent = 1.0
		var last uint64
		for _, rec := range recs {
			if rec.Seq <= last {
				return refusal{fmt.Errorf("entry %d comes after entry %d", rec.Seq, last)}
			}
			b, err := json.Marshal(&rec)
			if err != nil {
				return err
			}
			if err := ab.Put(seqKey(rec.Seq), b); err != nil {
				return err
			}
			last = rec.Seq
		}
		if next > 0 {
			last = max(last, next-1)
		}
		return ab.SetSequence(last)
	})
	if err != nil {
		return s.wrap("importing the audit trail", err)
	}
	return nil
}
