package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows/svc"
)

// runService runs p under the service manager with kardianos/service's handler (its
// Execute), through scmHandler.
//
// Not with kardianos's s.Run(): that asks svc.IsWindowsService(), once, in kardianos's
// init, whether the service manager started the process, and otherwise runs Start and Stop
// around Ctrl-C as a console program. Wine answers false for a real service, and --service
// says it anyway (docs/contract.md, "Service"): nothing is guessed. Under the service
// manager s.Run() does exactly this svc.Run with its own Execute.
func runService(ctx context.Context, p Program, failed func(error) bool) error {
	h, err := newSCMHandler(ctx, p, failed)
	if err != nil {
		return err
	}
	if err := svc.Run(Name, h); err != nil {
		return fmt.Errorf("not started by the service manager (%w): `certagent run --service` is what the %s service runs; from a console, use `certagent run`", err, Name)
	}
	return h.g.result(h.err)
}

// Progress reports while starting and stopping: the wait hint is how long the service
// manager waits for the next checkpoint.
const (
	startHint = 10 * time.Second
	stopHint  = 5 * time.Second
)

// scmHandler stands between the service manager and kardianos/service's Execute, which
// reports START_PENDING, calls Start, reports RUNNING (accepting stop and shutdown), and on
// either reports STOP_PENDING and calls Stop; it returns service-specific exit code 1 when
// Start fails and 2 when Stop does. scmHandler adds what that Execute leaves out:
//
//   - progress: START_PENDING and STOP_PENDING with a wait hint and a checkpoint that
//     advances every second, so that the service manager (and sc, net, certagent start and
//     stop) wait while the agent starts, or finishes the step under way as it stops;
//   - a program that ends by itself: kardianos's Execute waits only for the service
//     manager's requests, so scmHandler hands it a stop request of its own; Stop then returns
//     the program's error when it failed (exit code 2, which the recovery actions answer,
//     FailureActionsOnNonCrashFailures being set) and nil otherwise (exit code 0);
//   - no RUNNING for a program that has already ended: the service goes from START_PENDING
//     to STOP_PENDING, and `certagent start` says it stopped as it started;
//   - an answer to Interrogate while kardianos is inside Start or Stop, when it reads no
//     requests.
type scmHandler struct {
	ks svc.Handler
	g  *program
	// err is the stop's own error when the program did not stop in time.
	err error
}

func newSCMHandler(ctx context.Context, p Program, failed func(error) bool) (*scmHandler, error) {
	g := newProgram(ctx, p, failed, nil)
	s, err := newRunner(g, nil)
	if err != nil {
		return nil, err
	}
	ks, ok := s.(svc.Handler)
	if !ok {
		return nil, errors.New("kardianos/service's Windows service has no Execute method")
	}
	return &scmHandler{ks: ks, g: g}, nil
}

func (h *scmHandler) Execute(args []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	// kardianos's Execute reads one stop (or shutdown) request and returns after it: room for
	// that one, and a send that never blocks after.
	req := make(chan svc.ChangeRequest, 1)
	stop := func(c svc.ChangeRequest) {
		select {
		case req <- c:
		default:
		}
	}
	status := make(chan svc.Status)
	type result struct {
		ssec bool
		code uint32
	}
	res := make(chan result, 1)
	go func() {
		ssec, code := h.ks.Execute(args, req, status)
		res <- result{ssec, code}
	}()

	var cur svc.Status
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := h.g.done
	for {
		select {
		case st := <-status:
			switch st.State {
			case svc.StartPending:
				st.CheckPoint, st.WaitHint = 1, uint32(startHint/time.Millisecond)
			case svc.StopPending:
				st.CheckPoint, st.WaitHint = 1, uint32(stopHint/time.Millisecond)
			case svc.Running:
				if h.g.ended() {
					continue // the stop request is on its way
				}
			}
			cur = st
			s <- st
		case <-tick.C:
			if cur.State == svc.StartPending || cur.State == svc.StopPending {
				cur.CheckPoint++
				s <- cur
			}
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				s <- cur
			case svc.Stop, svc.Shutdown:
				stop(c)
			}
		case <-done:
			done = nil
			stop(svc.ChangeRequest{Cmd: svc.Stop, CurrentStatus: cur})
		case x := <-res:
			if x.ssec && !h.g.ended() {
				h.err = errors.New("the agent did not stop within " + StopTimeout.String())
			}
			return x.ssec, x.code
		}
	}
}
