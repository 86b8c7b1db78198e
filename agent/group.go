package agent

import (
	"context"
	"fmt"
	"sync"
)

// group runs the agent's parts, each in its own goroutine, and is the one way the agent
// starts and stops background work: every part gets the group's context; the first part to
// fail cancels it for the others; Wait waits for all of them and returns the first failure.
// A part returning nil (or any error once the context is cancelled) is a normal end.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error // the first part's failure
}

func newGroup(ctx context.Context) *group {
	ctx, cancel := context.WithCancelCause(ctx)
	return &group{ctx: ctx, cancel: cancel}
}

// Go runs f(ctx) in a goroutine that Wait waits for.
func (g *group) Go(name string, f func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil && g.ctx.Err() == nil {
			err = fmt.Errorf("%s: %w", name, err)
			g.mu.Lock()
			if g.err == nil {
				g.err = err
			}
			g.mu.Unlock()
			g.cancel(err)
		}
	}()
}

// Wait waits for every part and returns the first failure.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
