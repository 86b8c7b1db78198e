//go:build race

package store

// raceEnabled shortens the crash test: the race detector slows the child's writes tenfold.
const raceEnabled = true
