package intake

import (
	"github.com/fsnotify/fsnotify"
)

// fsEvent is a file-system event; the intake only uses Name and Op as hints.
type fsEvent = fsnotify.Event

const (
	opWrite  = fsnotify.Write
	opRemove = fsnotify.Remove
	opRename = fsnotify.Rename
)

// errOverflow is what the watcher reports when the OS dropped events (inotify's queue or
// Windows' ReadDirectoryChangesW buffer overflowed).
var errOverflow = fsnotify.ErrEventOverflow

// watchBufferSize is the ReadDirectoryChangesW buffer on Windows (ignored elsewhere). 64 KiB
// is fsnotify's default and the most that works over SMB: network shares refuse larger
// buffers. A burst that overflows it only costs a rescan.
const watchBufferSize = 64 << 10

// watcher is the part of a file-system watcher the intake uses. Close stops it and waits
// for its goroutines; afterwards both channels are closed or never written again.
type watcher interface {
	Events() <-chan fsEvent
	Errors() <-chan error
	// Watching reports whether the folder is still watched: the OS drops a watch whose
	// folder was removed, renamed away or unmounted, without always saying so.
	Watching() bool
	Close() error
}

// fsWatcher is a watcher backed by fsnotify.
type fsWatcher struct{ w *fsnotify.Watcher }

// newFSWatcher watches dir itself, not its subfolders (processed/ and rejected/ are never
// watched: fsnotify is not recursive).
func newFSWatcher(dir string) (watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.AddWith(dir, fsnotify.WithBufferSize(watchBufferSize)); err != nil {
		w.Close()
		return nil, err
	}
	return fsWatcher{w}, nil
}

func (f fsWatcher) Events() <-chan fsEvent { return f.w.Events }
func (f fsWatcher) Errors() <-chan error   { return f.w.Errors }
func (f fsWatcher) Watching() bool         { return len(f.w.WatchList()) > 0 }
func (f fsWatcher) Close() error           { return f.w.Close() }
