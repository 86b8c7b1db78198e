package emulator

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/certtest"
)

// keyIDsRead reads the target's keyIds through Graph (a single-object read) and reports
// whether the request log marks the read stale.
func (env *testEnv) keyIDsRead(tok string) ([]string, bool) {
	env.t.Helper()
	resp, m := env.call(http.MethodGet, "/v1.0/applications/"+env.apps["target"].ObjectID+"?$select=id,keyCredentials", tok, nil)
	if resp.StatusCode != http.StatusOK {
		env.t.Fatalf("GET = %d %v", resp.StatusCode, m)
	}
	var ids []string
	for _, k := range keyCredentialsOf(env.t.(*testing.T), m) {
		ids = append(ids, k["keyId"].(string))
	}
	recs := env.e.Requests()
	return ids, strings.Contains(recs[len(recs)-1].Fault, "stale")
}

// addTargetKey PATCHes a new certificate onto the target, keeping the keyIds given, and
// returns the new keyId.
func (env *testEnv) addTargetKey(tok string, keep []string) string {
	env.t.Helper()
	list := []any{}
	for _, id := range keep {
		list = append(list, map[string]any{"keyId": id})
	}
	c := certtest.New(env.clk.Now(), certtest.CommonName("replicated"))
	keyID := newGUID()
	list = append(list, map[string]any{"keyId": keyID, "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(c.DER)})
	if resp, m := env.patch(tok, env.apps["target"].ObjectID, map[string]any{"keyCredentials": list}); resp.StatusCode != http.StatusNoContent {
		env.t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
	}
	return keyID
}

// readPattern writes a key to the target, then reads it 8 times every 100 ms of the fake
// clock for 2.5 s, and returns for each read whether it saw the write ('N') or not ('o').
func readPattern(t *testing.T, seed int64) string {
	env := newEnv(t, WithReplicationLag(2*time.Second, seed))
	tok := env.token("agent")
	keyID := env.addTargetKey(tok, []string{env.apps["target"].KeyCredentials[0].KeyID})
	var b strings.Builder
	for step := 0; step <= 25; step++ {
		for i := 0; i < 8; i++ {
			ids, stale := env.keyIDsRead(tok)
			seen := containsExact(ids, keyID)
			if seen == stale {
				t.Fatalf("read saw the write %v but the log says stale %v", seen, stale)
			}
			if seen {
				b.WriteByte('N')
			} else {
				b.WriteByte('o')
			}
		}
		b.WriteByte(' ')
		env.clk.Advance(100 * time.Millisecond)
	}
	return b.String()
}

// TestReplicationLag: after a write, reads come from replicas that each catch up after their
// own random lag: the first reads miss the write, then reads go new, old, new as they hit
// different replicas, more than once, and once the longest lag has passed every read sees it.
// The pattern is a function of the seed.
func TestReplicationLag(t *testing.T) {
	p := readPattern(t, 1)
	t.Logf("reads every 100 ms (N saw the write, o did not): %s", p)
	reads := strings.ReplaceAll(p, " ", "")
	switch {
	case reads[0] != 'o':
		t.Errorf("the first read after the write saw it; want the lag to hide it")
	case !strings.Contains(reads, "No"):
		t.Errorf("no read went back from new to old: %s", p)
	case strings.Count(reads, "o") < 2:
		t.Errorf("fewer than two stale reads: %s", p)
	case !strings.HasSuffix(strings.TrimSpace(p), "NNNNNNNN"):
		t.Errorf("reads still stale after the longest lag: %s", p)
	}
	if again := readPattern(t, 1); again != p {
		t.Errorf("seed 1 gave %s, then %s; want the same reads", p, again)
	}
	if other := readPattern(t, 2); other == p {
		t.Errorf("seeds 1 and 2 gave the same reads %s", p)
	}
}

// TestReplicationLagLosesCredential: a read-modify-write built on a stale read really loses
// a credential, as on Graph: the PATCH replaces the primary's collection with one built from
// an old version. The control state shows the primary, which has the write at once.
func TestReplicationLagLosesCredential(t *testing.T) {
	env := newEnv(t, WithReplicationLag(2*time.Second, 1))
	tok := env.token("admin")
	first := env.apps["target"].KeyCredentials[0].KeyID
	second := env.addTargetKey(tok, []string{first})

	status, m := env.control(http.MethodGet, "/_emulator/state", "")
	if status != http.StatusOK {
		t.Fatalf("GET state = %d", status)
	}
	var primary []string
	for _, a := range m["tenants"].([]any)[0].(map[string]any)["applications"].([]any) {
		if a := a.(map[string]any); a["appId"] == env.apps["target"].AppID {
			for _, k := range a["keyCredentials"].([]any) {
				primary = append(primary, k.(map[string]any)["keyId"].(string))
			}
		}
	}
	if !containsExact(primary, second) {
		t.Fatalf("state = %v, want the primary with the write", primary)
	}

	ids, stale := env.keyIDsRead(tok)
	if !stale || containsExact(ids, second) {
		t.Fatalf("read right after the write = %v (stale %v), want the old version", ids, stale)
	}
	third := env.addTargetKey(tok, ids) // built on the stale read
	var final []string
	for _, k := range env.view("target").KeyCredentials {
		final = append(final, k.KeyID)
	}
	if len(final) != 2 || !containsExact(final, first) || !containsExact(final, third) || containsExact(final, second) {
		t.Errorf("after a read-modify-write on a stale read: %v, want %s and %s, %s lost", final, first, third, second)
	}
}

// TestReplicationLagLists: lists are served by replicas too.
func TestReplicationLagLists(t *testing.T) {
	env := newEnv(t, WithReplicationLag(time.Second, 1))
	tok := env.token("admin")
	target := env.apps["target"]
	if resp, m := env.patch(tok, target.ObjectID, map[string]any{"displayName": "target renamed"}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, m)
	}
	_, m := env.call(http.MethodGet, "/v1.0/applications?$filter=appId eq '"+target.AppID+"'", tok, nil)
	list, _ := m["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["displayName"] != "target" {
		t.Errorf("list right after the write = %v, want the old name", list)
	}
	env.clk.Advance(time.Second)
	_, m = env.call(http.MethodGet, "/v1.0/applications?$filter=appId eq '"+target.AppID+"'", tok, nil)
	list, _ = m["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["displayName"] != "target renamed" {
		t.Errorf("list after the lag = %v, want the new name", list)
	}
}

// TestReplicationLagOff: turning the lag off at run time makes every read current at once.
func TestReplicationLagOff(t *testing.T) {
	env := newEnv(t, WithReplicationLag(time.Hour, 1))
	tok := env.token("admin")
	second := env.addTargetKey(tok, []string{env.apps["target"].KeyCredentials[0].KeyID})
	if ids, _ := env.keyIDsRead(tok); containsExact(ids, second) {
		t.Fatalf("read = %v, want the lag to hide %s", ids, second)
	}
	env.setSettings(func(s *Settings) { s.MaxReplicationLag = 0 })
	if ids, stale := env.keyIDsRead(tok); stale || !containsExact(ids, second) {
		t.Errorf("read with the lag off = %v (stale %v), want %s", ids, stale, second)
	}
}
