package store

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/aucloud/certagent/agent/rotation"
)

// Cached is the store with the rotation list kept in memory, so that status, certificates
// and metrics (read on every API request and scrape) do not decode every rotation from disk
// each time. The agent is the store's only writer (bbolt's file lock), so invalidating on
// each of its own writes keeps the copy exact; it is reloaded on the next read.
type Cached struct {
	*Store

	// mu guards list: every rotation oldest first, or nil when it must be reloaded; and
	// writing: how many writes are under way. While one is, List reads from disk and keeps
	// no copy, so it never serves the list from before a write that a read from disk (Get)
	// already shows.
	mu      sync.Mutex
	list    []rotation.Rotation
	writing int

	// changes counts the writes done, for Changes.
	changes atomic.Uint64
}

// Changes returns a number that changes after each write of a rotation: the API's cached
// status is made anew when it does.
func (c *Cached) Changes() uint64 { return c.changes.Load() }

var _ rotation.Store = (*Cached)(nil)

// NewCached returns s with its rotation list cached.
func NewCached(s *Store) *Cached { return &Cached{Store: s} }

// begin notes a write under way, end its end; both drop the copy.
func (c *Cached) begin() {
	c.mu.Lock()
	c.writing++
	c.list = nil
	c.mu.Unlock()
}

func (c *Cached) end() {
	c.mu.Lock()
	c.writing--
	c.list = nil
	c.mu.Unlock()
	c.changes.Add(1)
}

// Create implements rotation.Store.
func (c *Cached) Create(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) (rotation.Rotation, bool, error) {
	c.begin()
	defer c.end()
	return c.Store.Create(ctx, r, audit...)
}

// Update implements rotation.Store.
func (c *Cached) Update(ctx context.Context, r rotation.Rotation, audit ...rotation.AuditEntry) error {
	c.begin()
	defer c.end()
	return c.Store.Update(ctx, r, audit...)
}

// List implements rotation.Store from memory. Callers get copies they may change.
func (c *Cached) List(ctx context.Context, f rotation.Filter) ([]rotation.Rotation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []rotation.Rotation
	for _, r := range list {
		if f.State == "" || r.State == f.State {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}

// Scan implements rotation.Scanner from memory, copying nothing: the status counts every
// rotation on each request, and cloning them all made most of its garbage. The list shown
// is never changed, only replaced (begin, end), so fn may keep what it is shown.
func (c *Cached) Scan(ctx context.Context, fn func(*rotation.Rotation)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	list, err := c.load(ctx)
	if err != nil {
		return err
	}
	for i := range list {
		fn(&list[i])
	}
	return nil
}

// load returns every rotation, oldest first: the copy, or a read from disk (kept as the copy
// unless a write is under way). c.mu is held.
func (c *Cached) load(ctx context.Context) ([]rotation.Rotation, error) {
	if c.list != nil {
		return c.list, nil
	}
	all, err := c.Store.List(ctx, rotation.Filter{})
	if err != nil {
		return nil, err
	}
	if all == nil {
		all = []rotation.Rotation{}
	}
	if c.writing == 0 {
		c.list = all
	}
	return all, nil
}
