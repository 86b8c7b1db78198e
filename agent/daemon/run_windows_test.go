package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// TestHandlerReportsProgress drives the service handler as the service manager would: it
// must report START_PENDING with advancing checkpoints until the program is ready, RUNNING,
// and STOP_PENDING with advancing checkpoints while the program stops.
func TestHandlerReportsProgress(t *testing.T) {
	r := make(chan svc.ChangeRequest)
	s := make(chan svc.Status, 100)
	stopped := make(chan struct{})
	h := &handler{ctx: context.Background(), exitCode: func(error) uint32 { return 0 },
		p: func(ctx context.Context, ready func()) error {
			time.Sleep(2500 * time.Millisecond) // a slow start
			ready()
			<-ctx.Done()
			time.Sleep(2500 * time.Millisecond) // a slow stop: the step under way finishes
			close(stopped)
			return nil
		}}
	type result struct {
		ssec bool
		code uint32
	}
	done := make(chan result, 1)
	go func() {
		ssec, code := h.Execute(nil, r, s)
		done <- result{ssec, code}
	}()
	var seen []svc.Status
	next := func() svc.Status {
		t.Helper()
		select {
		case st := <-s:
			seen = append(seen, st)
			return st
		case <-time.After(10 * time.Second):
			t.Fatalf("no status report; seen %+v", seen)
			return svc.Status{}
		}
	}
	var st svc.Status
	starts := 0
	for st = next(); st.State == svc.StartPending; st = next() {
		starts++
		if st.CheckPoint != uint32(starts) || st.WaitHint == 0 {
			t.Errorf("start report %d: %+v, want checkpoint %d and a wait hint", starts, st, starts)
		}
	}
	if starts < 2 || st.State != svc.Running || st.Accepts&svc.AcceptStop == 0 {
		t.Fatalf("after %d start reports: %+v, want RUNNING accepting stop", starts, st)
	}
	r <- svc.ChangeRequest{Cmd: svc.Stop}
	stops := 0
	for {
		select {
		case st = <-s:
			stops++
			if st.State != svc.StopPending || st.CheckPoint != uint32(stops) {
				t.Errorf("stop report %d: %+v", stops, st)
			}
			continue
		case res := <-done:
			if res.ssec || res.code != 0 {
				t.Errorf("Execute = %v, %d, want a clean stop", res.ssec, res.code)
			}
		}
		break
	}
	select {
	case <-stopped:
	default:
		t.Error("Execute returned before the program stopped")
	}
	if stops < 2 {
		t.Errorf("%d stop reports, want the checkpoint to advance while the program stops", stops)
	}
}

// TestHandlerExitCode: a program that ends by itself with an error leaves a service-specific
// exit code, which the recovery actions answer; one that the caller maps to 0 does not.
func TestHandlerExitCode(t *testing.T) {
	for _, tt := range []struct {
		code     uint32
		wantSSEC bool
	}{{1, true}, {0, false}} {
		h := &handler{ctx: context.Background(), exitCode: func(error) uint32 { return tt.code },
			p: func(ctx context.Context, ready func()) error { return errors.New("boom") }}
		s := make(chan svc.Status, 10)
		ssec, code := h.Execute(nil, make(chan svc.ChangeRequest), s)
		if ssec != tt.wantSSEC || code != tt.code || h.err == nil {
			t.Errorf("exit code %d: Execute = %v, %d (err %v)", tt.code, ssec, code, h.err)
		}
	}
}
