// Package config loads certagent's YAML configuration in phases: strict decoding that reports
// every problem with its file, line and key path, defaults (per operating system for paths),
// Validate (no I/O) and CheckFiles (the checks that read the disk).
package config
