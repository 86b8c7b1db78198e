package config

import (
	"os"

	"golang.org/x/sys/windows"
)

// platformPaths returns the defaults on Windows: under the ProgramData folder, looked up each
// time, since a service and an administrator's console may see different environments.
func platformPaths() osPaths { return windowsPaths(programDataEnv) }

// programDataEnv is os.Getenv, except that ProgramData comes from the known folder
// (FOLDERID_ProgramData), where Windows keeps it: a service's environment can lack the
// variable or, under Wine, hold another folder (C:\users\Public).
func programDataEnv(name string) string {
	if name == "ProgramData" {
		if p, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0); err == nil && p != "" {
			return p
		}
	}
	return os.Getenv(name)
}
