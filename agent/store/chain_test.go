package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// newStoreWith opens a new store with n audit entries ("entry 1" ... "entry n") and closes
// it; it returns the store's path.
func newStoreWith(t *testing.T, n int, opts ...Option) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "certagent.db")
	s, err := Open(path, append([]Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// appendN appends entries "entry from" ... "entry to", a few per call.
func appendN(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i <= to; i += 3 {
		var batch []rotation.AuditEntry
		for j := i; j <= min(i+2, to); j++ {
			e := auditEntry(fmt.Sprintf("entry %d", j))
			e.At = epoch.Add(time.Duration(j) * time.Second)
			batch = append(batch, e)
		}
		if err := s.Append(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
	}
}

// reportOf opens the store read-only and verifies it with its files.
func reportOf(t *testing.T, path string) AuditReport {
	t.Helper()
	s, err := OpenReadOnly(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.AuditReport(context.Background(), AuditDirOf(path))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestChainIntact(t *testing.T) {
	path := newStoreWith(t, 20)
	rep := reportOf(t, path)
	if !rep.Intact() || rep.Store.Entries != 20 || rep.Files.Entries != 20 || rep.Agreement.Behind != 0 {
		t.Fatalf("report = %+v, want both intact with 20 entries, agreeing", rep)
	}
	if rep.Store.First != 1 || rep.Store.Last != 20 || rep.Files.Last != 20 {
		t.Errorf("ends = store %d..%d, files ..%d; want 1..20", rep.Store.First, rep.Store.Last, rep.Files.Last)
	}
}

// TestChainLinks: each entry carries its predecessor's hash and a hash of its own content
// with its seq.
func TestChainLinks(t *testing.T) {
	path := newStoreWith(t, 5)
	lines := readLines(t, AuditDirOf(path))
	prev := ""
	for i, l := range lines {
		if l.Seq != uint64(i+1) || l.PrevHash != prev || len(l.Hash) != HashLen {
			t.Fatalf("line %d = seq %d prevHash %q hash %q; want seq %d after %q", i, l.Seq, l.PrevHash, l.Hash, i+1, prev)
		}
		rec := l
		if hashOf(&rec) != l.Hash {
			t.Fatalf("line %d: hash does not match the canonical encoding", i)
		}
		prev = l.Hash
	}
	// The seq is part of what is hashed: the same content under another seq hashes
	// differently.
	rec := lines[2]
	rec.Seq = 4
	if hashOf(&rec) == lines[2].Hash {
		t.Error("the hash does not cover the seq")
	}
}

// TestChainAppID: an entry that names an app hashes it (moving an entry to another app breaks
// the chain), and an entry without one hashes exactly as before the field existed, so that
// chains written by earlier versions verify.
func TestChainAppID(t *testing.T) {
	rec := toAuditRecord(auditEntry("about an app"))
	rec.sanitize()
	before, body := hashOf(&rec), string(canonicalBody(&rec))
	rec.AppID = "11111111-2222-4333-8444-555555555555"
	withApp := hashOf(&rec)
	// The field comes last, so an entry without it encodes as it always did (the golden
	// entry in testdata/audit.v2.json holds an old hash).
	if got := string(canonicalBody(&rec)); got != body+"appId:36:"+rec.AppID+"\n" {
		t.Errorf("canonical body with an app id = %q, want the old body and then the app id", got)
	}
	rec.AppID = "66666666-7777-4888-9999-aaaaaaaaaaaa"
	if withApp == before || hashOf(&rec) == withApp {
		t.Error("the hash does not cover the app id")
	}

	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e := auditEntry("on an app")
	e.AppID = "11111111-2222-4333-8444-555555555555"
	if err := s.Append(context.Background(), auditEntry("before"), e, auditEntry("after")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(context.Background(), rotation.AuditQuery{Limit: 2})
	if err != nil || len(got) != 2 || got[1].AppID != e.AppID || got[0].AppID != "" {
		t.Errorf("audit read back = %+v, %v; want the app id on the middle entry only", got, err)
	}
	s.Close()
	if rep := reportOf(t, path); !rep.Intact() {
		t.Fatalf("report = %+v, want intact", rep)
	}
	tamperStore(t, path, func(ab *bolt.Bucket) {
		editRecord(t, ab, 2, func(m map[string]any) { m["appId"] = "66666666-7777-4888-9999-aaaaaaaaaaaa" })
	})
	if rep := reportOf(t, path); rep.Store.Break == nil || rep.Store.Break.Seq != 2 {
		t.Errorf("store report after moving entry 2 to another app = %+v, want a break at 2", rep.Store)
	}
}

// TestChainInvalidUTF8: a string with invalid UTF-8 is hashed as its JSON holds it, so the
// copies read back from the store and from the files verify.
func TestChainInvalidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e := auditEntry("bad \xff\xfe bytes")
	e.File = "caf\xe9.cer"
	if err := s.Append(context.Background(), e, auditEntry("next")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if rep := reportOf(t, path); !rep.Intact() {
		t.Fatalf("report = %+v, want intact", rep)
	}
}

// tamper applies change to the store's audit values (seq → value) with bbolt directly.
func tamperStore(t *testing.T, path string, change func(ab *bolt.Bucket)) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { change(tx.Bucket(bucketAudit)); return nil }); err != nil {
		t.Fatal(err)
	}
}

func editRecord(t *testing.T, ab *bolt.Bucket, seq uint64, edit func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ab.Get(seqKey(seq)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	if err := ab.Put(seqKey(seq), b); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyStoreBreaks: a modified, deleted or reordered entry in the store breaks the chain
// at that entry, and the break says which and how.
func TestVerifyStoreBreaks(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, ab *bolt.Bucket)
		seq      uint64
		kind     string
		contains string
	}{
		{"modified", func(t *testing.T, ab *bolt.Bucket) {
			editRecord(t, ab, 7, func(m map[string]any) { m["message"] = "nothing happened here" })
		}, 7, BreakModified, "does not match its hash"},
		{"modified and re-hashed", func(t *testing.T, ab *bolt.Bucket) {
			editRecord(t, ab, 7, func(m map[string]any) {
				m["message"] = "nothing happened here"
				b, _ := json.Marshal(m)
				rec, _ := decodeAuditRecord(b)
				m["hash"] = hashOf(&rec)
			})
		}, 7, BreakModified, "hash recomputed"},
		{"deleted", func(t *testing.T, ab *bolt.Bucket) {
			ab.Delete(seqKey(7))
			ab.Delete(seqKey(8))
		}, 7, BreakDeleted, "entries 7 to 8 are missing"},
		{"deleted last", func(t *testing.T, ab *bolt.Bucket) {
			ab.Delete(seqKey(1))
		}, 1, BreakDeleted, "starts with entry 2"},
		{"reordered", func(t *testing.T, ab *bolt.Bucket) {
			a, b := bytes.Clone(ab.Get(seqKey(7))), bytes.Clone(ab.Get(seqKey(8)))
			ab.Put(seqKey(7), b)
			ab.Put(seqKey(8), a)
		}, 7, BreakReordered, "holds entry 8 under sequence number 7"},
		{"unreadable", func(t *testing.T, ab *bolt.Bucket) {
			ab.Put(seqKey(7), []byte("{not json"))
		}, 7, BreakUnreadable, "does not decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newStoreWith(t, 12)
			tamperStore(t, path, func(ab *bolt.Bucket) { tt.tamper(t, ab) })
			rep := reportOf(t, path)
			b := rep.Store.Break
			if b == nil {
				t.Fatalf("store chain intact after tampering: %+v", rep.Store)
			}
			if b.Seq != tt.seq || b.Kind != tt.kind || !strings.Contains(b.Detail, tt.contains) {
				t.Errorf("break = %v; want entry %d %s saying %q", b, tt.seq, tt.kind, tt.contains)
			}
			if !rep.Files.Intact() {
				t.Errorf("the files' chain broke too: %v", rep.Files.Break)
			}
			if tt.kind != BreakDeleted && rep.Agreement.Agrees() {
				t.Errorf("agreement = %+v, want the store and files to differ", rep.Agreement)
			}
		})
	}
}

func readLines(t *testing.T, dir string) []auditRecord {
	t.Helper()
	files, err := listTrail(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditRecord
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
			if len(l) == 0 {
				continue
			}
			var tl auditRecord
			if err := json.Unmarshal(l, &tl); err != nil {
				t.Fatalf("%s: %v: %s", f.path, err, l)
			}
			out = append(out, tl)
		}
	}
	return out
}

// editFile rewrites the lines (without their newline) of the single audit file.
func editFile(t *testing.T, path string, edit func(lines [][]byte) [][]byte) {
	t.Helper()
	f := filepath.Join(AuditDirOf(path), trailFileName(1))
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
	lines = edit(lines)
	if err := os.WriteFile(f, append(bytes.Join(lines, []byte{'\n'}), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFileBreaks: the same in the JSON-lines files, where the break names the line.
func TestVerifyFileBreaks(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(lines [][]byte) [][]byte
		seq      uint64
		kind     string
		where    string
		contains string
	}{
		{"modified", func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte("entry 7"), []byte("entry 9"), 1)
			return l
		}, 7, BreakModified, "audit-000001.jsonl:7", "does not match its hash"},
		{"deleted", func(l [][]byte) [][]byte {
			return append(l[:6:6], l[7:]...)
		}, 7, BreakDeleted, "audit-000001.jsonl:7", "entry 7 is missing"},
		{"reordered", func(l [][]byte) [][]byte {
			l[6], l[7] = l[7], l[6]
			return l
		}, 8, BreakReordered, "audit-000001.jsonl:7", "comes before entry 7"},
		{"duplicated", func(l [][]byte) [][]byte {
			return append(l[:8:8], append([][]byte{l[6]}, l[8:]...)...)
		}, 7, BreakReordered, "audit-000001.jsonl:9", "comes after entry 8"},
		{"garbage line", func(l [][]byte) [][]byte {
			l[6] = []byte("hello")
			return l
		}, 7, BreakUnreadable, "audit-000001.jsonl:7", "not an audit entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newStoreWith(t, 12)
			editFile(t, path, tt.edit)
			r, err := VerifyAuditFiles(AuditDirOf(path))
			if err != nil {
				t.Fatal(err)
			}
			b := r.Break
			if b == nil {
				t.Fatalf("files' chain intact after editing: %+v", r)
			}
			if b.Seq != tt.seq || b.Kind != tt.kind || b.Where != tt.where || !strings.Contains(b.Detail, tt.contains) {
				t.Errorf("break = %v; want entry %d %s at %s saying %q", b, tt.seq, tt.kind, tt.where, tt.contains)
			}
			entries, _, err := ReadAuditFiles(AuditDirOf(path))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(entries); n != 6 && n != 8 {
				t.Errorf("ReadAuditFiles kept %d entries, want those before the break", n)
			}
		})
	}
}

// TestTrailCatchUp: when the process dies between a commit and the file write, the next
// Open writes what the files lack, and no seq twice.
func TestTrailCatchUp(t *testing.T) {
	t.Run("entries committed without the files", func(t *testing.T) {
		path := newStoreWith(t, 5)
		// Commits whose file writes never happened: as if the process died right after
		// each commit.
		s, err := Open(path, quiet(), NoAuditFiles())
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, s, 6, 9)
		s.Close()
		if got := readLines(t, AuditDirOf(path)); len(got) != 5 {
			t.Fatalf("files hold %d entries before the catch-up, want 5", len(got))
		}
		s, err = Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		checkLinesExactly(t, path, 9)
	})
	t.Run("partial last line", func(t *testing.T) {
		path := newStoreWith(t, 5)
		f := filepath.Join(AuditDirOf(path), trailFileName(1))
		b, _ := os.ReadFile(f)
		lines := bytes.SplitAfter(b, []byte{'\n'})
		// The last write was cut short in the middle of entry 5.
		cut := append(bytes.Join(lines[:4], nil), lines[4][:len(lines[4])/2]...)
		os.WriteFile(f, cut, 0o600)
		r, err := VerifyAuditFiles(AuditDirOf(path))
		if err != nil || !r.Intact() || r.Last != 4 || len(r.Notes) != 1 {
			t.Errorf("verify with a partial last line = %+v, %v; want intact up to 4 with a note", r, err)
		}
		s, err := Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, s, 6, 6)
		s.Close()
		checkLinesExactly(t, path, 6)
	})
	t.Run("files lost", func(t *testing.T) {
		path := newStoreWith(t, 5)
		os.RemoveAll(AuditDirOf(path))
		s, err := Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		checkLinesExactly(t, path, 5)
	})
}

// checkLinesExactly checks that the files hold entries 1..n, once each, in order, agreeing
// with the store.
func checkLinesExactly(t *testing.T, path string, n int) {
	t.Helper()
	lines := readLines(t, AuditDirOf(path))
	if len(lines) != n {
		t.Fatalf("files hold %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l.Seq != uint64(i+1) {
			t.Fatalf("line %d holds seq %d", i+1, l.Seq)
		}
	}
	if rep := reportOf(t, path); !rep.Intact() || rep.Agreement.Behind != 0 {
		t.Errorf("report = %+v, want intact and agreeing", rep)
	}
}

// TestTrailRotates: the files are cut by size and the chain runs across them.
func TestTrailRotates(t *testing.T) {
	path := newStoreWith(t, 40, AuditFileSize(2000))
	files, err := listTrail(AuditDirOf(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("%d files for 40 entries at 2000 bytes each, want several", len(files))
	}
	for _, f := range files {
		fi, _ := os.Stat(f.path)
		if fi.Size() > 2000 {
			t.Errorf("%s is %d bytes, over the limit", f.path, fi.Size())
		}
		if err := checkPrivate(f.path); err != nil {
			t.Error(err)
		}
	}
	checkLinesExactly(t, path, 40)
	// Reopened, it goes on in the newest file.
	s, err := Open(path, quiet(), AuditFileSize(2000))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 41, 45)
	s.Close()
	checkLinesExactly(t, path, 45)

	// A line removed from the middle file breaks the chain across files.
	mid := files[len(files)/2].path
	b, _ := os.ReadFile(mid)
	lines := bytes.SplitAfter(b, []byte{'\n'})
	os.WriteFile(mid, bytes.Join(lines[1:], nil), 0o600)
	r, err := VerifyAuditFiles(AuditDirOf(path))
	if err != nil {
		t.Fatal(err)
	}
	if r.Break == nil || r.Break.Kind != BreakDeleted || !strings.HasPrefix(r.Break.Where, filepath.Base(mid)+":1") {
		t.Errorf("break = %v, want a deletion at the start of %s", r.Break, filepath.Base(mid))
	}
}

// TestTrailDiverged: files ahead of the store (an old backup restored) are not written
// over; the store keeps working and says why.
func TestTrailDiverged(t *testing.T) {
	path := newStoreWith(t, 5)
	backup, _ := os.ReadFile(path)
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 6, 8)
	s.Close()
	os.WriteFile(path, backup, 0o600)
	s, err = Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TrailError(); !errors.Is(err, ErrAuditFilesDiverged) || !strings.Contains(err.Error(), "end at entry 8, the store at 5") {
		t.Errorf("TrailError = %v, want the files ahead of the store", err)
	}
	appendN(t, s, 9, 9)
	s.Close()
	if n := len(readLines(t, AuditDirOf(path))); n != 8 {
		t.Errorf("files hold %d lines, want the 8 they had (no seq written twice)", n)
	}
	rep := reportOf(t, path)
	if !rep.Agreement.Ahead && rep.Agreement.Differ == nil {
		t.Errorf("agreement = %+v, want a disagreement", rep.Agreement)
	}
}

// TestAuditFilesShowLostStore: audit files beside a missing store show the folder had one.
func TestAuditFilesShowLostStore(t *testing.T) {
	path := newStoreWith(t, 3)
	os.Remove(path)
	os.Remove(MarkerPath(path))
	if _, err := Open(path, quiet()); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "audit") {
		t.Errorf("Open(missing store beside its audit files) = %v, want ErrLost naming them", err)
	}
}

// TestMigrateSchema1: a version 1 file (audit values without a chain) opens, its entries
// are chained in place, and the files get them.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	v1, err := os.ReadFile(filepath.Join("testdata", "audit.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	json.Compact(&compact, v1)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := goldenRotation()
	rv, _ := encodeRotation(r, 1)
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			tx.CreateBucket(name)
		}
		tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
		tx.Bucket(bucketRotations).Put([]byte(r.ID), rv)
		tx.Bucket(bucketThumbprints).Put([]byte(r.Certificate.Thumbprint), []byte(r.ID))
		ab := tx.Bucket(bucketAudit)
		for range 2500 {
			seq, _ := ab.NextSequence()
			ab.Put(seqKey(seq), compact.Bytes())
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ro.VerifyAudit(context.Background()); err != nil || !res.Unchained || res.Entries != 2500 || ro.Schema() != 1 {
		t.Errorf("read-only schema 1 = %d, %+v, %v; want unchained, not migrated", ro.Schema(), res, err)
	}
	ro.Close()

	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema() != SchemaVersion {
		t.Errorf("schema after Open = %d, want %d", s.Schema(), SchemaVersion)
	}
	got, err := s.Audit(context.Background(), rotation.AuditQuery{Limit: 1})
	if err != nil || len(got) != 1 || got[0].Seq != 2500 || got[0].Message != goldenAudit().Message {
		t.Errorf("newest entry after migration = %+v, %v", got, err)
	}
	appendN(t, s, 1, 2)
	s.Close()
	rep := reportOf(t, path)
	if !rep.Intact() || rep.Store.Entries != 2502 || rep.Files.Entries != 2502 {
		t.Errorf("after migration: %+v", rep)
	}
}

// TestOpenReadOnly: it writes nothing, refuses writes, and cannot open a store an agent
// holds.
func TestOpenReadOnly(t *testing.T) {
	path := newStoreWith(t, 2)
	os.RemoveAll(AuditDirOf(path))
	before, _ := os.ReadFile(path)
	s, err := OpenReadOnly(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), auditEntry("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := s.AppendAsync(context.Background(), auditEntry("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("AppendAsync on a read-only store = %v, want ErrReadOnly", err)
	}
	if m, _ := ReadMarker(path); s.ID() == "" || s.ID() != m.StoreID {
		t.Errorf("read-only ID = %q, marker %q", s.ID(), m.StoreID)
	}
	s.Close()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a read-only open changed the file")
	}
	if _, err := os.Stat(AuditDirOf(path)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a read-only open made the audit folder")
	}

	held, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := OpenReadOnly(path, quiet(), LockTimeout(50*time.Millisecond)); !errors.Is(err, ErrInUse) {
		t.Errorf("OpenReadOnly(held by an agent) = %v, want ErrInUse", err)
	}
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "none.db"), quiet()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly(missing) = %v, want ErrNotExist", err)
	}
}

// TestImportAudit: entries read from the files go into a new store verbatim, and the chain
// goes on from them.
func TestImportAudit(t *testing.T) {
	path := newStoreWith(t, 10)
	entries, res, err := ReadAuditFiles(AuditDirOf(path))
	if err != nil || !res.Intact() || len(entries) != 10 {
		t.Fatalf("ReadAuditFiles = %d entries, %+v, %v", len(entries), res, err)
	}
	// A new store beside the same files, as `store rebuild` makes it.
	os.Rename(path, path+".old")
	os.Rename(MarkerPath(path), MarkerPath(path)+".old")
	s, err := Open(path, quiet(), NoAuditFiles())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImportAudit(context.Background(), entries[:7], 11); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportAudit(context.Background(), entries, 0); err == nil {
		t.Error("a second import into a non-empty log succeeded")
	}
	rebuilt := auditEntry("store rebuilt")
	rebuilt.Action = rotation.ActionStoreRebuilt
	if err := s.Append(context.Background(), rebuilt); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Audit(context.Background(), rotation.AuditQuery{Limit: 1})
	s.Close()
	if len(got) != 1 || got[0].Seq != 11 {
		t.Fatalf("the entry after the import = %+v, want seq 11", got)
	}
	rep := reportOf(t, path)
	if !rep.Store.Intact() || len(rep.Store.Notes) != 1 || !strings.Contains(rep.Store.Notes[0], "entries 8 to 10") {
		t.Errorf("store chain = %+v, want intact with a note on entries 8 to 10", rep.Store)
	}
	// The files had 1..10 and got 11, which links to 7: the files' chain shows it.
	if n := len(readLines(t, AuditDirOf(path))); n != 11 {
		t.Errorf("files hold %d lines, want 11", n)
	}
	if rep.Files.Break == nil || rep.Files.Break.Seq != 10 {
		t.Errorf("files' break = %v, want one at entry 10 (11 does not link to it)", rep.Files.Break)
	}
}

func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 && os.PathSeparator == '/' {
		return fmt.Errorf("%s has mode %04o, want private", path, fi.Mode().Perm())
	}
	return nil
}

var _ = certs.Expired
