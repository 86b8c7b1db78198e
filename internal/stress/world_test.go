package stress

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/e2e"
)

// receiver is the provider's webhook: it records each delivery of certificate.applied and
// can hold its answers to widen the window in which a kill lands inside a delivery.
type receiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	delay     time.Duration // hold each answer this long
	inFlight  int
	delivered map[string]int // rotation id → deliveries answered
}

func newReceiver(t testing.TB) *receiver {
	h := &receiver{delivered: map[string]int{}}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	// A killed agent leaves handshakes half done: not worth a line each.
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

func (h *receiver) URL() string { return h.srv.URL + "/hook" }

func (h *receiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h.mu.Lock()
	d := h.delay
	h.inFlight++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
	}()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return // the agent died while waiting: the delivery did not happen
		}
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			RotationID string `json:"rotationId"`
		} `json:"data"`
	}
	if json.Unmarshal(b, &ev) == nil && ev.Type == "certificate.applied" {
		h.mu.Lock()
		h.delivered[ev.Data.RotationID]++
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *receiver) setDelay(d time.Duration) {
	h.mu.Lock()
	h.delay = d
	h.mu.Unlock()
}

func (h *receiver) busy() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inFlight
}

// world is one emulated tenant and one agent process, with what the campaign expects of
// them.
type world struct {
	t    *testing.T
	env  *e2e.Env
	a    *e2e.Agent
	hook *receiver
	cfg  *config.Config

	targetApp, targetObj string
	agentApp, agentObj   string

	// dropped maps each file dropped to whether it must be rejected.
	dropped map[string]bool
	// known are the target app's credentials (keyId → thumbprint) that must stay on it.
	known map[string]string
	// ownOthers are the thumbprints on the agent's own app besides its sign-in certificate.
	ownOthers map[string]bool
	// retirees are credentials added outside the agent for retire runs, with the run that
	// added them.
	retirees map[string]int
	// retireAsked are the keyIds a retire was asked for in the current run.
	retireAsked map[string]bool
	// retired are the keyIds retired on request so far (they may not come back).
	retired map[string]bool
	// reported are audit-log violations already counted: the log keeps them, and a later
	// run must not count them again.
	reported map[string]bool
}

// campaignConfig is the agent's config in the campaign: a short settle window, a webhook,
// a policy allow-list (retire needs one) and a quicker key size for renewals.
func campaignConfig(hook *receiver) func(*config.Config) {
	return func(c *config.Config) {
		c.Intake.Settle = config.Duration(150 * time.Millisecond)
		c.Notify.WebhookURL = hook.URL()
		// The agent trusts cloud.ca_file for the webhook too: add the receiver's certificate
		// to the emulator's CA.
		ca, err := os.ReadFile(c.Cloud.CAFile)
		if err == nil {
			ca = append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.srv.Certificate().Raw})...)
			f := filepath.Join(filepath.Dir(c.File), "trusted.pem")
			if os.WriteFile(f, ca, 0o644) == nil {
				c.Cloud.CAFile = f
			}
		}
		c.Policy.AllowedSubjects = []string{"*"}
		// The shortest retire.after allowed: the campaign ages the ledger past it.
		c.Target.Retire.After = config.Duration(24 * time.Hour)
		c.Auth.KeyBits = 2048
	}
}

func newWorld(t *testing.T, emu ...emulator.Option) *world {
	t.Helper()
	hook := newReceiver(t)
	env := e2e.NewEnvWith(t, campaignConfig(hook), emu...)
	w := &world{t: t, env: env, hook: hook, cfg: env.Config,
		targetApp: env.Info.TargetAppID, agentApp: env.Info.AgentAppID,
		dropped: map[string]bool{}, known: map[string]string{}, ownOthers: map[string]bool{},
		retirees: map[string]int{}, retireAsked: map[string]bool{}, retired: map[string]bool{}, reported: map[string]bool{}}
	ta, err := env.Emu().Application(w.targetApp)
	if err != nil {
		t.Fatal(err)
	}
	aa, err := env.Emu().Application(w.agentApp)
	if err != nil {
		t.Fatal(err)
	}
	w.targetObj, w.agentObj = ta.ObjectID, aa.ObjectID
	for _, c := range ta.KeyCredentials {
		w.known[strings.ToLower(c.KeyID)] = c.Thumbprint
	}
	own := w.ownThumb()
	for _, c := range aa.KeyCredentials {
		if c.Thumbprint != own {
			w.ownOthers[c.Thumbprint] = true
		}
	}
	w.a = env.StartAgent(e2e.WithActor("stress"))
	return w
}

// ownThumb returns the thumbprint of the certificate the agent signs in with, from its file.
func (w *world) ownThumb() string {
	b, err := os.ReadFile(w.cfg.Auth.CertificateFile)
	if err != nil {
		w.t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		w.t.Fatalf("%s holds no PEM certificate", w.cfg.Auth.CertificateFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		w.t.Fatal(err)
	}
	return certs.ThumbprintSHA1(c.Raw)
}

// tool runs a certagent command against the world's config and returns its exit code and
// output.
func (w *world) tool(args ...string) (int, string) {
	cmd := exec.Command(e2e.Binary(w.t), append(args, "-c", w.cfg.File)...)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(b)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(b)
	}
	return -1, err.Error()
}

// snapshotKey is agent/target's meta key for its last read of the app (and the ledger).
const snapshotKey = "target-app-snapshot"

// ageLedger makes every credential the stopped agent's ledger holds as live look first seen
// three days ago, so that the retire guard "first seen less than retire.after (1d) ago"
// passes for them, as it would on an agent that has run for days.
func (w *world) ageLedger() error {
	st, err := store.Open(filepath.Join(w.cfg.StateDir, "certagent.db"), store.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	b, err := st.GetMeta(ctx, snapshotKey)
	if errors.Is(err, store.ErrNoMeta) {
		return nil
	}
	if err != nil {
		return err
	}
	var snap rotation.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return err
	}
	old := time.Now().Add(-72 * time.Hour)
	for id, e := range snap.Ledger.Keys {
		if e.State == rotation.KeyLive && e.Since.After(old) {
			e.Since = old
			snap.Ledger.Keys[id] = e
		}
	}
	if b, err = json.Marshal(snap); err != nil {
		return err
	}
	return st.PutMeta(ctx, snapshotKey, b)
}

// drop writes a file into the drop folder, as a writer that closes it at once.
func (w *world) drop(name string, data []byte, reject bool) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.cfg.DropFolder, name), data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.dropped[name] = reject
}

// settled reports whether the agent has finished everything it was given: no file left in
// the drop folder, no rotation applying or waiting for its webhook delivery, no renewal
// under way and no previous certificate left on its own app. why says what is still open.
func (w *world) settled() (ok bool, why string) {
	ctx := context.Background()
	if n := e2e.CountFiles(w.cfg.DropFolder); n > 0 {
		return false, fmt.Sprintf("%d files still in the drop folder", n)
	}
	rs, err := w.a.Client.Rotations(ctx, "")
	if err != nil {
		return false, "listing rotations: " + err.Error()
	}
	for _, r := range rs {
		switch r.State {
		case "applying", "applied", "pending_approval":
			return false, fmt.Sprintf("rotation %s is %s", r.ID, r.State)
		}
	}
	for _, f := range []string{"agent.next.key", "agent.next.pem", "agent.previous.json"} {
		if _, err := os.Stat(filepath.Join(w.cfg.StateDir, f)); err == nil {
			return false, "renewal under way (" + f + ")"
		}
	}
	own := w.ownThumb()
	for _, c := range w.env.Creds(w.agentApp) {
		if c.Thumbprint != own && !w.ownOthers[c.Thumbprint] {
			return false, "the agent's previous certificate " + c.Thumbprint + " is still on its app"
		}
	}
	return true, ""
}

// waitSettled waits up to d for settled; it returns "" or why it did not settle.
func (w *world) waitSettled(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		if w.a.Exited() {
			return "the agent exited:\n" + tail(w.a.Log(), 20)
		}
		ok, why := w.settled()
		if ok {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("not settled after %s: %s", d, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// audit returns the whole audit log, oldest first.
func (w *world) audit() ([]apitype.AuditEntry, error) {
	var all []apitype.AuditEntry
	var before uint64
	for {
		l, err := w.a.Client.Audit(context.Background(), before, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Items...)
		if l.Next == 0 {
			break
		}
		before = l.Next
	}
	slices.Reverse(all)
	return all, nil
}

// Invariant names, the rows of the table.
const (
	invDup     = "no certificate twice on an app (target and the agent's own)"
	invLost    = "no credential lost that the agent did not retire on request"
	invFiles   = "every dropped file in exactly one of processed/ or rejected/ (rejected: with its reason note)"
	invStore   = "the store opens after the kill (store check) and agrees with the app"
	invAudit   = "the audit chain verifies (audit verify); every step audited once"
	invSettled = "the restarted agent settles: nothing stuck applying, renewal finished, webhook delivered"
)

var invariants = []string{invDup, invLost, invFiles, invStore, invAudit, invSettled}

var stampRE = regexp.MustCompile(`^\d{8}T\d{6}Z_`)

// archivedAs reports whether archived (a name in processed/ or rejected/) is the file name
// filed: "<stamp>_<name>" or, after a clash, "<stamp>_<stem>-<k><ext>".
func archivedAs(archived, name string) bool {
	loc := stampRE.FindStringIndex(archived)
	if loc == nil {
		return false
	}
	rest := archived[loc[1]:]
	if rest == name {
		return true
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if len(archived) >= 230 && len(rest) < len(name) && strings.HasSuffix(rest, ext) {
		// Too long for the file system with its note's suffix: the stem lost its end.
		return strings.HasPrefix(stem, strings.TrimSuffix(rest, ext))
	}
	if !strings.HasPrefix(rest, stem+"-") || !strings.HasSuffix(rest, ext) {
		return false
	}
	k := strings.TrimSuffix(strings.TrimPrefix(rest, stem+"-"), ext)
	return k != "" && strings.Trim(k, "0123456789") == ""
}

// check runs every invariant on the settled world and returns the violations by invariant.
func (w *world) check(offline map[string][]string) map[string][]string {
	v := map[string][]string{}
	for k, msgs := range offline {
		v[k] = append(v[k], msgs...)
	}
	add := func(inv, format string, args ...any) { v[inv] = append(v[inv], fmt.Sprintf(format, args...)) }
	ctx := context.Background()

	// No certificate twice.
	target := w.env.Creds(w.targetApp)
	own := w.env.Creds(w.agentApp)
	for name, creds := range map[string][]emulator.KeyCredentialView{"target app": target, "agent's app": own} {
		seen := map[string]int{}
		for _, c := range creds {
			seen[c.Thumbprint]++
		}
		for tp, n := range seen {
			if n > 1 && !w.reported["dup "+tp] {
				w.reported["dup "+tp] = true // counted once, not again on every later run
				add(invDup, "%s holds certificate %s %d times", name, tp, n)
			}
		}
	}

	// No credential lost.
	now := map[string]string{}
	for _, c := range target {
		now[strings.ToLower(c.KeyID)] = c.Thumbprint
	}
	for id, tp := range w.known {
		if _, ok := now[id]; !ok && !w.retireAsked[id] {
			add(invLost, "target credential %s (%s) is gone and no retire was asked for it", id, tp)
		}
	}
	for id := range w.retireAsked {
		if _, ok := now[id]; !ok {
			w.retired[id] = true
			delete(w.retirees, id)
		}
	}
	for id := range w.retired {
		if _, ok := now[id]; ok {
			add(invLost, "credential %s, retired on request, is back on the app", id)
		}
	}
	w.known = now
	ownNow := map[string]bool{}
	for _, c := range own {
		ownNow[c.Thumbprint] = true
	}
	if tp := w.ownThumb(); !ownNow[tp] {
		add(invLost, "the agent's sign-in certificate %s is not on its app", tp)
	}
	for tp := range w.ownOthers {
		if !ownNow[tp] {
			add(invLost, "credential %s of the agent's app, not the agent's, is gone", tp)
		}
	}

	// Every file filed once.
	var archived []string
	for _, sub := range []string{"processed", "rejected"} {
		ents, _ := os.ReadDir(filepath.Join(w.cfg.DropFolder, sub))
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".reason.txt") {
				archived = append(archived, sub+"/"+e.Name())
			}
		}
	}
	for name, reject := range w.dropped {
		if _, err := os.Lstat(filepath.Join(w.cfg.DropFolder, name)); err == nil {
			add(invFiles, "%s is still in the drop folder", name)
			continue
		}
		var hits []string
		for _, a := range archived {
			if archivedAs(filepath.Base(a), name) {
				hits = append(hits, a)
			}
		}
		switch {
		case len(hits) != 1:
			add(invFiles, "%s filed %d times: %v", name, len(hits), hits)
		case reject != strings.HasPrefix(hits[0], "rejected/"):
			add(invFiles, "%s filed as %s, want rejected %v", name, hits[0], reject)
		case reject:
			if _, err := os.Stat(filepath.Join(w.cfg.DropFolder, hits[0]+".reason.txt")); err != nil {
				add(invFiles, "%s has no reason note", hits[0])
			}
		}
	}

	// The store agrees with the app.
	rs, err := w.a.Client.Rotations(ctx, "")
	if err != nil {
		add(invStore, "listing rotations: %v", err)
	}
	for _, r := range rs {
		switch r.State {
		case "applied", "confirmed":
			if _, ok := now[strings.ToLower(r.KeyID)]; !ok && !w.retired[strings.ToLower(r.KeyID)] {
				add(invStore, "rotation %s is %s with keyId %s, which the app does not hold", r.ID, r.State, r.KeyID)
			}
			if n := e2e.CountThumb(target, r.Certificate.Thumbprint); n != 1 {
				add(invStore, "rotation %s is %s but the app holds its certificate %d times", r.ID, r.State, n)
			}
		case "failed", "rejected":
			reason := ""
			if r.Reason != nil {
				reason = string(r.Reason.Code) + ": " + r.Reason.Message
			}
			add(invSettled, "rotation %s is %s: %s", r.ID, r.State, reason)
		}
		if r.State == "confirmed" && w.hook.deliveredTo(r.ID) == 0 {
			add(invSettled, "rotation %s is confirmed but its webhook never got certificate.applied", r.ID)
		}
	}

	// Every step audited once.
	entries, err := w.audit()
	if err != nil {
		add(invAudit, "reading the audit log: %v", err)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq != entries[i-1].Seq+1 {
			add(invAudit, "audit sequence jumps from %d to %d", entries[i-1].Seq, entries[i].Seq)
		}
	}
	states := map[string][]string{}
	once := map[string]int{}
	for _, e := range entries {
		switch {
		case e.Action == "rotation.state":
			states[e.RotationID] = append(states[e.RotationID], e.State)
		case e.Action == "graph.write" && e.Outcome == "ok" && strings.HasPrefix(e.Message, "wrote keyId"):
			once["graph.write of rotation "+e.RotationID]++
		case e.Action == "graph.retire" && e.Outcome == "ok" && strings.HasPrefix(e.Message, "retired keyId"):
			once["graph.retire of "+e.KeyID]++
		case e.Action == "credential" && e.Outcome == "ok":
			once["credential: "+e.Message]++
		case e.Action == "intake.filed" || e.Action == "intake.rejected":
			once[e.Action+" "+e.Message]++
		}
	}
	for k, n := range once {
		if n > 1 && !w.reported[k] {
			w.reported[k] = true
			add(invAudit, "%s audited %d times", k, n)
		}
	}
	for _, r := range rs {
		var hist []string
		for _, h := range r.History {
			hist = append(hist, h.State)
		}
		if !slices.Equal(hist, states[r.ID]) {
			add(invAudit, "rotation %s: history %v, audit log %v", r.ID, hist, states[r.ID])
		}
	}
	return v
}

func (h *receiver) deliveredTo(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered[id]
}

// pick returns a random element of xs.
func pick[T any](rng *mathrand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }
