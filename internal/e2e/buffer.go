package e2e

import (
	"bytes"
	"sync"
)

// lockedBuffer collects a child process's output. os/exec copies into it from its own
// goroutine until Wait returns, so a test that reads it while the process runs needs the lock.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
