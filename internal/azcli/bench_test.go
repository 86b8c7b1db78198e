package azcli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/e2e"
)

// minRounds is the fewest interleaved az/certagent pairs BenchmarkAzVersusAgent times;
// -benchtime=Nx with N larger times N.
const minRounds = 10

// BenchmarkAzVersusAgent adds certificates of the same kind to the same emulated app
// registration, alternately with azure-cli (`az ad app credential reset --append`, wall time
// of the process) and with a running certagent (POST /api/v1/rotations, then polling the
// rotation until it is applied: the client's wall time, and the time between the first and
// the applied entry of the rotation's history). It reports the medians and their ratio.
//
// az's time is mostly Python start-up (docs/graph.md, "azure-cli against the emulator"); that is what a person or a script using
// az pays for each certificate, and what the agent does not.
func BenchmarkAzVersusAgent(b *testing.B) {
	e2e.BuildInBackground() // overlaps az's set-up; startAgent waits for it
	ctx := b.Context()
	env := newEnv(b)
	emu, info := env.Emulator, env.Info
	az := newCLI(b, emu, false)
	if _, _, err := az.Login(ctx, info.AgentAppID, info.AgentCredentialFile, info.TenantID); err != nil {
		b.Fatal(err)
	}
	agent := startAgent(env, az.Sentinel().URL())
	work := b.TempDir()

	rounds := max(b.N, minRounds)
	now := time.Now()
	mint := func(who string, i int) certtest.Cert {
		return certtest.New(now, certtest.CommonName(fmt.Sprintf("bench %s %d", who, i)), certtest.ValidFor(365*24*time.Hour))
	}
	// Round 0 warms both up (az's token cache and first-command checks, the agent's token
	// and connections) and is not counted.
	azCerts := make([]certtest.Cert, rounds+1)
	azFiles := make([]string, rounds+1)
	agentCerts := make([]certtest.Cert, rounds+1)
	for i := range rounds + 1 {
		azCerts[i] = mint("az", i)
		azFiles[i] = writeTemp(b, work, fmt.Sprintf("az-%d.pem", i), azCerts[i].PEM())
		agentCerts[i] = mint("agent", i)
	}
	before := application(b, emu, info.TargetAppID).KeyCredentials

	type row struct{ az, agentWall, agentHistory time.Duration }
	var rows []row
	b.ResetTimer()
	for i := range rounds + 1 {
		res, err := az.AppendCertificate(ctx, info.TargetAppID, azFiles[i])
		if err != nil {
			b.Fatal(err)
		}
		wall, hist := timeAgent(ctx, b, agent, agentCerts[i], i)
		if i > 0 {
			rows = append(rows, row{res.Duration, wall, hist})
		}
	}
	b.StopTimer()

	// Every certificate is on the app once, and nothing that was there is lost.
	after := application(b, emu, info.TargetAppID).KeyCredentials
	if got, want := len(after), len(before)+2*(rounds+1); got != want {
		b.Errorf("the app holds %d credentials, want %d", got, want)
	}
	for i := range rounds + 1 {
		der := azCerts[i].DER
		if count(after, der) != 1 || count(after, agentCerts[i].DER) != 1 {
			b.Errorf("round %d: az's certificate is on the app %d times, the agent's %d; want 1 each", i, count(after, der), count(after, agentCerts[i].DER))
		}
	}
	for _, k := range before {
		if _, ok := byKeyID(after)[k.KeyID]; !ok {
			b.Errorf("credential %s (%s) that was there before is gone", k.KeyID, k.Thumbprint)
		}
	}
	if s := az.StrayCalls(); len(s) > 0 {
		b.Errorf("requests tried to leave loopback through the proxy: %q", s)
	}

	// The table has one column a round: go test prints at most 10 lines of a benchmark's log.
	var azs, walls, hists []time.Duration
	for _, r := range rows {
		azs, walls, hists = append(azs, r.az), append(walls, r.agentWall), append(hists, r.agentHistory)
	}
	azMed, wallMed, histMed := median(azs), median(walls), median(hists)
	ratio := float64(azMed) / float64(wallMed)
	var t strings.Builder
	line := func(name string, ds []time.Duration, med time.Duration) {
		fmt.Fprintf(&t, "%-22s median %7.1f |", name, ms(med))
		for _, d := range ds {
			fmt.Fprintf(&t, " %.1f", ms(d))
		}
		t.WriteByte('\n')
	}
	line("az (ms)", azs, azMed)
	line("agent wall (ms)", walls, wallMed)
	line("agent history (ms)", hists, histMed)
	fmt.Fprintf(&t, "az / agent: %.1fx by the client's wall time, %.1fx by the rotation's history (target: at least 20x)",
		ratio, float64(azMed)/float64(histMed))
	b.Logf("az ad app credential reset --append versus certagent POST /api/v1/rotations until applied, %d interleaved rounds:\n%s", len(rows), t.String())

	b.ReportMetric(0, "ns/op") // one op is a whole interleaved series: the medians say more
	b.ReportMetric(ms(azMed), "az_median_ms")
	b.ReportMetric(ms(wallMed), "agent_median_ms")
	b.ReportMetric(ms(histMed), "agent_history_median_ms")
	b.ReportMetric(ratio, "ratio")
}

// timeAgent submits c to the agent and polls the rotation until it is settled. It returns
// the client's wall time and the time from the rotation's first history entry to its
// applied entry.
func timeAgent(ctx context.Context, b *testing.B, agent *e2e.Agent, c certtest.Cert, i int) (wall, history time.Duration) {
	b.Helper()
	start := time.Now()
	r, created, err := agent.Client.Submit(ctx, c.PEM(), fmt.Sprintf("bench-%d.cer", i))
	if err != nil {
		b.Fatal(err)
	}
	if !created {
		b.Fatalf("round %d: the agent already had a rotation for a new certificate", i)
	}
	for !settled(r.State) {
		if agent.Exited() {
			b.Fatalf("the agent exited; its log:\n%s", agent.Log())
		}
		time.Sleep(time.Millisecond)
		if r, err = agent.Client.Rotation(ctx, r.ID); err != nil {
			b.Fatal(err)
		}
	}
	wall = time.Since(start)
	if r.State != "applied" && r.State != "confirmed" {
		b.Fatalf("round %d: rotation %s ended %s (%+v); agent log:\n%s", i, r.ID, r.State, r.Reason, agent.Log())
	}
	return wall, appliedAfter(b, r)
}

// appliedAfter returns the time from r's first history entry to its applied entry.
func appliedAfter(b *testing.B, r apitype.Rotation) time.Duration {
	b.Helper()
	i := slices.IndexFunc(r.History, func(e apitype.Event) bool { return e.State == "applied" })
	if len(r.History) == 0 || i < 0 {
		b.Fatalf("rotation %s has no applied entry in its history: %+v", r.ID, r.History)
	}
	return r.History[i].At.Sub(r.History[0].At)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
