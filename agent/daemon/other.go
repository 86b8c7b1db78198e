//go:build !linux && !windows

package daemon

import "errors"

var errUnsupported = errors.New("installing the service is supported on Windows and on Linux with systemd; run `certagent run` under your init system instead")

func (m *Manager) install(Spec) error     { return errUnsupported }
func (m *Manager) uninstall() error       { return errUnsupported }
func (m *Manager) start() error           { return errUnsupported }
func (m *Manager) stop() error            { return errUnsupported }
func (m *Manager) restart() error         { return errUnsupported }
func (m *Manager) query() (Status, error) { return Status{State: Unknown}, errUnsupported }
