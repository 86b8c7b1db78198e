// Package loadgen runs open-loop load for the benchmarks: requests start on a fixed schedule
// whether or not earlier ones have answered, and latency is counted from the scheduled
// start, so a stall shows up in full (no coordinated omission). Tests and benchmarks only.
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
	Elapsed          time.Duration
	// MaxLag is the worst lateness of the pacer itself.
	MaxLag time.Duration
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
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs int
		lag  time.Duration
	)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		// A sleep wakes up to a millisecond late on Linux; that lateness counts in the
		// latency from the schedule (a spinning pacer starves the server on two cores).
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if l := time.Since(due); l > lag {
			lag = l
		}
		wg.Go(func() {
			sent := time.Now()
			err := fire()
			lat[i] = time.Since(due)
			svc[i] = time.Since(sent)
			if err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r := Result{Latency: lat, Service: svc, Errors: errs, Elapsed: time.Since(start), MaxLag: lag}
	slices.Sort(r.Latency)
	slices.Sort(r.Service)
	return r
}
