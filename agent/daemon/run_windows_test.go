package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// isErr is RunService's failed for the tests: every error is a failure.
func isErr(err error) bool { return err != nil }

// TestHandlerReportsProgress drives the service handler (kardianos/service's Execute behind
// scmHandler) as the service manager would: it must report START_PENDING with advancing
// checkpoints until the program is ready, RUNNING, and STOP_PENDING with advancing
// checkpoints while the program stops.
func TestHandlerReportsProgress(t *testing.T) {
	r := make(chan svc.ChangeRequest)
	s := make(chan svc.Status, 100)
	stopped := make(chan struct{})
	h, err := newSCMHandler(context.Background(), func(ctx context.Context, ready func()) error {
		time.Sleep(2500 * time.Millisecond) // a slow start
		ready()
		<-ctx.Done()
		time.Sleep(2500 * time.Millisecond) // a slow stop: the step under way finishes
		close(stopped)
		return nil
	}, isErr)
	if err != nil {
		t.Fatal(err)
	}
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
	r <- svc.ChangeRequest{Cmd: svc.Interrogate, CurrentStatus: st}
	if got := next(); got != st {
		t.Errorf("Interrogate answered %+v, want %+v", got, st)
	}
	r <- svc.ChangeRequest{Cmd: svc.Stop}
	stops := 0
	for {
		select {
		case st = <-s:
			stops++
			if st.State != svc.StopPending || st.CheckPoint != uint32(stops) || st.WaitHint == 0 {
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

// TestHandlerProgramEnds: a program that ends by itself ends the service. A failure leaves a
// service-specific exit code, which the recovery actions answer (kardianos/service's: 1 when
// Start failed, before the program was ready; 2 when Stop did); an end that is no failure (a
// config that cannot be used) leaves exit code 0. A program that has ended is never reported
// RUNNING.
func TestHandlerProgramEnds(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name        string
		ready       bool
		failed      func(error) bool
		wantSSEC    bool
		wantCode    uint32
		wantRunning bool
	}{
		{"failure before ready", false, isErr, true, 1, false},
		{"failure after ready", true, isErr, true, 2, true},
		{"clean end before ready", false, func(error) bool { return false }, false, 0, false},
		{"clean end after ready", true, func(error) bool { return false }, false, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newSCMHandler(context.Background(), func(ctx context.Context, ready func()) error {
				if tt.ready {
					ready()
					time.Sleep(200 * time.Millisecond)
				}
				return boom
			}, tt.failed)
			if err != nil {
				t.Fatal(err)
			}
			s := make(chan svc.Status, 100)
			ssec, code := h.Execute(nil, make(chan svc.ChangeRequest), s)
			if ssec != tt.wantSSEC || code != tt.wantCode {
				t.Errorf("Execute = %v, %d; want %v, %d", ssec, code, tt.wantSSEC, tt.wantCode)
			}
			if err := h.g.result(h.err); err != boom {
				t.Errorf("RunService's error = %v, want the program's", err)
			}
			running := false
			for len(s) > 0 {
				if st := <-s; st.State == svc.Running {
					running = true
				}
			}
			if running != tt.wantRunning {
				t.Errorf("reported RUNNING: %v, want %v", running, tt.wantRunning)
			}
		})
	}
}
