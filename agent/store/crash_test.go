package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// The crash test runs a child process (this test binary again) that writes rotations,
// updates and audit entries from several goroutines and prints a line after each write
// returns; the parent kills it (kill -9 / TerminateProcess) at a random moment, reopens the
// file, and checks it. Every line the parent read is a write that was committed.

const (
	crashEnv      = "CERTAGENT_STORE_CRASH_CHILD"
	crashRoundEnv = "CERTAGENT_STORE_CRASH_ROUND"
	crashRounds   = 6
	crashWorkers  = 2 // of each kind: creators, updaters, appenders
)

func TestCrashSafety(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path, os.Getenv(crashRoundEnv))
		return
	}
	if testing.Short() {
		t.Skip("kills child processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(seed, seed>>1))
	path := filepath.Join(t.TempDir(), "certagent.db")
	j := &journal{updated: map[string]int{}, appended: map[string]int{}, created: map[string]string{}}
	for round := range crashRounds {
		// Round 0 dies at once, possibly while creating the file; later rounds after a random
		// number of committed writes, plus a random pause.
		target := 0
		switch {
		case round > 0 && raceEnabled:
			target = 10 + rng.IntN(40)
		case round > 0:
			target = 10 + rng.IntN(100)
		}
		lines, stderr := runAndKill(t, path, round, target, time.Duration(rng.IntN(3000))*time.Microsecond)
		if round > 0 && len(lines) < target {
			t.Fatalf("round %d: the child stopped after %d writes, before being killed:\n%s", round, len(lines), stderr)
		}
		for _, l := range lines {
			j.add(t, l)
		}
		verifyCrashed(t, path, j)
	}
	t.Logf("%d rotations created, %d updates, %d appends committed across %d kills", len(j.created), j.updates, j.appends, crashRounds)
}

// runAndKill starts a child, reads its lines until it printed target of them, waits pause,
// kills it, and returns every line it printed.
func runAndKill(t *testing.T, path string, round, target int, pause time.Duration) ([]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
	stdin, err := cmd.StdinPipe() // closed when the parent goes: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for len(lines) < target && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	time.Sleep(pause)
	cmd.Process.Kill()
	// What the child printed before it died was committed: read it all.
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cmd.Wait()
	return lines, stderr.String()
}

// journal is what the children reported as committed.
type journal struct {
	created  map[string]string // rotation id → thumbprint
	updated  map[string]int    // rotation id → highest attempt reported
	appended map[string]int    // append batch prefix → entries in it
	updates  int
	appends  int
}

func (j *journal) add(t *testing.T, line string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("child printed %q", line)
	}
	switch f[0] {
	case "C":
		j.created[f[1]] = f[2]
	case "U":
		n, _ := strconv.Atoi(f[2])
		j.updated[f[1]] = max(j.updated[f[1]], n)
		j.updates++
	case "A":
		n, _ := strconv.Atoi(f[2])
		j.appended[f[1]] = n
		j.appends++
	default:
		t.Fatalf("child printed %q", line)
	}
}

func verifyCrashed(t *testing.T, path string, j *journal) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatalf("reopening after kill: %v", err)
	}
	defer s.Close()

	rs, err := s.List(ctx, rotation.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]rotation.Rotation{}
	for _, r := range rs {
		byID[r.ID] = r
		// Intact: the record agrees with itself.
		if certs.ThumbprintSHA1(r.DER) != r.Certificate.Thumbprint || certs.FingerprintSHA256(r.DER) != r.Certificate.SHA256 {
			t.Errorf("rotation %s: DER does not match its recorded hashes", r.ID)
		}
		if len(r.History) != r.Attempts+1 {
			t.Errorf("rotation %s: %d history events for %d updates", r.ID, len(r.History), r.Attempts)
		}
	}
	// The thumbprint index and the rotations agree, both ways.
	err = s.db.View(func(tx *bolt.Tx) error {
		n := 0
		err := tx.Bucket(bucketThumbprints).ForEach(func(key, id []byte) error {
			n++
			r, ok := byID[string(id)]
			if !ok || rotation.CertKey(r.Target.AppID, r.Certificate.Thumbprint) != string(key) {
				t.Errorf("thumbprint index: %s → %s, which is not a rotation for it", key, id)
			}
			return nil
		})
		if n != len(byID) {
			t.Errorf("thumbprint index has %d entries for %d rotations", n, len(byID))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every committed write is there.
	for id, thumb := range j.created {
		r, err := s.ByThumbprint(ctx, testApp, thumb)
		if err != nil || r.ID != id {
			t.Errorf("committed rotation %s (%s): ByThumbprint = %s, %v", id, thumb, r.ID, err)
		}
	}
	for id, n := range j.updated {
		if r := byID[id]; r.Attempts < n {
			t.Errorf("rotation %s: %d updates stored, %d were committed", id, r.Attempts, n)
		}
	}

	// The audit log: unique, strictly ordered sequence numbers; each entry written once; each
	// rotation's entries exactly those of its committed Create and Updates.
	var log []rotation.AuditEntry
	q := rotation.AuditQuery{Limit: 500}
	for {
		page, err := s.Audit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if len(log) > 0 && e.Seq >= log[len(log)-1].Seq {
				t.Fatalf("audit: seq %d after %d, want strictly decreasing", e.Seq, log[len(log)-1].Seq)
			}
			log = append(log, e)
		}
		q.Before = page[len(page)-1].Seq
	}
	messages := map[string]int{}
	creates := map[string]int{}
	updates := map[string][]int{}
	lastAppend := map[string][2]int{} // appender → (batch, entry) of its latest entry
	for i := len(log) - 1; i >= 0; i-- {
		e := log[i]
		messages[e.Message]++
		f := strings.Fields(e.Message)
		switch f[0] {
		case "create":
			creates[f[1]]++
		case "update":
			n, _ := strconv.Atoi(f[2])
			updates[f[1]] = append(updates[f[1]], n)
		case "append":
			// Each appender's entries are in the order it wrote them.
			cut := strings.LastIndexByte(f[1], '-')
			who := f[1][:cut]
			b, _ := strconv.Atoi(f[1][cut+1:])
			k, _ := strconv.Atoi(f[2])
			if prev, ok := lastAppend[who]; ok && (b < prev[0] || b == prev[0] && k <= prev[1]) {
				t.Errorf("audit: appender %s's entry %d of batch %d after entry %d of batch %d", who, k, b, prev[1], prev[0])
			}
			lastAppend[who] = [2]int{b, k}
		}
	}
	for msg, n := range messages {
		if n > 1 {
			t.Errorf("audit entry %q written %d times", msg, n)
		}
	}
	for id, r := range byID {
		if creates[id] != 1 {
			t.Errorf("rotation %s has %d create entries, want 1 (written with it)", id, creates[id])
		}
		if want := seq(1, r.Attempts); !slices.Equal(updates[id], want) {
			t.Errorf("rotation %s at %d updates has update entries %v, want %v", id, r.Attempts, updates[id], want)
		}
	}
	for id := range creates {
		if _, ok := byID[id]; !ok {
			t.Errorf("audit has a create entry for rotation %s, which is not stored", id)
		}
	}
	for id := range updates {
		if _, ok := byID[id]; !ok {
			t.Errorf("audit has update entries for rotation %s, which is not stored", id)
		}
	}
	for prefix, n := range j.appended {
		for k := range n {
			if messages[fmt.Sprintf("append %s %d", prefix, k)] != 1 {
				t.Errorf("committed audit entry \"append %s %d\" is missing", prefix, k)
			}
		}
	}

	// The chain is intact, and the JSON-lines files were caught up by the reopen: every
	// entry once, whatever instant the kill hit (between a commit and its file write, or in
	// the middle of a line).
	rep, err := s.AuditReport(ctx, AuditDirOf(path))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() || rep.Agreement.Behind != 0 || rep.Files.Entries != len(log) {
		t.Errorf("after the kill: store chain %+v, files %+v (%d entries for %d), agreement %+v", rep.Store.Break, rep.Files.Break, rep.Files.Entries, len(log), rep.Agreement)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// crashChild writes until it is killed. Its lines: "C id thumbprint" after a Create, "U id
// attempts" after an Update, "A prefix n" after an Append of n entries.
func crashChild(path, round string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(4) // the parent is gone
	}()
	time.AfterFunc(30*time.Second, func() { os.Exit(5) })
	s, err := Open(path, LockTimeout(10*time.Second))
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	var outMu sync.Mutex
	emit := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	// Each updater owns its rotations, so updates of one rotation never race.
	owned := make([]chan string, crashWorkers)
	for i := range owned {
		owned[i] = make(chan string, 100000)
	}
	existing, err := s.List(ctx, rotation.Filter{})
	if err != nil {
		fail(err)
	}
	for i, r := range existing {
		owned[i%crashWorkers] <- r.ID
	}
	for g := range crashWorkers {
		go func() { // creator
			for i := 0; ; i++ {
				der := make([]byte, 500+mathrand.IntN(3000))
				rand.Read(der)
				now := time.Now().UTC()
				id := fmt.Sprintf("r%s-%d-%d", round, g, i)
				r := rotation.Rotation{
					ID: id, State: rotation.StateApplying,
					Certificate: certs.Certificate{Thumbprint: certs.ThumbprintSHA1(der), SHA256: certs.FingerprintSHA256(der)},
					Target:      rotation.Target{AppID: testApp},
					DER:         der, History: []rotation.Event{{At: now, State: rotation.StateApplying, Actor: "crash"}},
					CreatedAt: now, UpdatedAt: now,
				}
				if _, _, err := s.Create(ctx, r, rotation.AuditEntry{At: now, Action: rotation.ActionRotationState, RotationID: id, Message: "create " + id}); err != nil {
					fail(err)
				}
				emit("C %s %s", id, r.Certificate.Thumbprint)
				owned[g] <- id
			}
		}()
		go func() { // updater
			for id := range owned[g] {
				r, err := s.Get(ctx, id)
				if err != nil {
					fail(err)
				}
				r.Attempts++
				r.State = rotation.StateApplied
				r.UpdatedAt = time.Now().UTC()
				r.History = append(r.History, rotation.Event{At: r.UpdatedAt, State: r.State, Actor: "crash"})
				msg := fmt.Sprintf("update %s %d", id, r.Attempts)
				if err := s.Update(ctx, r, rotation.AuditEntry{At: r.UpdatedAt, Action: rotation.ActionRotationState, RotationID: id, Message: msg}); err != nil {
					fail(err)
				}
				emit("U %s %d", id, r.Attempts)
				owned[g] <- id
			}
		}()
		go func() { // appender
			for i := 0; ; i++ {
				prefix := fmt.Sprintf("a%s-%d-%d", round, g, i)
				n := 1 + mathrand.IntN(4)
				batch := make([]rotation.AuditEntry, n)
				for k := range batch {
					batch[k] = rotation.AuditEntry{At: time.Now().UTC(), Action: rotation.ActionIntakeRejected, Message: fmt.Sprintf("append %s %d", prefix, k)}
				}
				if err := s.Append(ctx, batch...); err != nil {
					fail(err)
				}
				emit("A %s %d", prefix, n)
			}
		}()
	}
	select {}
}
