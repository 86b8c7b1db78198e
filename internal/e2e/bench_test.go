package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/loadgen"
)

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkDropToApplied measures, on a real agent process against the emulated tenant, the
// time from the writer closing a certificate file in the drop folder to its rotation being
// applied (written and read back), the settle rule included: on Linux the kernel says when
// the file is complete, so it waits only completeQuiet, not the settle window. Run it with a
// bounded count, e.g. -benchtime=60x: each iteration adds a credential to the emulated app.
func BenchmarkDropToApplied(b *testing.B) {
	e := NewEnv(b, nil) // the shipped defaults, settle window included
	a := e.StartAgent()
	drop := e.Config.DropFolder
	now := time.Now()
	var lat, intakeLat, engineLat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := certtest.New(now, certtest.CommonName(fmt.Sprintf("latency %d", i)))
		path := filepath.Join(drop, fmt.Sprintf("lat-%d.cer", i))
		if err := os.WriteFile(path, c.PEM(), 0o644); err != nil {
			b.Fatal(err)
		}
		closed := time.Now() // os.WriteFile has closed the file
		r := a.WaitRotation(certs.ThumbprintSHA1(c.DER), "applied", 30*time.Second)
		var applied time.Time
		for _, h := range r.History {
			if h.State == "applied" {
				applied = h.At
			}
		}
		// From the writer's close to applied; split into the intake's part (to the
		// rotation's creation) and the engine's.
		lat = append(lat, applied.Sub(closed))
		intakeLat = append(intakeLat, r.CreatedAt.Sub(closed))
		engineLat = append(engineLat, applied.Sub(r.CreatedAt))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(percentile(lat, 50)), "p50_ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
	slices.Sort(intakeLat)
	slices.Sort(engineLat)
	b.ReportMetric(ms(percentile(engineLat, 50)), "engine_p50_ms")
	benchRow(b, "drop-to-applied from the writer's close (local folder)", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms over %d files", ms(percentile(lat, 50)), ms(percentile(lat, 99)), len(lat)), "p50 <= 150 ms", percentile(lat, 50) <= 150*time.Millisecond)
	b.Logf("drop-to-applied from the writer's close over %d files: p50 %.1f ms, p99 %.1f ms, max %.1f ms; "+
		"of which intake (closed to recorded) p50 %.1f ms p99 %.1f ms, engine (recorded to applied: reads, write, read back) p50 %.1f ms p99 %.1f ms",
		len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]),
		ms(percentile(intakeLat, 50)), ms(percentile(intakeLat, 99)), ms(percentile(engineLat, 50)), ms(percentile(engineLat, 99)))
}

// BenchmarkFlood drops 20,000 files of mixed garbage on a real agent process at once and
// reports how fast they are filed, the process's peak memory, and its idle memory before the
// flood. Every file must end in processed/ or rejected/.
func BenchmarkFlood(b *testing.B) {
	const n = 20000
	for i := 0; i < b.N; i++ {
		e := NewEnv(b, func(c *config.Config) { c.Intake.Settle = config.Duration(2 * time.Second) })
		a := e.StartAgent()
		time.Sleep(5 * time.Second) // settle into idle: first sync done, nothing to do
		idle, _, err := RSS(a.PID())
		if err != nil {
			b.Skipf("reading process memory needs /proc: %v", err)
		}
		drop := e.Config.DropFolder
		valid := certtest.New(time.Now(), certtest.CommonName("flood valid"))
		garbage := make([]byte, 4096)
		start := time.Now()
		for j := 0; j < n; j++ {
			name := fmt.Sprintf("g%05d", j)
			var data []byte
			switch j % 10 {
			case 0:
				name += ".txt"
				data = []byte("readme")
			case 1:
				name += ".pfx"
				data = garbage[:100]
			case 2:
				name += ".cer"
				data = valid.PEM() // the same valid certificate, again and again
			case 3:
				name += ".pem"
				data = []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
			default:
				name += ".cer"
				rand.Read(garbage)
				data = garbage[:256+j%3000]
			}
			if err := os.WriteFile(filepath.Join(drop, name), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		written := time.Since(start)
		var peak int64
		a.WaitFor("20,000 files filed", 15*time.Minute, func() bool {
			if _, p, err := RSS(a.PID()); err == nil && p > peak {
				peak = p
			}
			return CountFiles(filepath.Join(drop, "processed"))+CountFiles(filepath.Join(drop, "rejected")) == n
		})
		elapsed := time.Since(start)
		if left := CountFiles(drop); left != 0 {
			b.Errorf("%d files left in the drop folder", left)
		}
		if got := CountFiles(filepath.Join(drop, "processed")); got != n/10 {
			b.Errorf("processed/ holds %d files, want %d", got, n/10)
		}
		_, peak, _ = RSS(a.PID())
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "files/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MB")
		b.ReportMetric(float64(idle)/(1<<20), "idle_rss_MB")
		benchRow(b, "20,000-file flood: peak RSS, nothing lost", fmt.Sprintf("%.1f MB peak, %d filed, %.0f files/s", float64(peak)/(1<<20), n, rate), "<= 64 MB", peak <= 64<<20)
		b.Logf("flood of %d files (written in %s): all filed in %s = %.0f files/s (including the %s settle window); peak RSS %.1f MB; idle RSS before it %.1f MB",
			n, written.Round(time.Millisecond), elapsed.Round(time.Millisecond), rate, e.Config.Intake.Settle.Duration(), float64(peak)/(1<<20), float64(idle)/(1<<20))
		a.Kill()
	}
}

// BenchmarkStatusLoad is an open-loop load run of GET /api/v1/status at 2,000 requests per
// second against a real agent process (its store, its snapshot, its rotations), from
// another process on loopback, in windows of one second (2,000 requests). Each agent window
// is paired with one of a control server (controlServerEnv: net/http answering the same
// number of bytes, nothing else) under the same load generator, so the table shows what the
// machine and the generator cost by themselves: on a small VM whose vCPUs stall for
// milliseconds at a time, a whole-run p99 is often the VM's, not the agent's. The row's
// verdict is the agent's whole-run p99 against the target; see below for when there is none.
// ns/op is the pacing of agent and control windows together.
//
//	go test -run '^$' -bench StatusLoad -benchtime 20000x ./internal/e2e
func BenchmarkStatusLoad(b *testing.B) {
	const rate, window = 2000, 2000
	e := NewEnv(b, nil)
	a := e.StartAgent()
	// Some history to serve: a few applied rotations.
	for i := 0; i < 5; i++ {
		c := certtest.New(time.Now(), certtest.CommonName(fmt.Sprintf("load %d", i)))
		if _, _, err := a.Client.Submit(context.Background(), c.PEM(), ""); err != nil {
			b.Fatal(err)
		}
		a.WaitRotation(certs.ThumbprintSHA1(c.DER), "applied", 30*time.Second)
	}
	tok, err := os.ReadFile(e.Config.API.TokenFile)
	if err != nil {
		b.Fatal(err)
	}
	agent := loadgen.NewConn(e.Config.API.Listen, "/api/v1/status", "Authorization: Bearer "+strings.TrimSpace(string(tok)))
	defer agent.Close()
	_, size, err := agent.Do()
	if err != nil {
		b.Fatal(err)
	}
	controlAddr, controlPID := startControlServer(b, size)
	control := loadgen.NewConn(controlAddr, "/api/v1/status")
	defer control.Close()
	fire := func(c *loadgen.Conn) func() error {
		return func() error {
			status, _, err := c.Do()
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			return err
		}
	}
	fireAgent, fireControl := fire(agent), fire(control)
	for range 64 {
		if err := errors.Join(fireAgent(), fireControl()); err != nil {
			b.Fatal(err)
		}
	}

	windows := max(1, b.N/window)
	var agentAll, controlAll, agentLag []time.Duration
	var agentP99, controlP99 []float64 // per window
	errs := 0
	cpu0, controlCPU0 := procCPU(a.PID()), procCPU(controlPID)
	b.ResetTimer()
	for w := range windows {
		var ra, rc loadgen.Result
		if w%2 == 0 { // alternate the order, so that neither always follows the other
			ra, rc = loadgen.Run(rate, window, fireAgent), loadgen.Run(rate, window, fireControl)
		} else {
			rc, ra = loadgen.Run(rate, window, fireControl), loadgen.Run(rate, window, fireAgent)
		}
		for _, r := range []loadgen.Result{ra, rc} {
			if r.Errors > 0 {
				errs += r.Errors
				b.Errorf("%d of %d requests failed, the first: %v", r.Errors, window, r.FirstErr)
			}
		}
		agentAll, controlAll, agentLag = append(agentAll, ra.Latency...), append(controlAll, rc.Latency...), append(agentLag, ra.Lag...)
		agentP99, controlP99 = append(agentP99, loadgen.Percentile(ra.Latency, 0.99)), append(controlP99, loadgen.Percentile(rc.Latency, 0.99))
	}
	b.StopTimer()
	cpuPerReq := (procCPU(a.PID()) - cpu0) / time.Duration(windows*window)
	controlCPUPerReq := (procCPU(controlPID) - controlCPU0) / time.Duration(windows*window)
	slices.Sort(agentAll)
	slices.Sort(controlAll)
	slices.Sort(agentLag)
	p50, p99 := loadgen.Percentile(agentAll, 0.50), loadgen.Percentile(agentAll, 0.99)
	controlP50, controlP99All := loadgen.Percentile(controlAll, 0.50), loadgen.Percentile(controlAll, 0.99)
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(controlP99All, "control_p99_ms")
	b.ReportMetric(float64(cpuPerReq)/float64(time.Microsecond), "agent_cpu_us/req")
	b.ReportMetric(float64(controlCPUPerReq)/float64(time.Microsecond), "control_cpu_us/req")
	b.ReportMetric(float64(errs), "errors")
	// The verdict. The machine's stalls only ever add latency, so an agent p99 within the
	// target is a pass however noisy the run. One over it is the agent's fault only when the
	// instrument is precise enough to say so: when the control, doing nothing, stayed within
	// half the target. Otherwise this machine cannot tell.
	res := "PASS"
	switch {
	case errs > 0:
		res = "FAIL"
	case p99 <= 2:
	case controlP99All <= 1:
		res = "FAIL"
	default:
		res = "NO VERDICT (the empty control server's p99 is over 1 ms here)"
	}
	benchRowResult(b, "GET /api/v1/status p99 at 2,000 req/s",
		fmt.Sprintf("p99 %.2f ms, p50 %.2f ms over %d requests (p99 per 1-s window %.2f-%.2f), agent CPU %d µs/req; empty control server, same load: p99 %.2f ms, p50 %.2f ms, CPU %d µs/req",
			p99, p50, len(agentAll), slices.Min(agentP99), slices.Max(agentP99), cpuPerReq/time.Microsecond,
			controlP99All, controlP50, controlCPUPerReq/time.Microsecond),
		"<= 2 ms", res)
	b.Logf("GET /api/v1/status at %d/s on a real agent, %d windows of %d requests: p99 per window %s ms; whole run p50 %.2f, p99 %.2f, p99.9 %.2f, max %.2f ms; "+
		"the generator's own lateness p99 %.2f ms; agent CPU %s per request. Control server, same load: p99 per window %s ms; whole run p50 %.2f, p99 %.2f ms; CPU %s per request",
		rate, windows, window, fmtMs(agentP99), p50, p99, loadgen.Percentile(agentAll, 0.999), loadgen.Percentile(agentAll, 1),
		loadgen.Percentile(agentLag, 0.99), cpuPerReq, fmtMs(controlP99), controlP50, controlP99All, controlCPUPerReq)
}

func fmtMs(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

// startControlServer starts this test binary as the control server (controlServerEnv),
// answering size bytes, and returns its address and process ID.
func startControlServer(b *testing.B, size int) (addr string, pid int) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), controlServerEnv+"="+strconv.Itoa(size))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err = bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("the control server did not start: %v", err)
	}
	return strings.TrimSpace(addr), cmd.Process.Pid
}
