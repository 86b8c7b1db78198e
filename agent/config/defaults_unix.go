//go:build !windows

package config

// platformPaths returns the defaults on Unix-like systems: fixed paths under /etc and
// /var/lib.
func platformPaths() osPaths { return unixPaths }
