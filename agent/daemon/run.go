package daemon

import "context"

// Program is what runs under the service manager: it calls ready once, when it serves (or
// knows it cannot), and returns soon after ctx ends.
type Program func(ctx context.Context, ready func()) error

// RunService runs p under the service manager until the manager stops the service (or ctx
// ends, or p returns), and returns p's error. exitCode maps that error to the exit code the
// service manager records: 0 for a clean stop. On Windows any other code is reported as a
// service-specific error, which the recovery actions answer with a restart.
//
// On Windows it must be started by the service manager (svc.Run fails otherwise). On Linux it
// tells systemd READY=1 and STOPPING=1 over $NOTIFY_SOCKET, when there is one.
func RunService(ctx context.Context, p Program, exitCode func(error) uint32) error {
	return runService(ctx, p, exitCode)
}
