// Package loadgen runs open-loop load for the benchmarks: requests start on a fixed schedule
// whether or not earlier ones have answered, and latency is counted from the scheduled
// start, so a stall shows up in full (no coordinated omission). Tests and benchmarks only.
//
// The generator is the instrument, not the subject, so it is built to cost little and to
// keep its own timing error small on a 2-core VM that it shares with the process under test:
//   - the pacer sleeps with the kernel's high-resolution timer (sleep_linux.go): Go's
//     time.Sleep rounds a wait under a millisecond up to one (the netpoller's epoll timeout),
//     which alone put 0.6 ms on every request's latency;
//   - Conn (http.go) sends one prepared HTTP/1.1 request over kept-alive connections and reads
//     the answer by its Content-Length, with less CPU than net/http's client.
package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Result is one run's figures. Latencies are sorted.
type Result struct {
	// Latency runs from each request's scheduled start; Service from its actual send.
	Latency, Service []time.Duration
	Errors           int
	// FirstErr is the first error fire returned, for the report.
	FirstErr error
	Elapsed  time.Duration
	// Lag is how late the pacer itself started each request, sorted: the generator's own
	// timing error, which is part of Latency.
	Lag []time.Duration
}

// MaxLag is the worst lateness of the pacer itself.
func (r Result) MaxLag() time.Duration {
	if len(r.Lag) == 0 {
		return 0
	}
	return r.Lag[len(r.Lag)-1]
}

// Percentile returns the p-th quantile (0..1) of sorted durations, in milliseconds.
func Percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond)
}

// Rate is what the run achieved, in requests per second.
func (r Result) Rate() float64 { return float64(len(r.Latency)) / r.Elapsed.Seconds() }

// Run starts n calls of fire at rate per second, each in its own goroutine, and waits for
// all of them.
func Run(rate, n int, fire func() error) Result {
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	svc := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     int
		firstErr error
	)
	p := newPacer()
	defer p.close()
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		p.sleepUntil(due)
		lag[i] = time.Since(due)
		wg.Go(func() {
			sent := time.Now()
			err := fire()
			lat[i] = time.Since(due)
			svc[i] = time.Since(sent)
			if err != nil {
				mu.Lock()
				errs++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r := Result{Latency: lat, Service: svc, Lag: lag, Errors: errs, FirstErr: firstErr, Elapsed: time.Since(start)}
	slices.Sort(r.Latency)
	slices.Sort(r.Service)
	slices.Sort(r.Lag)
	return r
}
