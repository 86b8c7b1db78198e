package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kardianos/service"
)

// Program is what runs under the service manager: it calls ready once, when it serves (or
// knows it cannot), and returns soon after ctx ends.
type Program func(ctx context.Context, ready func()) error

// RunService runs p under the service manager until the manager stops the service (or ctx
// ends, or p returns), and returns p's error. failed reports whether an error of p is a
// failure of the service: on Windows the service then stops with a service-specific exit
// code (1 when p failed before it was ready, 2 after), which the recovery actions answer
// with a restart; any other end is exit code 0 (a config that cannot be used: restarting
// would not help).
//
// kardianos/service runs p (Start and Stop of a service.Interface). On Windows RunService
// must be started by the service manager (it fails otherwise); on Linux it tells systemd
// READY=1 and STOPPING=1 over $NOTIFY_SOCKET, when there is one.
func RunService(ctx context.Context, p Program, failed func(error) bool) error {
	return runService(ctx, p, failed)
}

// startWait bounds how long Start waits for the program to serve: kardianos/service reports
// the service started when Start returns, and its Start must not take long.
const startWait = 60 * time.Second

// program is the service.Interface that kardianos/service runs: Start launches the Program
// and returns once it serves (its API listens), so that the service manager hears "running"
// only then; Stop ends it and waits for it, at most StopTimeout.
type program struct {
	ctx    context.Context
	p      Program
	failed func(error) bool
	// onReady tells the service manager (Linux: READY=1); nil for none.
	onReady func()

	cancel    context.CancelFunc
	ready     chan struct{}
	readyOnce sync.Once
	// done is closed when p has returned, err is what it returned.
	done chan struct{}
	err  error
}

var _ service.Interface = (*program)(nil)

func newProgram(ctx context.Context, p Program, failed func(error) bool, onReady func()) *program {
	return &program{ctx: ctx, p: p, failed: failed, onReady: onReady, ready: make(chan struct{}), done: make(chan struct{})}
}

func (g *program) markReady() {
	g.readyOnce.Do(func() {
		close(g.ready)
		if g.onReady != nil {
			g.onReady()
		}
	})
}

// Start launches the program and waits until it is ready or ends, at most startWait. A
// program that failed before it was ready fails Start (Windows: exit code 1); one that ended
// cleanly leaves it to Stop.
func (g *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(g.ctx)
	g.cancel = cancel
	go func() {
		defer close(g.done)
		g.err = g.p(ctx, g.markReady)
	}()
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-g.ready:
	case <-g.done:
		if g.failed(g.err) {
			return g.err
		}
	case <-t.C:
	}
	return nil
}

// Stop ends the program and waits for it, at most StopTimeout. It returns the program's
// error when that is a failure (Windows: exit code 2), and an error when the program did not
// stop in time.
func (g *program) Stop(service.Service) error {
	g.cancel()
	t := time.NewTimer(StopTimeout)
	defer t.Stop()
	select {
	case <-g.done:
		if g.failed(g.err) {
			return g.err
		}
		return nil
	case <-t.C:
		return fmt.Errorf("the agent did not stop within %s", StopTimeout)
	}
}

// ended reports whether the program has returned.
func (g *program) ended() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// result is RunService's error: the program's, once it has returned; else runErr (the
// service manager's, or a stop that timed out).
func (g *program) result(runErr error) error {
	if g.ended() {
		return g.err
	}
	return runErr
}

// idle is the service.Interface of a service that is installed or controlled, not run.
type idle struct{}

func (idle) Start(service.Service) error { return nil }
func (idle) Stop(service.Service) error  { return nil }
