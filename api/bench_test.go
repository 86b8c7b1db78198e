package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/internal/loadgen"
)

// BenchmarkStatus measures GET /api/v1/status through the whole handler stack (headers,
// Host and browser checks, token check, router, strict query, handler, JSON), without the
// network.
func BenchmarkStatus(b *testing.B) {
	b.Run("made", func(b *testing.B) { benchmarkStatus(b, 0) })
	b.Run("cached", func(b *testing.B) { benchmarkStatus(b, time.Hour) })
}

// benchmarkStatus is BenchmarkStatus with the status cached for maxAge (0: made anew for
// every request).
func benchmarkStatus(b *testing.B, maxAge time.Duration) {
	st := sampleStatus()
	h := newTestHandler(b, &fakeBackend{StatusFunc: func(context.Context) apitype.Status { return st }}, nil,
		func(c *Config) { c.StatusMaxAge = maxAge })
	r := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	r.Host = testHost
	r.Header.Set("Authorization", "Bearer "+string(testToken))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("status = %d", rec.Code)
		}
	}
}

// BenchmarkLoadStatus2000rps is an open-loop load run on loopback: b.N requests for
// GET /api/v1/status are started on a fixed schedule of 2,000 per second against an
// httptest.Server (each at its own time, whether or not earlier ones have answered), and the
// latency percentiles are reported. Latency runs from the scheduled start, so a stall in the
// server shows up in full (no coordinated omission); svc-* is from the actual send. ns/op is
// the pacing, not a cost.
//
//	go test -run '^$' -bench LoadStatus -benchtime 10000x ./api
//
// The target is p99 ≤ 2 ms; the benchmark reports, it does not assert.
func BenchmarkLoadStatus2000rps(b *testing.B) {
	const rate = 2000
	st := sampleStatus()
	srv := newTestServer(b, &fakeBackend{StatusFunc: func(context.Context) apitype.Status { return st }})
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := srv.URL + "/api/v1/status"
	auth := "Bearer " + string(testToken)
	fire := func() error {
		r, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		r.Header.Set("Authorization", auth)
		resp, err := hc.Do(r)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}
	// Warm the connection pool so the run measures serving, not dialing.
	for range 32 {
		if err := fire(); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	r := loadgen.Run(rate, b.N, fire)
	b.StopTimer()
	lat, svc := r.Latency, r.Service
	pct := loadgen.Percentile
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(pct(lat, 0.999), "p99.9-ms")
	b.ReportMetric(pct(lat, 1), "max-ms")
	b.ReportMetric(pct(svc, 0.50), "svc-p50-ms")
	b.ReportMetric(pct(svc, 0.99), "svc-p99-ms")
	b.ReportMetric(r.Rate(), "req/s")
	b.ReportMetric(float64(r.Errors), "errors")
	b.ReportMetric(float64(r.MaxLag())/float64(time.Millisecond), "sched-lag-ms")
}
