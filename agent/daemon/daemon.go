// Package daemon runs the agent as an operating-system service (the Windows service manager
// or systemd) with github.com/kardianos/service, and installs, starts, stops and removes that
// service. The service runs exactly `certagent run -c FILE`; console mode calls the same Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kardianos/service"
)

// Service identity (docs/contract.md, "Names and places").
const (
	Name        = "CertAgent"
	DisplayName = "Certificate Agent for Microsoft 365 Backup"
	Description = "Adds the backup provider's new certificate to the Entra ID app registration, keeping every existing one, and records each step."
)

// StopTimeout bounds how long Stop waits for Run to finish its step under way.
const StopTimeout = 20 * time.Second

// Actions Control takes.
var Actions = []string{"install", "uninstall", "start", "stop", "restart"}

// Config describes the service.
type Config struct {
	// Executable is the certagent binary the service runs; "" = this one.
	Executable string
	// ConfigFile is passed as `run -c FILE`; "" = the default config path.
	ConfigFile string
	// Run is the agent's main loop. It must return soon after ctx ends.
	Run func(ctx context.Context) error
	// Logger receives start and stop messages.
	Logger *slog.Logger
}

// program adapts Run to kardianos' Start/Stop: Start launches Run and returns at once; Stop
// cancels and waits a bounded time.
type program struct {
	run    func(ctx context.Context) error
	log    *slog.Logger
	mu     sync.Mutex
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
}

// errServiceStop is the cause of the root context's cancellation on a service stop.
var errServiceStop = errors.New("service stop requested")

func (p *program) Start(service.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithCancelCause(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
		if p.err != nil {
			p.log.Error("agent stopped with an error", "err", p.err)
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel == nil {
		return nil
	}
	p.cancel(errServiceStop)
	select {
	case <-p.done:
		return p.err
	case <-time.After(StopTimeout):
		return fmt.Errorf("the agent did not stop within %s", StopTimeout)
	}
}

func newService(c Config, p *program) (service.Service, error) {
	args := []string{"run"}
	if c.ConfigFile != "" {
		args = append(args, "-c", c.ConfigFile)
	}
	return service.New(p, &service.Config{
		Name:        Name,
		DisplayName: DisplayName,
		Description: Description,
		Executable:  c.Executable,
		Arguments:   args,
		Option: service.KeyValue{
			// Windows: start after boot settles, restart after a crash.
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "10s",
			"OnFailureResetPeriod":   86400,
			// systemd: restart on failure.
			"Restart": "on-failure",
		},
		Dependencies: []string{"After=network-online.target", "Wants=network-online.target"},
	})
}

// Interactive reports whether certagent runs from a console rather than under the service
// manager.
func Interactive() bool { return service.Interactive() }

// RunService runs c.Run under the service manager until it stops the service.
func RunService(c Config) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	p := &program{run: c.Run, log: c.Logger}
	s, err := newService(c, p)
	if err != nil {
		return err
	}
	return s.Run()
}

// Control performs one of Actions on the installed service.
func Control(c Config, action string) error {
	p := &program{run: func(context.Context) error { return nil }, log: slog.New(slog.DiscardHandler)}
	s, err := newService(c, p)
	if err != nil {
		return err
	}
	if err := service.Control(s, action); err != nil {
		return fmt.Errorf("%s service %s: %w", action, Name, err)
	}
	return nil
}
