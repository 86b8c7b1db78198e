//go:build !windows

package main

import "github.com/aucloud/certagent/agent/config"

// initialValues is nil: only the Windows installer takes values for a first config (the
// .deb ships one to edit).
var initialValues func() (config.Initial, string, error)
