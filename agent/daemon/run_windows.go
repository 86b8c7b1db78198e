package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/windows/svc"
)

func runService(ctx context.Context, p Program, exitCode func(error) uint32) error {
	h := &handler{ctx: ctx, p: p, exitCode: exitCode}
	if err := svc.Run(Name, h); err != nil {
		return fmt.Errorf("not started by the service manager (%w): `certagent run --service` is what the %s service runs; from a console, use `certagent run`", err, Name)
	}
	return h.err
}

// handler is the service's svc.Handler. It reports START_PENDING until the program is
// ready, RUNNING while it runs, and STOP_PENDING with a checkpoint that advances every second
// while it stops, so that the service manager waits instead of killing it.
type handler struct {
	ctx      context.Context
	p        Program
	exitCode func(error) uint32
	err      error
}

// Progress reports while starting and stopping: the wait hint is how long the service
// manager waits for the next checkpoint.
const (
	startHint = 10 * time.Second
	stopHint  = 5 * time.Second
)

func (h *handler) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ready := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() { done <- h.p(ctx, func() { once.Do(func() { close(ready) }) }) }()

	checkpoint := uint32(1)
	s <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: uint32(startHint / time.Millisecond)}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
starting:
	for {
		select {
		case <-ready:
			break starting
		case err := <-done:
			return h.finish(err)
		case <-tick.C:
			checkpoint++
			s <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: uint32(startHint / time.Millisecond)}
		case c := <-r:
			if c.Cmd == svc.Interrogate {
				s <- c.CurrentStatus
			}
		}
	}
	s <- svc.Status{State: svc.Running, Accepts: accepts}
	for {
		select {
		case err := <-done:
			return h.finish(err)
		case <-ctx.Done():
			return h.stopping(s, done)
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				s <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				cancel()
				return h.stopping(s, done)
			}
		}
	}
}

func (h *handler) stopping(s chan<- svc.Status, done <-chan error) (bool, uint32) {
	checkpoint := uint32(1)
	s <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(stopHint / time.Millisecond)}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(StopTimeout)
	defer deadline.Stop()
	for {
		select {
		case err := <-done:
			return h.finish(err)
		case <-tick.C:
			checkpoint++
			s <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(stopHint / time.Millisecond)}
		case <-deadline.C:
			h.err = errors.New("the agent did not stop within " + StopTimeout.String())
			return true, 2
		}
	}
}

// finish records the program's error and turns it into the service's exit code.
func (h *handler) finish(err error) (bool, uint32) {
	h.err = err
	if code := h.exitCode(err); code != 0 {
		return true, code
	}
	return false, 0
}
