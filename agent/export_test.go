package agent

import (
	"testing"
	"time"
)

// NotifyBackoffForTest shortens the webhook retry pauses for one test.
func NotifyBackoffForTest(t *testing.T) {
	old := notifyBackoff
	notifyBackoff = []time.Duration{50 * time.Millisecond}
	t.Cleanup(func() { notifyBackoff = old })
}
