package agent_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/devenv"
)

// harness is an agent running in this process against an in-process emulated tenant,
// driven by the real Graph SDK on the wire and by its API client.
type harness struct {
	t      testing.TB
	token  string
	env    *devenv.Env
	agent  *agent.Agent
	client *client.Client
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, edit func(*config.Config)) *harness {
	t.Helper()
	return startIn(t, devenv.Options{}, edit)
}

// startRealistic starts the agent against an emulated tenant as slow and inconsistent as
// Entra: new keys sign in only after a while, reads lag writes (emulator.WithRealistic).
func startRealistic(t testing.TB, seed int64, edit func(*config.Config)) *harness {
	t.Helper()
	t.Logf("realistic emulator, seed %d", seed)
	return startIn(t, devenv.Options{Realistic: true, RealisticSeed: seed}, edit)
}

func startIn(t testing.TB, o devenv.Options, edit func(*config.Config)) *harness {
	t.Helper()
	return startPrepared(t, o, edit, nil)
}

// startPrepared is startIn with prepare run on the environment before the agent starts (to
// add apps or tenants, or change the config with what Setup made).
func startPrepared(t testing.TB, o devenv.Options, edit func(*config.Config), prepare func(env *devenv.Env)) *harness {
	t.Helper()
	o.Dir, o.APIListen = t.TempDir(), "127.0.0.1:0"
	o.Edit = func(c *config.Config) {
		c.Intake.Settle = config.Duration(100 * time.Millisecond)
		if edit != nil {
			edit(c)
		}
	}
	env, err := devenv.Setup(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	if prepare != nil {
		prepare(env)
	}
	h := &harness{t: t, env: env, done: make(chan error, 1)}
	h.startAgent()
	return h
}

func (h *harness) startAgent() {
	h.t.Helper()
	h.startAgentWith(true)
}

func (h *harness) startAgentWith(waitReady bool) {
	t := h.t
	t.Helper()
	var ln = h.env.APIListener
	h.env.APIListener = nil
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := agent.New(agent.Options{Config: h.env.Config, Logger: log, Version: "test", Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	tok, err := client.ReadTokenFile(h.env.Config.API.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	h.token = string(tok)
	h.client, err = client.New("http://"+ln.Addr().String(), tok, client.WithActor("tester"))
	if err != nil {
		t.Fatal(err)
	}
	if !waitReady {
		h.waitFor("live", func() bool { _, err := h.client.Live(context.Background()); return err == nil })
		return
	}
	h.waitFor("ready", func() bool { _, err := h.client.Ready(context.Background()); return err == nil })
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run returned %v", err)
	}
	h.agent.Close()
	h.cancel = nil
}

// restart stops the agent and starts a new one on the same state, on a fresh API port.
func (h *harness) restart() {
	h.t.Helper()
	h.restartWith(true)
}

// restartWith restarts the agent; without waitReady it waits only until the API answers (an
// agent that cannot sign in for good is live but never ready).
func (h *harness) restartWith(waitReady bool) {
	h.t.Helper()
	h.stop()
	ln, err := netListen()
	if err != nil {
		h.t.Fatal(err)
	}
	h.env.APIListener = ln
	h.env.Config.API.Listen = ln.Addr().String()
	h.startAgentWith(waitReady)
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second) // realistic sign-in propagation takes up to 20 s
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) rotation(id, state string) apitype.Rotation {
	h.t.Helper()
	var r apitype.Rotation
	h.waitFor("rotation "+id+" "+state, func() bool {
		var err error
		r, err = h.client.Rotation(context.Background(), id)
		return err == nil && r.State == state
	})
	return r
}

func (h *harness) creds() []emulator.KeyCredentialView {
	h.t.Helper()
	return h.appCreds(h.env.Info.TargetAppID)
}

// appCreds returns the credentials of the emulated app appID.
func (h *harness) appCreds(appID string) []emulator.KeyCredentialView {
	h.t.Helper()
	app, err := h.env.Emulator.Application(appID)
	if err != nil {
		h.t.Fatal(err)
	}
	return app.KeyCredentials
}

// dropIn writes c as name into the drop folder's subfolder sub ("" the drop folder itself).
func (h *harness) dropIn(sub, name string, c certtest.Cert) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.env.Config.DropFolder, sub, name), c.PEM(), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func countThumb(creds []emulator.KeyCredentialView, thumb string) int {
	n := 0
	for _, c := range creds {
		if c.Thumbprint == thumb {
			n++
		}
	}
	return n
}

func hasProblem(s apitype.Status, code string) bool {
	for _, p := range s.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

func TestAPISubmitLifecycle(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	before := h.creds()
	c := certtest.New(time.Now(), certtest.CommonName("api submit"))

	r, created, err := h.client.Submit(ctx, c.PEM(), "provider.cer")
	if err != nil || !created {
		t.Fatalf("Submit = created %v, err %v; want a new rotation", created, err)
	}
	if r.Source.Kind != "api" || r.Source.FileName != "provider.cer" {
		t.Errorf("source = %+v", r.Source)
	}
	applied := h.rotation(r.ID, "applied")
	if applied.KeyID == "" || applied.AlreadyPresent {
		t.Errorf("applied rotation = %+v", applied)
	}
	if n := countThumb(h.creds(), c.Cert.Subject.CommonName); n != 0 {
		t.Fatal("thumbprint matched a name: broken helper")
	}
	if n := countThumb(h.creds(), applied.Certificate.Thumbprint); n != 1 {
		t.Errorf("certificate on the app %d times, want 1", n)
	}
	if got := len(h.creds()); got != len(before)+1 {
		t.Errorf("app holds %d credentials, want %d", got, len(before)+1)
	}

	// The same certificate again, as DER: 200 with the same rotation, nothing uploaded.
	again, created, err := h.client.Submit(ctx, c.DER, "")
	if err != nil || created || again.ID != r.ID {
		t.Errorf("second Submit = %s created %v err %v; want %s, false", again.ID, created, err, r.ID)
	}

	// Garbage: 422 with the verdict code.
	_, _, err = h.client.Submit(ctx, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "bad.cer")
	if !client.IsCode(err, string(certs.NotACertificate)) {
		t.Errorf("garbage Submit err = %v, want %s", err, certs.NotACertificate)
	}

	// The certificates list marks what the agent added.
	list, err := h.client.Certificates(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, it := range list.Items {
		if it.AddedByAgent {
			mine++
			if it.RotationID != r.ID || it.Thumbprint != applied.Certificate.Thumbprint {
				t.Errorf("agent certificate = %+v", it)
			}
		}
	}
	if mine != 1 {
		t.Errorf("%d certificates marked addedByAgent, want 1", mine)
	}

	// Confirm: applied → confirmed; again → 409; reject a confirmed one → 409.
	s, _ := h.client.Status(ctx)
	if !hasProblem(s, apitype.ProblemAwaitingConfirmation) {
		t.Errorf("status problems = %+v, want awaiting_confirmation", s.Problems)
	}
	conf, err := h.client.Confirm(ctx, r.ID, "told AUCloud by email")
	if err != nil || conf.State != "confirmed" {
		t.Fatalf("Confirm = %s, %v", conf.State, err)
	}
	if last := conf.History[len(conf.History)-1]; last.Actor != "api:tester" || last.Note != "told AUCloud by email" {
		t.Errorf("history entry = %+v", last)
	}
	if _, err := h.client.Confirm(ctx, r.ID, ""); !client.IsCode(err, apitype.CodeInvalidState) {
		t.Errorf("second Confirm err = %v, want invalid_state", err)
	}
	if _, err := h.client.Reject(ctx, r.ID, ""); !client.IsCode(err, apitype.CodeInvalidState) {
		t.Errorf("Reject of confirmed err = %v, want invalid_state", err)
	}

	// The audit log tells the story.
	audit, err := h.client.Audit(ctx, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit.Items {
		if e.RotationID == r.ID {
			actions = append(actions, e.Action+":"+e.State)
		}
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"rotation.state:confirmed", "rotation.state:applied", "graph.write:applying", "rotation.duplicate:applied", "rotation.state:applying"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit for the rotation = %s; missing %s", got, want)
		}
	}
}

func TestManualApproval(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *config.Config) { c.Policy.Approval = config.ApprovalManual })
	ctx := context.Background()
	c := certtest.New(time.Now(), certtest.CommonName("needs approval"))
	if err := os.WriteFile(filepath.Join(h.env.Config.DropFolder, "new.cer"), c.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	var id string
	h.waitFor("pending rotation", func() bool {
		rs, _ := h.client.Rotations(ctx, "pending_approval")
		if len(rs) == 1 {
			id = rs[0].ID
		}
		return id != ""
	})
	if n := countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)); n != 0 {
		t.Fatalf("uploaded before approval")
	}
	s, _ := h.client.Status(ctx)
	if !hasProblem(s, apitype.ProblemAwaitingApproval) {
		t.Errorf("status problems = %+v, want awaiting_approval", s.Problems)
	}
	if _, err := h.client.Confirm(ctx, id, ""); !client.IsCode(err, apitype.CodeInvalidState) {
		t.Errorf("Confirm of pending err = %v, want invalid_state", err)
	}
	if _, err := h.client.Approve(ctx, id, "checked with AUCloud"); err != nil {
		t.Fatal(err)
	}
	h.rotation(id, "applied")
	if n := countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)); n != 1 {
		t.Errorf("after approval the certificate is on the app %d times, want 1", n)
	}

	// A second one is rejected by a person: nothing is uploaded, ever.
	d := certtest.New(time.Now(), certtest.CommonName("rejected by a person"))
	r, _, err := h.client.Submit(ctx, d.PEM(), "d.cer")
	if err != nil {
		t.Fatal(err)
	}
	rej, err := h.client.Reject(ctx, r.ID, "not from our provider")
	if err != nil || rej.State != "rejected" || rej.Reason == nil || rej.Reason.Code != certs.RejectedByPerson {
		t.Fatalf("Reject = %+v, %v", rej, err)
	}
	if _, err := h.client.Approve(ctx, r.ID, ""); !client.IsCode(err, apitype.CodeInvalidState) {
		t.Errorf("Approve of rejected err = %v, want invalid_state", err)
	}
	if n := countThumb(h.creds(), certs.ThumbprintSHA1(d.DER)); n != 0 {
		t.Errorf("a rejected certificate reached the app")
	}
}

// TestDeniedThenRetry: without ownership of the target app, Graph refuses the write (403);
// the rotation fails with Graph's reason and status says so; once an admin fixes the
// ownership, a person's retry applies it.
func TestDeniedThenRetry(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	emu := h.env.Emulator
	if err := emu.SetOwners(h.env.Info.TargetAppID); err != nil {
		t.Fatal(err)
	}
	c := certtest.New(time.Now(), certtest.CommonName("denied"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	failed := h.rotation(r.ID, "failed")
	if failed.Reason == nil || failed.Reason.Code != certs.GraphDenied || !strings.Contains(failed.Reason.Message, "Authorization_RequestDenied") {
		t.Errorf("failed reason = %+v, want graph_denied with Graph's code", failed.Reason)
	}
	s, _ := h.client.Status(ctx)
	if !hasProblem(s, apitype.ProblemRotationFailed) {
		t.Errorf("status problems = %+v, want rotation_failed", s.Problems)
	}
	if err := emu.SetOwners(h.env.Info.TargetAppID, h.env.Info.AgentAppID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Retry(ctx, r.ID, "made the agent an owner"); err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
	if n := countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)); n != 1 {
		t.Errorf("certificate on the app %d times, want 1", n)
	}
}

// TestTransientFailuresRetried: Graph answers 503 more often than the SDK retries; the
// engine's own backoff carries the rotation through.
func TestTransientFailuresRetried(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	if err := h.env.Emulator.AddFaults(emulator.Fault{Method: "PATCH", Path: "/v1.0/applications", Status: 503, RetryAfter: 0.05, Times: 5}); err != nil {
		t.Fatal(err)
	}
	c := certtest.New(time.Now(), certtest.CommonName("transient"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
	if n := countThumb(h.creds(), certs.ThumbprintSHA1(c.DER)); n != 1 {
		t.Errorf("certificate on the app %d times, want 1", n)
	}
}

// TestStaleReadAfterWrite: Graph serves a stale copy of the app right after the agent's
// first write; the second write must not be built on it, or it would drop the first
// certificate.
func TestStaleReadAfterWrite(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	first := certtest.New(time.Now(), certtest.CommonName("first"))
	r1, _, err := h.client.Submit(ctx, first.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r1.ID, "applied")
	if err := h.env.Emulator.AddFaults(emulator.Fault{Method: "GET", Path: "/v1.0/applications", Stale: true, Times: 2}); err != nil {
		t.Fatal(err)
	}
	second := certtest.New(time.Now(), certtest.CommonName("second"))
	r2, _, err := h.client.Submit(ctx, second.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r2.ID, "applied")
	creds := h.creds()
	for _, c := range []certtest.Cert{first, second} {
		if n := countThumb(creds, certs.ThumbprintSHA1(c.DER)); n != 1 {
			t.Errorf("%s on the app %d times, want 1", c.Cert.Subject.CommonName, n)
		}
	}
}

// TestCredentialRotate renews the agent's own sign-in credential through Graph's addKey and
// keeps working with the new one.
func TestCredentialRotate(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	before, err := h.client.Credential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.RotateCredential(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the renewal to finish", func() bool {
		l, err := h.client.Audit(ctx, 0, 50)
		if err != nil {
			return false
		}
		for _, e := range l.Items {
			if e.Action == "credential" && strings.Contains(e.Message, "now signs in with") {
				return true
			}
		}
		return false
	})
	after, err := h.client.Credential(ctx)
	if err != nil || after.Thumbprint == before.Thumbprint {
		t.Fatalf("credential after renewal = %s, %v; want a new one", after.Thumbprint, err)
	}
	app, err := h.env.Emulator.Application(h.env.Info.AgentAppID)
	if err != nil {
		t.Fatal(err)
	}
	// The previous certificate is removed from the agent's app once the new one is proven
	// ([I]: no stale credential of its own).
	h.waitFor("the previous certificate removed", func() bool {
		app, err := h.env.Emulator.Application(h.env.Info.AgentAppID)
		return err == nil && countThumb(app.KeyCredentials, before.Thumbprint) == 0
	})
	app, err = h.env.Emulator.Application(h.env.Info.AgentAppID)
	if err != nil {
		t.Fatal(err)
	}
	if countThumb(app.KeyCredentials, after.Thumbprint) != 1 {
		t.Errorf("agent app credentials = %+v; want the new one added once", app.KeyCredentials)
	}
	// The new credential is on disk, so a restart signs in with it.
	h.restart()
	again, err := h.client.Credential(ctx)
	if err != nil || again.Thumbprint != after.Thumbprint {
		t.Fatalf("after restart credential = %s, %v; want %s", again.Thumbprint, err, after.Thumbprint)
	}
	c := certtest.New(time.Now(), certtest.CommonName("after renewal"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
}

func TestStatusReportsExpiringCertificate(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	var s apitype.Status
	h.waitFor("first sync", func() bool {
		s, _ = h.client.Status(ctx)
		return s.LastSync.OK
	})
	// The demo app's only certificate expires in about 20 days (< monitor.expiry_warning).
	if !hasProblem(s, apitype.ProblemCertificateExpiring) {
		t.Fatalf("status problems = %+v, want certificate_expiring", s.Problems)
	}
	c := certtest.New(time.Now(), certtest.CommonName("the successor"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
	s, _ = h.client.Status(ctx)
	if hasProblem(s, apitype.ProblemCertificateExpiring) {
		t.Errorf("status still reports certificate_expiring once a successor is on the app: %+v", s.Problems)
	}
	if s.Certificates.Count != 2 {
		t.Errorf("certificates count = %d, want 2", s.Certificates.Count)
	}
}

// TestUnknownAgentKey: the agent's certificate is not registered on its app; the sync
// reports AADSTS700027 as a critical graph_unreachable problem.
func TestUnknownAgentKey(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	emu := h.env.Emulator
	app, err := emu.Application(h.env.Info.AgentAppID)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := h.client.Credential(ctx)
	for _, k := range app.KeyCredentials {
		if k.Thumbprint == cred.Thumbprint {
			if err := emu.RemoveKeyCredential(h.env.Info.AgentAppID, k.KeyID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Tokens already issued stay valid; a new agent must sign in afresh. It cannot: it is
	// live but never ready.
	h.restartWith(false)
	var p apitype.StatusProblem
	h.waitFor("graph_unreachable naming AADSTS700027", func() bool {
		s, _ := h.client.Status(ctx)
		for _, x := range s.Problems {
			if x.Code == apitype.ProblemGraphUnreachable && strings.Contains(x.Message, "700027") {
				p = x
				return true
			}
		}
		return false
	})
	if p.Severity != apitype.SeverityCritical {
		t.Errorf("problem = %+v; want critical", p)
	}
	// /readyz says so too, with the problem, so that a load balancer or a monitor sees it.
	if _, err := h.client.Ready(ctx); err == nil || !strings.Contains(err.Error(), "700027") {
		t.Errorf("readyz = %v; want not ready naming AADSTS700027", err)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// TestWebhookConfirms: with notify.webhook_url set, an applied rotation is posted to the
// provider's webhook (retried when it fails) and confirmed once it answers 2xx.
func TestWebhookConfirms(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var auth string
	calls := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
		auth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	agent.NotifyBackoffForTest(t)
	h := start(t, func(c *config.Config) {
		// Trust the test server beside the emulator.
		bundle := filepath.Join(t.TempDir(), "ca.pem")
		ca, _ := os.ReadFile(c.Cloud.CAFile)
		ca = append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
		os.WriteFile(bundle, ca, 0o644)
		c.Cloud.CAFile = bundle
		c.Notify.WebhookURL = srv.URL + "/hooks/certagent"
		c.Notify.Headers = map[string]string{"Authorization": "Bearer provider-secret"}
	})
	ctx := context.Background()
	c := certtest.New(time.Now(), certtest.CommonName("notified"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	conf := h.rotation(r.ID, "confirmed")
	if last := conf.History[len(conf.History)-1]; last.Actor != "notify" {
		t.Errorf("confirmed by %q, want notify", last.Actor)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(got) != 1 {
		t.Fatalf("webhook calls = %d, deliveries %d; want a failure then one delivery", calls, len(got))
	}
	if got[0]["event"] != "certificate.applied" || got[0]["rotationId"] != r.ID || auth != "Bearer provider-secret" {
		t.Errorf("delivery = %v, auth %q", got[0], auth)
	}
}

// TestRealisticRotation: with the emulator's replication lag on, a dropped certificate and an
// API submission are applied once each, read back through lagging replicas, and no
// credential is lost.
func TestRealisticRotation(t *testing.T) {
	t.Parallel()
	h := startRealistic(t, 11, nil)
	ctx := context.Background()
	before := h.creds()
	dropped := certtest.New(time.Now(), certtest.CommonName("realistic dropped"))
	if err := os.WriteFile(filepath.Join(h.env.Config.DropFolder, "next.cer"), dropped.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	posted := certtest.New(time.Now(), certtest.CommonName("realistic posted"))
	r, _, err := h.client.Submit(ctx, posted.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
	h.waitFor("the dropped certificate applied", func() bool {
		rs, err := h.client.Rotations(ctx, "applied")
		return err == nil && len(rs) == 2
	})
	creds := h.creds()
	for _, c := range before {
		if countThumb(creds, c.Thumbprint) != 1 {
			t.Errorf("credential %s (%s) lost or doubled: %d", c.KeyID, c.Thumbprint, countThumb(creds, c.Thumbprint))
		}
	}
	for _, c := range []certtest.Cert{dropped, posted} {
		if n := countThumb(creds, certs.ThumbprintSHA1(c.DER)); n != 1 {
			t.Errorf("%s on the app %d times, want 1", c.Cert.Subject.CommonName, n)
		}
	}
}

// TestRealisticRenewal: with sign-in propagation on, the agent's renewal adds its new key,
// says in status that it waits for the key to become usable, keeps working with the old key
// meanwhile, and then switches.
func TestRealisticRenewal(t *testing.T) {
	t.Parallel()
	h := startRealistic(t, 12, nil)
	ctx := context.Background()
	before, err := h.client.Credential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.RotateCredential(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitFor("status to say the renewal waits for the new key", func() bool {
		s, err := h.client.Status(ctx)
		return err == nil && hasProblem(s, "credential_renewal_waiting")
	})
	// Meanwhile the agent still works with its old key.
	c := certtest.New(time.Now(), certtest.CommonName("during renewal"))
	r, _, err := h.client.Submit(ctx, c.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r.ID, "applied")
	h.waitFor("the renewal to finish", func() bool {
		cur, err := h.client.Credential(ctx)
		return err == nil && cur.Thumbprint != before.Thumbprint
	})
	if s, _ := h.client.Status(ctx); hasProblem(s, "credential_renewal_waiting") {
		t.Errorf("status still says the renewal waits: %+v", s.Problems)
	}
	c2 := certtest.New(time.Now(), certtest.CommonName("after renewal"))
	r2, _, err := h.client.Submit(ctx, c2.PEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.rotation(r2.ID, "applied")
}

// TestTwoTargets: one agent keeps two backup apps current. A file in drop/<name>/ reaches
// only its target; a file at the top goes to the target whose policy names it; one both
// name is refused as ambiguous_target; status and the API show each target.
// TestOneCertificateTwoTargets: the same certificate is one rotation per app. Dropped into
// both targets' folders it reaches both apps; dropped at the top with intake.route_to_all it
// reaches every app whose policy names it; dropped again it is a duplicate on each.
func TestOneCertificateTwoTargets(t *testing.T) {
	t.Parallel()
	const appB = "b0000000-0000-4000-8000-0000000000ac"
	h := startPrepared(t, devenv.Options{}, nil, func(env *devenv.Env) {
		if _, err := env.Emulator.AddApplication(env.Info.TenantID, emulator.SeedApplication{
			DisplayName: "Veeam Teams backup", AppID: appB, Owners: []string{env.Info.AgentAppID},
		}); err != nil {
			t.Fatal(err)
		}
		cfg := env.Config
		cfg.Targets = []config.Target{
			{Name: "exchange", AppID: cfg.Target.AppID, Policy: config.TargetPolicy{AllowedSubjects: []string{"Both *"}}},
			{Name: "teams", AppID: appB, Policy: config.TargetPolicy{AllowedSubjects: []string{"Both *"}}},
		}
		cfg.Target = config.Target{}
		cfg.Intake.RouteToAll = true
	})
	ctx := context.Background()
	credsB := func() []emulator.KeyCredentialView { return h.appCreds(appB) }
	inFolders := certtest.New(time.Now(), certtest.CommonName("Both services, one file per folder"))
	h.dropIn("exchange", "same.cer", inFolders)
	h.dropIn("teams", "same.cer", inFolders)
	atTop := certtest.New(time.Now(), certtest.CommonName("Both services, at the top"))
	h.dropIn("", "top.cer", atTop)
	h.waitFor("four rotations applied", func() bool {
		rs, err := h.client.Rotations(ctx, "applied")
		return err == nil && len(rs) == 4
	})
	for _, c := range []certtest.Cert{inFolders, atTop} {
		thumb := certs.ThumbprintSHA1(c.DER)
		if countThumb(h.creds(), thumb) != 1 || countThumb(credsB(), thumb) != 1 {
			t.Errorf("%s: on exchange %d times, on teams %d times; want once on each", c.Cert.Subject, countThumb(h.creds(), thumb), countThumb(credsB(), thumb))
		}
	}
	for _, name := range []string{"exchange", "teams"} {
		rs, err := h.client.RotationsOf(ctx, name, "")
		if err != nil || len(rs) != 2 {
			t.Errorf("rotations of %s = %d, %v; want 2", name, len(rs), err)
		}
	}

	// Again, through the API to one target: that target's rotation, nothing new.
	r, created, err := h.client.SubmitTo(ctx, inFolders.PEM(), "", "teams")
	if err != nil || created || r.Target.AppID != appB {
		t.Errorf("submitting the certificate to teams again = %+v, created %v, %v; want teams' rotation", r.Target, created, err)
	}
	if rs, err := h.client.Rotations(ctx, ""); err != nil || len(rs) != 4 {
		t.Errorf("rotations after the duplicate = %d, %v; want 4", len(rs), err)
	}
	// The audit log says which app each step was on.
	page, err := h.client.Audit(ctx, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]bool{}
	for _, e := range page.Items {
		if e.Action == "graph.write" {
			apps[e.AppID] = true
		}
	}
	if !apps[h.env.Info.TargetAppID] || !apps[appB] || len(apps) != 2 {
		t.Errorf("graph.write entries name apps %v; want exactly exchange's and teams'", apps)
	}
}

func TestTwoTargets(t *testing.T) {
	t.Parallel()
	const appB = "b0000000-0000-4000-8000-0000000000ab"
	h := startPrepared(t, devenv.Options{}, nil, func(env *devenv.Env) {
		provider := certtest.New(time.Now(), certtest.CommonName("Teams provider 2026"))
		if _, err := env.Emulator.AddApplication(env.Info.TenantID, emulator.SeedApplication{
			DisplayName: "Veeam Teams backup", AppID: appB, Owners: []string{env.Info.AgentAppID},
			KeyCredentials: []emulator.SeedKeyCredential{{Certificate: provider.DER}},
		}); err != nil {
			t.Fatal(err)
		}
		cfg := env.Config
		cfg.Targets = []config.Target{
			{Name: "exchange", AppID: cfg.Target.AppID, Policy: config.TargetPolicy{AllowedSubjects: []string{"Exchange provider *", "Both *"}}},
			{Name: "teams", AppID: appB, Policy: config.TargetPolicy{AllowedSubjects: []string{"Teams provider *", "Both *"}}},
		}
		cfg.Target = config.Target{}
	})
	ctx := context.Background()
	credsB := func() []emulator.KeyCredentialView { return h.appCreds(appB) }
	// A file in drop/exchange/ reaches only the exchange app, even though both policies name
	// its subject: the folder decides.
	inA := certtest.New(time.Now(), certtest.CommonName("Both services, for exchange"))
	h.dropIn("exchange", "a.cer", inA)
	inB := certtest.New(time.Now(), certtest.CommonName("Teams provider 2027"))
	h.dropIn("teams", "b.cer", inB)
	routed := certtest.New(time.Now(), certtest.CommonName("Exchange provider 2027"))
	h.dropIn("", "top.cer", routed)
	both := certtest.New(time.Now(), certtest.CommonName("Both services 2027"))
	h.dropIn("", "both.cer", both)
	h.waitFor("three rotations applied", func() bool {
		rs, err := h.client.Rotations(ctx, "applied")
		return err == nil && len(rs) == 3
	})
	thumb := func(c certtest.Cert) string { return certs.ThumbprintSHA1(c.DER) }
	if countThumb(h.creds(), thumb(inA)) != 1 || countThumb(credsB(), thumb(inA)) != 0 {
		t.Error("drop/exchange/'s certificate reached the wrong app")
	}
	if countThumb(credsB(), thumb(inB)) != 1 || countThumb(h.creds(), thumb(inB)) != 0 {
		t.Error("drop/teams/'s certificate reached the wrong app")
	}
	if countThumb(h.creds(), thumb(routed)) != 1 || countThumb(credsB(), thumb(routed)) != 0 {
		t.Error("the top-level file was not routed to exchange alone")
	}
	h.waitFor("both.cer refused as ambiguous", func() bool {
		ns, _ := filepath.Glob(filepath.Join(h.env.Config.DropFolder, "rejected", "*both.cer.reason.txt"))
		if len(ns) != 1 {
			return false
		}
		b, _ := os.ReadFile(ns[0])
		return strings.Contains(string(b), "ambiguous_target")
	})

	// The API and status show each target.
	s, err := h.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Targets) != 2 || s.Targets[0].Name != "exchange" || s.Targets[1].Name != "teams" || s.Targets[1].Target.AppID != appB {
		t.Fatalf("status targets = %+v", s.Targets)
	}
	if s.Targets[1].Rotations["applied"] != 1 || s.Targets[0].Rotations["applied"] != 2 || s.Rotations["applied"] != 3 {
		t.Errorf("rotation counts: exchange %v, teams %v, all %v", s.Targets[0].Rotations, s.Targets[1].Rotations, s.Rotations)
	}
	rs, err := h.client.RotationsOf(ctx, "teams", "")
	if err != nil || len(rs) != 1 || rs[0].Target.Name != "teams" || rs[0].Target.AppID != appB {
		t.Errorf("rotations of teams = %+v, %v", rs, err)
	}
	list, err := h.client.CertificatesOf(ctx, "teams", false)
	if err != nil || len(list.Items) != 2 || list.Items[0].Target != "teams" {
		t.Errorf("certificates of teams = %+v, %v", list, err)
	}
	// An API submission names its target, or is routed like a top-level file.
	viaAPI := certtest.New(time.Now(), certtest.CommonName("Teams provider via the API"))
	r, _, err := h.client.SubmitTo(ctx, viaAPI.PEM(), "", "teams")
	if err != nil || r.Target.Name != "teams" {
		t.Fatalf("submit to teams = %+v, %v", r.Target, err)
	}
	if _, _, err := h.client.SubmitTo(ctx, viaAPI.PEM(), "", "nowhere"); !client.IsCode(err, apitype.CodeNotFound) {
		t.Errorf("submit to an unknown target: %v, want not_found", err)
	}
	if _, _, err := h.client.Submit(ctx, certtest.New(time.Now(), certtest.CommonName("nobody's")).PEM(), ""); !client.IsCode(err, string(certs.NoTarget)) {
		t.Errorf("submit named by no policy: %v, want no_target", err)
	}
}
