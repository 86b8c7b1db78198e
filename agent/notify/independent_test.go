//go:build !windows

// The tests here check deliveries with tools outside Go: the openssl command line, and the
// README's verifier script (sh, openssl, base64, od). They run where CI runs them, on Linux;
// Windows builds of this package (under Wine) verify with the Standard Webhooks project's Go
// library instead (sign_test.go, notify_test.go). A missing tool fails the test: nothing is
// skipped.

package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/rotation"
)

// requireTool fails the test when name is not on PATH.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is needed by this test and is not on PATH (%v); install it (Debian: apt-get install %s; .ci/run does)", name, err, name)
	}
}

// opensslSign computes the Standard Webhooks signature of id.timestamp.body with the openssl
// command line, from the key as hex.
func opensslSign(t *testing.T, key []byte, id string, ts int64, body []byte) string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(key), "-binary")
	cmd.Stdin = bytes.NewReader([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + string(body)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return "v1," + base64.StdEncoding.EncodeToString(out)
}

// TestSignOpenSSL: Sign agrees with openssl for a whsec_ secret and a raw one, on bodies
// with every byte value; a tampered body does not.
func TestSignOpenSSL(t *testing.T) {
	requireTool(t, "openssl")
	raw := "a raw secret of at least 24 bytes, with spaces & symbols: %$!"
	body := make([]byte, 512)
	for i := range body {
		body[i] = byte(i)
	}
	for _, tc := range []struct {
		name, secret string
		key          []byte
	}{
		{"whsec", testSecret, testKey},
		{"raw", raw, []byte(raw)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSecrets([]byte(tc.secret))
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Now().Unix()
			got := s.Sign("msg_abc", ts, body)
			if want := opensslSign(t, tc.key, "msg_abc", ts, body); got != want {
				t.Errorf("Sign = %s, openssl %s", got, want)
			}
			tampered := bytes.Clone(body)
			tampered[100] ^= 1
			if opensslSign(t, tc.key, "msg_abc", ts, tampered) == got {
				t.Error("a tampered body has the same signature")
			}
		})
	}
}

// verifyScript runs scripts/verify-webhook.sh and returns its exit code and output.
func verifyScript(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join("..", "..", "scripts", "verify-webhook.sh")}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("running verify-webhook.sh: %v", err)
	}
	return 0, string(out)
}

// TestVerifyScript: the README's verifier accepts real deliveries (whsec_ and raw secrets)
// exactly as the webhook received them, and refuses a tampered body, a wrong secret, a
// changed id and a stale timestamp.
func TestVerifyScript(t *testing.T) {
	for _, tool := range []string{"sh", "openssl", "base64", "od"} {
		requireTool(t, tool)
	}
	for _, secret := range []string{testSecret, "a raw secret of at least 24 bytes"} {
		wh := &webhook{}
		srv := httptest.NewServer(wh)
		st := openStore(t, filepath.Join(t.TempDir(), "certagent.db"))
		r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
		secretFile := writeSecret(t, secret)
		stop := start(t, newNotifier(t, st, &fakeRotations{st: st}, srv.URL, nil, func(c *Config) { c.SecretFile = secretFile }))
		waitFor(t, "the rotation confirmed", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
		stop()
		st.Close()
		srv.Close()

		d := wh.deliveries()[0]
		dir := t.TempDir()
		bodyFile := filepath.Join(dir, "body.json")
		os.WriteFile(bodyFile, d.body, 0o600)
		id, ts, sig := d.header.Get(HeaderID), d.header.Get(HeaderTimestamp), d.header.Get(HeaderSignature)
		if code, out := verifyScript(t, nil, secretFile, bodyFile, id, ts, sig); code != 0 || !strings.Contains(out, "authentic") {
			t.Errorf("secret %.8s...: verify-webhook.sh on a real delivery = exit %d: %s", secret, code, out)
		}

		tampered := filepath.Join(dir, "tampered.json")
		os.WriteFile(tampered, bytes.Replace(d.body, []byte(r.ID), []byte(rotation.NewGUID()), -1), 0o600)
		wrong := writeSecret(t, SecretPrefix+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
		s, _ := ParseSecrets([]byte(secret))
		old := time.Now().Add(-time.Hour).Unix()
		for name, args := range map[string][]string{
			"tampered body": {secretFile, tampered, id, ts, sig},
			"wrong secret":  {wrong, bodyFile, id, ts, sig},
			"changed id":    {secretFile, bodyFile, id + "x", ts, sig},
			"stale":         {secretFile, bodyFile, id, strconv.FormatInt(old, 10), s.Sign(id, old, d.body)},
		} {
			if code, out := verifyScript(t, nil, args...); code != 1 {
				t.Errorf("secret %.8s..., %s: verify-webhook.sh = exit %d (%s), want 1", secret, name, code, out)
			}
		}
	}
}

// The helper process of TestOutboxSurvivesKill: a notifier on the store and URL the parent
// names, run until the parent kills it. Without the variables it does nothing.
func TestHelperNotifierProcess(t *testing.T) {
	path, url := os.Getenv("CERTAGENT_NOTIFY_HELPER_STORE"), os.Getenv("CERTAGENT_NOTIFY_HELPER_URL")
	if path == "" {
		return
	}
	st := openStore(t, path)
	n := newNotifier(t, st, &fakeRotations{st: st}, url, nil, func(c *Config) { c.SecretFile = os.Getenv("CERTAGENT_NOTIFY_HELPER_SECRET") })
	n.Run(context.Background()) // until killed
}

// TestOutboxSurvivesKill: the agent is killed (SIGKILL) while the webhook holds its first
// delivery; the event was recorded before it was posted, so the next run delivers it with
// the same webhook-id and body, and confirms the rotation.
func TestOutboxSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certagent.db")
	st := openStore(t, path)
	r := putRotation(t, st, rotation.StateApplied, time.Now(), nil)
	st.Close()
	secretFile := writeSecret(t, testSecret)

	release := make(chan struct{})
	held := &webhook{arrived: make(chan int, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		held.ServeHTTP(httptest.NewRecorder(), req)
		<-release // never answers while the child lives
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNotifierProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "CERTAGENT_NOTIFY_HELPER_STORE="+path, "CERTAGENT_NOTIFY_HELPER_URL="+srv.URL, "CERTAGENT_NOTIFY_HELPER_SECRET="+secretFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.arrived:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the helper never posted; its output:\n%s", out.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no flush
		t.Fatal(err)
	}
	cmd.Wait()

	st = openStore(t, path)
	defer st.Close()
	kv, err := st.ListMeta(context.Background(), outboxPrefix)
	if err != nil || len(kv) != 1 || bytes.Contains(kv[0].Value, []byte(`"delivered"`)) {
		t.Fatalf("outbox after the kill = %d entries (%v); want the one undelivered event", len(kv), err)
	}
	if stateOf(t, st, r.ID) != rotation.StateApplied {
		t.Fatal("the rotation changed state before the webhook answered")
	}
	wh := &webhook{}
	srv2 := httptest.NewServer(wh)
	defer srv2.Close()
	start(t, newNotifier(t, st, &fakeRotations{st: st}, srv2.URL, nil, func(c *Config) { c.SecretFile = secretFile }))
	waitFor(t, "the rotation confirmed after the restart", func() bool { return stateOf(t, st, r.ID) == rotation.StateConfirmed })
	first, again := held.deliveries()[0], wh.deliveries()
	if len(again) != 1 || again[0].id() != first.id() || !bytes.Equal(again[0].body, first.body) {
		t.Fatalf("redelivery = %d requests (id %v); want one with the killed attempt's id %s and body", len(again), again, first.id())
	}
	s, _ := ParseSecrets([]byte(testSecret))
	ts, _ := strconv.ParseInt(again[0].header.Get(HeaderTimestamp), 10, 64)
	if !s.Verify(again[0].id(), ts, again[0].body, again[0].header.Get(HeaderSignature)) {
		t.Error("the redelivery's signature does not verify")
	}
}
