//go:build !linux && !windows

package daemon

import (
	"errors"

	"github.com/kardianos/service"
)

var errUnsupported = errors.New("installing the service is supported on Windows and on Linux with systemd; run `certagent run` under your init system instead")

func (m *Manager) install(Spec) error     { return errUnsupported }
func (m *Manager) uninstall() error       { return errUnsupported }
func (m *Manager) start() error           { return errUnsupported }
func (m *Manager) stop() error            { return errUnsupported }
func (m *Manager) restart() error         { return errUnsupported }
func (m *Manager) query() (Status, error) { return Status{State: Unknown}, errUnsupported }

// newRunner is the service that runs i (runService), with the system kardianos/service
// detects (launchd, rc.d...).
func newRunner(i service.Interface, opt service.KeyValue) (service.Service, error) {
	return service.New(i, &service.Config{Name: "certagent", DisplayName: DisplayName, Description: Description, Option: opt})
}
