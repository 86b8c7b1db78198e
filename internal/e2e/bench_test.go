package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
// another process on loopback. ns/op is the pacing; the figures are the percentiles.
//
//	go test -run '^$' -bench StatusLoad -benchtime 10000x ./internal/e2e
func BenchmarkStatusLoad(b *testing.B) {
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
	auth := "Bearer " + strings.TrimSpace(string(tok))
	url := "http://" + e.Config.API.Listen + "/api/v1/status"
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	fire := func() error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", auth)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	for range 64 {
		if err := fire(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	r := loadgen.Run(2000, b.N, fire)
	b.StopTimer()
	b.ReportMetric(loadgen.Percentile(r.Latency, 0.50), "p50_ms")
	b.ReportMetric(loadgen.Percentile(r.Latency, 0.99), "p99_ms")
	b.ReportMetric(loadgen.Percentile(r.Service, 0.99), "svc_p99_ms")
	b.ReportMetric(r.Rate(), "req/s")
	b.ReportMetric(float64(r.Errors), "errors")
	p99 := loadgen.Percentile(r.Latency, 0.99)
	benchRow(b, "GET /api/v1/status p99 at 2,000 req/s", fmt.Sprintf("p99 %.2f ms (p50 %.2f ms), %d requests, %d errors", p99, loadgen.Percentile(r.Latency, 0.50), b.N, r.Errors), "<= 2 ms", p99 <= 2 && r.Errors == 0)
	b.Logf("GET /api/v1/status at 2,000/s on a real agent, %d requests: p50 %.2f ms, p99 %.2f ms (from the send: p99 %.2f ms), %d errors",
		b.N, loadgen.Percentile(r.Latency, 0.50), loadgen.Percentile(r.Latency, 0.99), loadgen.Percentile(r.Service, 0.99), r.Errors)
}
