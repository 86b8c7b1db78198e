package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aucloud/certagent/api/apitype"
)

// statusCache keeps the last encoded status for GET /api/v1/status. Shaping and encoding
// the status is most of what the route costs (about 90 µs of CPU and 20 KB of garbage per
// request, where serving the bytes costs what an empty net/http handler does), and
// monitoring may poll it hard. An entry is served again only while all of these hold:
//   - it is younger than maxAge, which bounds how late a change the agent does not count
//     (a drop folder gone, a webhook failing, the clock) shows;
//   - version returns what it did when the entry was made: the agent counts every write to
//     its store and every read of an app, so a rotation or a sync shows at once;
//   - no mutating request has been served since it was made (read your writes).
//
// Computing holds the lock, so a burst of requests at expiry computes once; the others wait
// for it, as long as one computation takes.
type statusCache struct {
	maxAge  time.Duration
	version func() uint64 // nil: no version

	// writes counts the mutating requests served (logMutation).
	writes atomic.Uint64

	mu      sync.Mutex
	body    []byte
	at      time.Time
	ver     uint64
	writes0 uint64
}

// get returns the encoded status, from the cache when it may be, else from compute.
func (sc *statusCache) get(ctx context.Context, compute func(context.Context) apitype.Status) ([]byte, error) {
	if sc.maxAge <= 0 {
		return encodeStatus(compute(ctx))
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	// Read what the entry must match before computing, so that a change during the
	// computation makes the next request compute again.
	var ver uint64
	if sc.version != nil {
		ver = sc.version()
	}
	writes := sc.writes.Load()
	if sc.body != nil && time.Since(sc.at) < sc.maxAge && ver == sc.ver && writes == sc.writes0 {
		return sc.body, nil
	}
	at := time.Now()
	// The answer serves other callers too: the one that happens to make it going away must
	// not put its cancellation (a store read failing) in their status.
	b, err := encodeStatus(compute(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, err
	}
	sc.body, sc.at, sc.ver, sc.writes0 = b, at, ver, writes
	return b, nil
}

// encodeStatus encodes st as writeJSON would (a json.Encoder adds the newline).
func encodeStatus(st apitype.Status) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding response: %w", err)
	}
	return append(b, '\n'), nil
}
