package config

import "os"

// platformPaths returns the defaults on Windows: under %ProgramData%, read from the
// environment each time, since a service and an administrator's console may see different
// environments.
func platformPaths() osPaths { return windowsPaths(os.Getenv) }
