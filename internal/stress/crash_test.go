package stress

import (
	"context"
	"flag"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
)

var lagAll = flag.Bool("stress.lag", false, "give every agent's tenant Graph's replication lag (by default every fourth)")

// runsPerWorld is how many kill -9 runs share one tenant and one agent's state before a
// fresh one starts (the app grows by a credential or two per run).
const runsPerWorld = 50

// TestCrashCampaign kills the agent with SIGKILL at random instants during rotations,
// renewals of its own credential, retires and webhook deliveries, with emulator delays
// widening the windows, and restarts it. After each kill it runs `certagent store check`
// and `certagent audit verify` on the dead agent's state; after each restart it waits for the
// agent to settle and checks every invariant. It prints the runs, the instants hit per step
// and every violation.
func TestCrashCampaign(t *testing.T) {
	needStress(t)
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("crash campaign: %d runs, seed %d (-stress.seed=%d repeats the choices)", *runs, s, s)
	rng := mathrand.New(mathrand.NewPCG(s, 0x5eed))
	var steps, ops, outcomes Counts
	stepViolations := map[string]int{}
	invViolations := map[string]int{}
	var samples []string
	start := time.Now()
	done := 0
	worlds := 0
	for done < *runs {
		worlds++
		before := done
		ok := t.Run(fmt.Sprintf("world-%d", worlds), func(t *testing.T) {
			// Every fourth agent's tenant has Graph's replication lag (reads up to 2 s behind
			// the writes, from three replicas), as realistic mode has it.
			var opts []emulator.Option
			if worlds%4 == 0 || *lagAll {
				opts = append(opts, emulator.WithReplicationLag(2*time.Second, int64(s)+int64(worlds)))
			}
			w := newWorld(t, opts...)
			if why := w.waitSettled(60 * time.Second); why != "" {
				t.Fatalf("a fresh agent does not settle: %s", why)
			}
			for i := 0; i < runsPerWorld && done < *runs; i++ {
				done++
				retiredBefore, ownBefore := len(w.retired), w.ownThumb()
				op, step, v := w.run(rng, done)
				if len(w.retired) > retiredBefore {
					outcomes.Add("credentials retired")
				}
				if w.ownThumb() != ownBefore {
					outcomes.Add("renewals completed")
				}
				ops.Add(op)
				steps.Add(step)
				bad := false
				for inv, msgs := range v {
					if len(msgs) == 0 {
						continue
					}
					bad = true
					invViolations[inv]++
					for _, m := range msgs {
						if len(samples) < 40 {
							samples = append(samples, fmt.Sprintf("run %d (%s, killed during %s): %s: %s", done, op, step, inv, m))
						}
						t.Errorf("run %d (%s, killed during %s): %s: %s", done, op, step, inv, m)
					}
				}
				if bad {
					stepViolations[step]++
				}
			}
		})
		if !ok && done == before {
			break // a world that cannot even start: stop rather than start more
		}
	}
	total := 0
	for _, n := range stepViolations {
		total += n
	}
	table.Add(Row{Group: "crash", Name: fmt.Sprintf("kill -9 at a random instant, restart, check every invariant (%d agents' states, seed %d, %s)", worlds, s, time.Since(start).Round(time.Second)),
		Runs: done, Hit: ops.String() + "; " + outcomes.String(), Violations: total, Target: fmt.Sprintf(">= %d runs, 0 violations", *runs), Fail: done < *runs})
	for _, step := range steps.order {
		table.Add(Row{Group: "crash", Name: "  killed during " + step, Runs: steps.Get(step), Hit: "", Violations: stepViolations[step], Target: "0 violations"})
	}
	for _, inv := range invariants {
		table.Add(Row{Group: "invariant", Name: inv, Runs: done, Hit: "checked after every run", Violations: invViolations[inv], Target: "0 violations"})
	}
	for _, s := range samples {
		t.Log(s)
	}
}

// Operations the campaign interrupts.
const (
	opRotation = "rotation"
	opRenewal  = "renewal"
	opRetire   = "retire"
	opWebhook  = "webhook delivery"
)

// run does one operation, kills the agent at a random instant inside it, checks the dead
// agent's state, restarts it and checks every invariant once it has settled. It returns the
// operation, the step the kill landed in, and the violations by invariant.
func (w *world) run(rng *mathrand.Rand, n int) (op, step string, v map[string][]string) {
	emu := w.env.Emu()
	ctx := context.Background()
	w.retireAsked = map[string]bool{}

	// A credential added outside the agent now and then: what retire runs remove once the
	// agent has known it long enough.
	if len(w.retirees) < 2 {
		c := certtest.New(time.Now(), certtest.CommonName(fmt.Sprintf("stress retiree %d", n)))
		kc, err := emu.AddKeyCredential(w.targetApp, emulator.SeedKeyCredential{Certificate: c.DER, DisplayName: "added in the portal"})
		if err != nil {
			w.t.Fatal(err)
		}
		w.retirees[strings.ToLower(kc.KeyID)] = n
		w.known[strings.ToLower(kc.KeyID)] = kc.Thumbprint
		// A person's edit older than the replication lag: every replica has it. (One inside
		// the lag that every read misses is the residual risk the fault matrix reports.)
		emu.Settle()
	}
	var eligible []string
	for id, added := range w.retirees {
		if added <= n-2 { // a restart has seen it and a kill has aged the ledger since
			eligible = append(eligible, id)
		}
	}

	op = pick(rng, opRotation, opRotation, opWebhook, opWebhook, opRenewal, opRetire, opRetire)
	if op == opRetire && len(eligible) == 0 {
		op = opRotation
	}
	delay := time.Duration(100+rng.IntN(1100)) * time.Millisecond
	window := delay
	targetGet := "/v1.0/applications(appId='" + w.targetApp + "')"
	ownGet := "/v1.0/applications(appId='" + w.agentApp + "')"
	var faults []emulator.Fault
	begin := time.Now()
	switch op {
	case opRotation, opWebhook:
		switch rng.IntN(3) {
		case 0:
			faults = append(faults, emulator.Fault{Method: "PATCH", Path: "/v1.0/applications/" + w.targetObj, DelayMs: int(delay.Milliseconds())})
		case 1:
			faults = append(faults, emulator.Fault{Method: "GET", Path: targetGet, DelayMs: int(delay.Milliseconds()) / 3, Times: 4})
		}
		if op == opWebhook {
			w.hook.setDelay(delay)
			window += delay
		}
		emu.AddFaults(faults...)
		begin = time.Now()
		k := 1 + rng.IntN(2)
		for j := 0; j < k; j++ {
			c := certtest.New(time.Now(), certtest.CommonName(fmt.Sprintf("stress run %d cert %d", n, j)))
			w.drop(fmt.Sprintf("r%04d-%d.cer", n, j), c.PEM(), false)
		}
		if rng.IntN(4) == 0 {
			w.drop(fmt.Sprintf("r%04d-junk.cer", n), []byte("not a certificate\n"), true)
		}
		if rng.IntN(3) == 0 {
			c := certtest.New(time.Now(), certtest.CommonName(fmt.Sprintf("stress run %d api", n)))
			go w.a.Client.Submit(ctx, c.PEM(), fmt.Sprintf("api-%d.cer", n))
		}
		window += 200 * time.Millisecond
	case opRenewal:
		switch rng.IntN(4) {
		case 0:
			faults = append(faults, emulator.Fault{Method: "POST", Path: "/v1.0/applications/" + w.agentObj + "/addKey", DelayMs: int(delay.Milliseconds())})
		case 1:
			faults = append(faults, emulator.Fault{Method: "POST", Path: "/v1.0/applications/" + w.agentObj + "/removeKey", DelayMs: int(delay.Milliseconds())})
		case 2:
			faults = append(faults, emulator.Fault{Method: "GET", Path: ownGet, DelayMs: int(delay.Milliseconds()) / 3, Times: 3})
		}
		emu.AddFaults(faults...)
		begin = time.Now()
		if _, err := w.a.Client.RotateCredential(ctx); err != nil {
			w.t.Logf("run %d: rotate credential: %v", n, err)
		}
		window += 450 * time.Millisecond
	case opRetire:
		switch rng.IntN(3) {
		case 0:
			faults = append(faults, emulator.Fault{Method: "PATCH", Path: "/v1.0/applications/" + w.targetObj, DelayMs: int(delay.Milliseconds())})
		case 1:
			faults = append(faults, emulator.Fault{Method: "GET", Path: targetGet, DelayMs: int(delay.Milliseconds()) / 3, Times: 4})
		}
		emu.AddFaults(faults...)
		id := pick(rng, eligible...)
		w.retireAsked[id] = true
		begin = time.Now()
		go w.a.Client.Retire(ctx, "", id, "stress campaign")
		window += 120 * time.Millisecond
	}

	// Kill at a uniformly random instant of the operation's window.
	time.Sleep(time.Duration(rng.Int64N(int64(window))))
	flight := emu.InFlight()
	hooks := w.hook.busy()
	w.a.Kill()
	step = w.classify(op, flight, hooks, begin)
	emu.ClearFaults()
	w.hook.setDelay(0)

	// The dead agent's state, as a person would check it.
	offline := map[string][]string{}
	if code, out := w.tool("store", "check", "--json"); code != 0 {
		offline[invStore] = append(offline[invStore], fmt.Sprintf("store check exits %d:\n%s", code, out))
	}
	if code, out := w.tool("audit", "verify", "--json"); code != 0 {
		offline[invAudit] = append(offline[invAudit], fmt.Sprintf("audit verify exits %d:\n%s", code, out))
	}
	if err := w.ageLedger(); err != nil {
		w.t.Fatalf("ageing the ledger: %v", err)
	}

	w.a.Restart()
	if why := w.waitSettled(90 * time.Second); why != "" {
		offline[invSettled] = append(offline[invSettled], why)
	}
	return op, step, w.check(offline)
}

// classify names the step a kill landed in from what the emulator and the webhook were
// serving at that instant.
func (w *world) classify(op string, flight []emulator.InFlightRequest, hooks int, begin time.Time) string {
	if hooks > 0 {
		return "webhook delivery"
	}
	patched, called := false, false
	for _, r := range w.env.Emu().Requests() {
		if r.Time.After(begin) {
			called = true
			patched = patched || r.Method == "PATCH"
		}
	}
	prefix := "rotation"
	if op == opRetire {
		prefix = "retire"
	}
	best := ""
	rank := func(s string) int {
		for i, p := range []string{"write", "addKey", "removeKey", "read-back", "read", "own app", "sign-in"} {
			if strings.Contains(s, p) {
				return i
			}
		}
		return 99
	}
	for _, r := range flight {
		var s string
		switch {
		case strings.Contains(r.Path, "/oauth2/"):
			s = "sign-in (token request)"
		case strings.HasSuffix(r.Path, "/addKey"):
			s = "renewal: addKey"
		case strings.HasSuffix(r.Path, "/removeKey"):
			s = "renewal: removeKey"
		case r.Method == "GET" && strings.Contains(r.Path, w.agentApp):
			s = "renewal: read of its own app"
		case r.Method == "PATCH":
			s = prefix + ": write (PATCH)"
		case r.Method == "GET" && patched:
			s = prefix + ": read-back"
		case r.Method == "GET":
			s = prefix + ": read before the write"
		default:
			s = r.Method + " " + r.Path
		}
		if best == "" || rank(s) < rank(best) {
			best = s
		}
	}
	switch {
	case best == "" && !called:
		best = op + ": local work before its first Graph call (intake, policy, store, key generation)"
	case best == "":
		best = op + ": local work between or after Graph calls (store commits, file moves)"
	}
	return best
}
