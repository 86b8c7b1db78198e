//go:build !linux

package loadgen

import "time"

// pacer sleeps with time.Sleep: elsewhere the benchmarks only need to run, not to be exact.
type pacer struct{}

func newPacer() pacer { return pacer{} }

func (pacer) sleepUntil(due time.Time) {
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

func (pacer) close() {}
