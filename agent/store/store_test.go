package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/rotation/rotationtest"
	"github.com/aucloud/certagent/agent/securefile"
)

func quiet() Option { return Logger(slog.New(slog.DiscardHandler)) }

// openTemp opens a new store in a temporary directory and closes it at the end of the test.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state", "certagent.db"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	rotationtest.TestStore(t, func(t *testing.T) rotation.Store { return openTemp(t) })
}

var epoch = time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)

// testApp is the app of testRotation's rotations.
const testApp = "11111111-2222-4333-8444-555555555555"

func testRotation() rotation.Rotation {
	der := make([]byte, 700)
	rand.Read(der)
	return rotation.Rotation{
		ID:          rotation.NewGUID(),
		State:       rotation.StateApplying,
		Certificate: certs.Certificate{Thumbprint: certs.ThumbprintSHA1(der), SHA256: certs.FingerprintSHA256(der), Subject: "CN=test"},
		DER:         der,
		Source:      rotation.Source{Kind: rotation.SourceAPI},
		Target:      rotation.Target{AppID: testApp},
		History:     []rotation.Event{{At: epoch, State: rotation.StateApplying, Actor: "api"}},
		CreatedAt:   epoch,
		UpdatedAt:   epoch,
	}
}

func auditEntry(msg string) rotation.AuditEntry {
	return rotation.AuditEntry{At: epoch, Action: rotation.ActionIntakeRejected, Actor: "intake", Outcome: rotation.OutcomeRefused, Code: certs.NotACertificate, Message: msg}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r := testRotation()
	if _, _, err := s.Create(ctx, r, auditEntry("created")); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, auditEntry("one"), auditEntry("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "target-app-snapshot", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, quiet())
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	got, err := s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint)
	if err != nil || got.ID != r.ID || !bytes.Equal(got.DER, r.DER) {
		t.Errorf("ByThumbprint after reopening = %s, %v; want %s with its DER", got.ID, err, r.ID)
	}
	if v, err := s.GetMeta(ctx, "target-app-snapshot"); err != nil || string(v) != `{"x":1}` {
		t.Errorf("GetMeta after reopening = %q, %v", v, err)
	}
	// Sequence numbers carry on after a reopen; none is given twice.
	if err := s.Append(ctx, auditEntry("three")); err != nil {
		t.Fatal(err)
	}
	log, err := s.Audit(ctx, rotation.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	var seqs []uint64
	for _, e := range log {
		msgs = append(msgs, e.Message)
		seqs = append(seqs, e.Seq)
	}
	if strings.Join(msgs, ",") != "three,two,one,created" || seqs[0] != 4 || seqs[3] != 1 {
		t.Errorf("audit after reopening = %v seqs %v, want three,two,one,created with seqs 4..1", msgs, seqs)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	path := filepath.Join(dir, "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %s, want %s", s.Path(), path)
	}
	if err := securefile.Check(dir); err != nil {
		t.Errorf("the state directory Open created is not private: %v", err)
	}
	if runtime.GOOS == "windows" {
		return // no mode bits: the file inherits the directory's private access list
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("mode of %s = %04o, want %04o", c.path, got, c.want)
		}
	}
}

func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt's lock is on the open file (flock / LockFileEx), so a second open in the same
	// process meets it just as another process would.
	_, err = Open(path, quiet(), LockTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "in use by another certagent process") {
		t.Errorf("second Open = %q, want it to name %s and say it is in use by another certagent process", msg, path)
	}
	// Once the first closes, the file opens.
	s.Close()
	s2, err := Open(path, quiet(), LockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	s2.Close()
}

// writeValidDB makes a real state file with some content and returns its bytes.
func writeValidDB(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 20 {
		if _, _, err := s.Create(ctx, testRotation(), auditEntry("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leafPage returns the number of a leaf page that holds data in the state file data, and
// the file's page size.
func leafPage(t *testing.T, data []byte) (int, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	leaf := -1
	db.View(func(tx *bolt.Tx) error {
		for id := 2; leaf < 0; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return err
			}
			if p.Type == "leaf" && p.Count > 0 {
				leaf = id
			}
		}
		return nil
	})
	size := db.Info().PageSize
	if leaf < 0 || (leaf+1)*size > len(data) {
		t.Fatalf("no leaf page found in the %d-byte file", len(data))
	}
	return leaf, size
}

func TestOpenDamaged(t *testing.T) {
	valid := writeValidDB(t)
	random := make([]byte, 64<<10)
	rand.Read(random)
	// A leaf page in use overwritten: the meta pages stay valid, the tree does not.
	midPage := bytes.Clone(valid)
	leaf, size := leafPage(t, valid)
	for i := leaf * size; i < (leaf+1)*size; i++ {
		midPage[i] = 0xA5
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"text", []byte("this is not a database\n")},
		{"pem certificate", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		{"random", random},
		{"truncated", valid[:size+100]},
		// Cut short past the meta pages: bbolt maps the whole file and trusts its meta, so
		// without the preflight check this was a SIGBUS that killed the process.
		{"cut short", valid[:3*size+100]},
		{"damaged meta pages", append(bytes.Repeat([]byte{0}, 2*size), valid[2*size:]...)},
		{"damaged page", midPage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "certagent.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, quiet(), LockTimeout(100*time.Millisecond))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a damaged file")
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open = %v, want ErrDamaged naming %s", err, path)
			}
			// The file is left as it was for a person to look at. (bbolt on Windows may have
			// grown it to its mapping size: the original bytes stay.)
			if b, _ := os.ReadFile(path); !bytes.HasPrefix(b, tt.data) {
				t.Error("Open changed the damaged file")
			}
		})
	}
}

func TestOpenForeignBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-elses"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, quiet())
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "not a certagent state file") {
		t.Errorf("Open(another program's bbolt file) = %v, want ErrDamaged", err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := strconv.Itoa(SchemaVersion + 1)
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte(newer)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, quiet())
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open(schema %s) = %v, want ErrNewerSchema", newer, err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "schema version "+newer) {
		t.Errorf("Open(schema %s) = %q, want it to name the file and the version", newer, msg)
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.GetMeta(ctx, "absent"); !errors.Is(err, ErrNoMeta) {
		t.Errorf("GetMeta(absent) = %v, want ErrNoMeta", err)
	}
	value := []byte("first")
	if err := s.PutMeta(ctx, "k", value); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X' // the store kept its own copy
	got, err := s.GetMeta(ctx, "k")
	if err != nil || string(got) != "first" {
		t.Errorf("GetMeta = %q, %v; want first", got, err)
	}
	got[0] = 'Y'
	if err := s.PutMeta(ctx, "k", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetMeta(ctx, "k"); string(got) != "second" {
		t.Errorf("GetMeta after overwrite = %q, want second", got)
	}
	if err := s.PutMeta(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetMeta(ctx, "empty"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("GetMeta(empty value) = %q (nil %v), %v; want an empty value", got, got == nil, err)
	}
	if err := s.DeleteMeta(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta(ctx, "k"); !errors.Is(err, ErrNoMeta) {
		t.Errorf("GetMeta after DeleteMeta = %v, want ErrNoMeta", err)
	}
	if err := s.DeleteMeta(ctx, "never"); err != nil {
		t.Errorf("DeleteMeta(absent) = %v, want nil", err)
	}
	for _, key := range []string{"", "_schema", "_anything"} {
		if err := s.PutMeta(ctx, key, []byte("x")); err == nil {
			t.Errorf("PutMeta(%q) = nil, want a refusal", key)
		}
		if _, err := s.GetMeta(ctx, key); err == nil || errors.Is(err, ErrNoMeta) {
			t.Errorf("GetMeta(%q) = %v, want a refusal", key, err)
		}
	}
}

func TestListMeta(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if got, err := s.ListMeta(ctx, "outbox/"); err != nil || len(got) != 0 {
		t.Errorf("ListMeta(empty store) = %v, %v; want nothing", got, err)
	}
	for _, k := range []string{"outbox/2", "outbox/10", "outbox/1", "outbox", "outbox0", "other/1", "outbox/3"} {
		if err := s.PutMeta(ctx, k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteMeta(ctx, "outbox/3"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListMeta(ctx, "outbox/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
		if string(e.Value) != "v"+e.Key {
			t.Errorf("ListMeta value of %s = %q, want %q", e.Key, e.Value, "v"+e.Key)
		}
	}
	if want := []string{"outbox/1", "outbox/10", "outbox/2"}; !slices.Equal(keys, want) {
		t.Errorf("ListMeta(outbox/) keys = %q, want %q (byte order, prefix only)", keys, want)
	}
	got[0].Value[0] = 'X' // a copy: the store is unchanged
	if v, _ := s.GetMeta(ctx, "outbox/1"); string(v) != "voutbox/1" {
		t.Errorf("GetMeta after changing a listed value = %q, want voutbox/1", v)
	}
	for _, prefix := range []string{"", "_", "_sch"} {
		if _, err := s.ListMeta(ctx, prefix); err == nil {
			t.Errorf("ListMeta(%q) = nil error, want a refusal", prefix)
		}
	}
	// What a listing returns survives a reopen (it reads the file, not a cache).
	path := s.Path()
	s.Close()
	s2, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.ListMeta(ctx, "outbox/"); err != nil || len(got) != 3 {
		t.Errorf("ListMeta after reopening = %d entries, %v; want 3", len(got), err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	r := testRotation()
	if _, _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	calls := map[string]error{
		"Create":       func() error { _, _, err := s.Create(ctx, testRotation()); return err }(),
		"Get":          func() error { _, err := s.Get(ctx, r.ID); return err }(),
		"ByThumbprint": func() error { _, err := s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint); return err }(),
		"Update":       s.Update(ctx, r),
		"List":         func() error { _, err := s.List(ctx, rotation.Filter{}); return err }(),
		"Append":       s.Append(ctx, auditEntry("x")),
		"Audit":        func() error { _, err := s.Audit(ctx, rotation.AuditQuery{}); return err }(),
		"GetMeta":      func() error { _, err := s.GetMeta(ctx, "k"); return err }(),
		"PutMeta":      s.PutMeta(ctx, "k", nil),
		"ListMeta":     func() error { _, err := s.ListMeta(ctx, "k"); return err }(),
	}
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// TestSharedWriteIsolatesFailure commits a group in which one write breaks the
// transaction: the others must still commit, and only the broken one fails.
func TestSharedWriteIsolatesFailure(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	records, err := encodeAll([]rotation.AuditEntry{auditEntry("kept")})
	if err != nil {
		t.Fatal(err)
	}
	good := func() *op {
		return &op{fn: func(tx *bolt.Tx) error { return s.appendAudit(tx, records) }, done: make(chan struct{})}
	}
	boom := errors.New("boom")
	bad := &op{fn: func(tx *bolt.Tx) error {
		if err := s.appendAudit(tx, records); err != nil {
			return err
		}
		return boom // after writing: the whole transaction must be rolled back
	}, done: make(chan struct{})}
	refused := &op{fn: func(tx *bolt.Tx) error { return refusal{rotation.ErrNotFound} }, done: make(chan struct{})}
	group := []*op{good(), bad, refused, good()}
	s.sem <- struct{}{}
	s.commit(group)
	<-s.sem
	for i, o := range group {
		if !o.finished() {
			t.Fatalf("write %d not finished", i)
		}
	}
	if group[0].err != nil || group[3].err != nil {
		t.Errorf("good writes = %v, %v; want nil", group[0].err, group[3].err)
	}
	if !errors.Is(bad.err, boom) {
		t.Errorf("broken write = %v, want %v", bad.err, boom)
	}
	if !errors.Is(refused.err, rotation.ErrNotFound) {
		t.Errorf("refused write = %v, want ErrNotFound", refused.err)
	}
	log, err := s.Audit(ctx, rotation.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Errorf("audit log = %d entries, want the 2 good writes' (the broken one rolled back)", len(log))
	}
}

// waitPending waits until n writes are queued.
func waitPending(s *Store, n int) {
	for {
		s.mu.Lock()
		got := len(s.pending)
		s.mu.Unlock()
		if got >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestCancelWhileQueued(t *testing.T) {
	s := openTemp(t)
	s.sem <- struct{}{} // a commit under way
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- s.Append(ctx, auditEntry("never")) }()
	waitPending(s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Append cancelled while queued = %v, want context.Canceled", err)
	}
	<-s.sem
	if log, err := s.Audit(context.Background(), rotation.AuditQuery{}); err != nil || len(log) != 0 {
		t.Errorf("audit log = %d entries, %v; want none: a write dropped before its commit must not land", len(log), err)
	}
}

func TestCloseCommitsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s.sem <- struct{}{} // a commit under way
	errc := make(chan error)
	go func() { errc <- s.Append(context.Background(), auditEntry("queued")) }()
	waitPending(s, 1)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	for {
		s.mu.Lock()
		c := s.closed
		s.mu.Unlock()
		if c {
			break
		}
		runtime.Gosched()
	}
	if err := s.Append(context.Background(), auditEntry("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append while closing = %v, want ErrClosed", err)
	}
	<-s.sem // the commit under way ends
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("queued Append = %v, want nil", err)
	}
	s, err = Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log, err := s.Audit(context.Background(), rotation.AuditQuery{})
	if err != nil || len(log) != 1 || log[0].Message != "queued" {
		t.Errorf("audit log after Close = %+v, %v; want the queued entry", log, err)
	}
}

func TestOversizedWriteFails(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	r := testRotation()
	r.ID = strings.Repeat("x", bolt.MaxKeySize+1)
	if _, _, err := s.Create(ctx, r, auditEntry("huge")); err == nil || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Create(id longer than bbolt's key limit) = %v, want an error naming the state file", err)
	}
	if _, err := s.ByThumbprint(ctx, r.Target.AppID, r.Certificate.Thumbprint); !errors.Is(err, rotation.ErrNotFound) {
		t.Errorf("ByThumbprint after the failed Create = %v, want ErrNotFound", err)
	}
	if log, _ := s.Audit(ctx, rotation.AuditQuery{}); len(log) != 0 {
		t.Errorf("audit log = %d entries, want none", len(log))
	}
}

func TestOpenNotAFile(t *testing.T) {
	path := t.TempDir() // a directory
	_, err := Open(path, quiet(), LockTimeout(100*time.Millisecond))
	if err == nil || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open(a directory) = %v, want an error naming it, not ErrDamaged", err)
	}
}

func messages(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	q := rotation.AuditQuery{Limit: 1000}
	for {
		page, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			slices.Reverse(out)
			return out
		}
		for _, e := range page {
			out = append(out, e.Message)
		}
		q.Before = page[len(page)-1].Seq
	}
}

func TestAppendAsync(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certagent.db")
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 300 {
		msg := fmt.Sprint(i)
		want = append(want, msg)
		if i%100 == 50 {
			// A synchronous write in between keeps its place in the order.
			if err := s.Append(ctx, auditEntry(msg)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.AppendAsync(ctx, auditEntry(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := messages(t, s); !slices.Equal(got, want) {
		t.Fatalf("audit after Flush = %v, want 0..299 in order", got)
	}
	// Close commits what is still queued.
	if err := s.AppendAsync(ctx, auditEntry("last")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAsync(ctx, auditEntry("after close")); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAsync after Close = %v, want ErrClosed", err)
	}
	s, err = Open(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := messages(t, s); len(got) != 301 || got[300] != "last" {
		t.Errorf("audit after reopening = %d entries ending %q, want 301 ending \"last\"", len(got), got[len(got)-1])
	}
}

func TestAppendAsyncBackpressure(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	s.sem <- struct{}{} // the disk is stuck in a commit
	for i := range maxQueued {
		if err := s.AppendAsync(ctx, auditEntry(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.AppendAsync(ctx, auditEntry("waits")) }()
	waitPending(s, maxQueued+1)
	select {
	case err := <-done:
		t.Fatalf("AppendAsync with %d writes queued returned (%v) before its commit", maxQueued, err)
	default:
	}
	<-s.sem
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := messages(t, s)
	if len(got) != maxQueued+1 || got[maxQueued] != "waits" {
		t.Errorf("audit = %d entries, want %d ending with the one that waited", len(got), maxQueued+1)
	}
}

func TestAppendAsyncFailureLogged(t *testing.T) {
	var buf bytes.Buffer
	s, err := Open(filepath.Join(t.TempDir(), "certagent.db"), Logger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := &op{fn: func(*bolt.Tx) error { return errors.New("disk on fire") }, done: make(chan struct{}), async: true}
	s.sem <- struct{}{}
	s.commit([]*op{o})
	<-s.sem
	if !strings.Contains(buf.String(), "disk on fire") {
		t.Errorf("log = %q, want the failed queued write reported", buf.String())
	}
}

// TestOpenLost: a store that is missing or emptied while the state folder shows it had one
// is refused, never silently started over.
func TestOpenLost(t *testing.T) {
	fresh := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "certagent.db")
		s, err := Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		return path
	}
	t.Run("emptied", func(t *testing.T) {
		path := fresh(t)
		os.Truncate(path, 0)
		_, err := Open(path, quiet())
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "certagent store rebuild") {
			t.Errorf("Open(emptied store) = %v, want ErrLost saying how to go on", err)
		}
		if fi, _ := os.Stat(path); fi.Size() != 0 {
			t.Error("Open wrote into the emptied file")
		}
	})
	t.Run("deleted", func(t *testing.T) {
		path := fresh(t)
		os.Remove(path)
		if _, err := Open(path, quiet()); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("Open(deleted store) = %v, want ErrLost", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("Open made a new file")
		}
	})
	t.Run("expected by the caller", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "certagent.db")
		_, err := Open(path, quiet(), ExpectExisting("the API token file exists"))
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "the API token file exists") {
			t.Errorf("Open(no store, expected) = %v, want ErrLost with the caller's reason", err)
		}
	})
	t.Run("new folder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "certagent.db")
		s, err := Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m, err := ReadMarker(path)
		if err != nil || m.StoreID != s.ID() || s.ID() == "" {
			t.Errorf("marker = %+v, %v; store id %q", m, err, s.ID())
		}
	})
	t.Run("replaced", func(t *testing.T) {
		a, b := fresh(t), fresh(t)
		os.Rename(a, b)
		if _, err := Open(b, quiet()); !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), MarkerPath(b)) {
			t.Errorf("Open(another folder's store) = %v, want ErrReplaced naming the marker", err)
		}
	})
	t.Run("reopened", func(t *testing.T) {
		path := fresh(t)
		s, err := Open(path, quiet(), ExpectExisting("x"))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}
