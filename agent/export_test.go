package agent

import (
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/notify"
)

// NotifyBackoffForTest shortens the webhook retry pauses for one test.
func NotifyBackoffForTest(t *testing.T) {
	old := notify.Backoff
	notify.Backoff = []time.Duration{50 * time.Millisecond}
	t.Cleanup(func() { notify.Backoff = old })
}
