package loadgen

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacer sleeps on an OS thread of its own with nanosleep, which the kernel serves from a
// high-resolution timer (within the thread's 50 µs timer slack), where time.Sleep would wait
// for the netpoller's next millisecond.
type pacer struct{}

func newPacer() pacer {
	runtime.LockOSThread()
	return pacer{}
}

func (pacer) sleepUntil(due time.Time) {
	for {
		d := time.Until(due)
		if d <= 0 {
			return
		}
		ts := unix.NsecToTimespec(int64(d))
		if err := unix.Nanosleep(&ts, nil); err != nil && err != unix.EINTR {
			time.Sleep(d)
		}
	}
}

func (pacer) close() { runtime.UnlockOSThread() }
