//go:build !linux

package intake

import "os"

// completeWatcher reports files known complete; only Linux tells (complete_linux.go).
// Elsewhere the settle rule decides, and on Windows the exclusive open refuses a file a
// writer still holds.
type completeWatcher struct{}

func newCompleteWatcher(string) (*completeWatcher, error) { return nil, errNoCompleteEvents }

func (*completeWatcher) Names() <-chan string { return nil }
func (*completeWatcher) Close() error         { return nil }

// probeWriters says nothing here: on Windows the open's share mode already refuses a file a
// writer holds.
func probeWriters(*os.File) error { return nil }
