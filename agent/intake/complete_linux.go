package intake

import (
	"errors"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux the kernel tells when a writer closes a file (IN_CLOSE_WRITE) and when a file is
// moved into the folder (IN_MOVED_TO, complete by nature). fsnotify does not offer either in
// its portable API (as of v1.10), so a second inotify instance watches for just these two;
// fsnotify keeps telling about everything else. A file reported complete is read after
// completeQuiet instead of the whole settle window.

// completeWatcher reports names of files written and closed in, or moved into, one folder.
type completeWatcher struct {
	f     *os.File
	names chan string
	wg    sync.WaitGroup
}

func newCompleteWatcher(dir string) (*completeWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A non-blocking fd wrapped in an os.File reads through the runtime's poller, so Close
	// wakes a Read that waits (as fsnotify does).
	w := &completeWatcher{f: os.NewFile(uintptr(fd), "inotify"), names: make(chan string, 256)}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

func (w *completeWatcher) loop() {
	defer w.wg.Done()
	defer close(w.names)
	var buf [64 * (unix.SizeofInotifyEvent + unix.NAME_MAX + 1)]byte
	for {
		n, err := w.f.Read(buf[:])
		if err != nil {
			return // closed (or broken: the settle rule still applies)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameLen := int(ev.Len)
			start := off + unix.SizeofInotifyEvent
			off = start + nameLen
			if off > n || nameLen == 0 || ev.Mask&unix.IN_ISDIR != 0 {
				continue
			}
			name := buf[start : start+nameLen]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			select {
			case w.names <- string(name):
			default: // a flood: the listing and the settle rule still find the file
			}
		}
	}
}

// Names returns the channel of complete files' names; it is closed when the watcher stops.
func (w *completeWatcher) Names() <-chan string { return w.names }

// Close stops the watcher and waits for its goroutine.
func (w *completeWatcher) Close() error {
	err := w.f.Close()
	w.wg.Wait()
	return err
}

// probeWriters reports errWriterOpen when another process has f open for writing: the kernel
// grants a read lease (F_SETLEASE F_RDLCK) only when no one does. The lease is released at
// once. When the agent may not take leases (a file it does not own, without CAP_LEASE), or
// the file system does not support them, the probe says nothing (nil).
func probeWriters(f *os.File) error {
	fd := f.Fd()
	if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return errWriterOpen
		}
		return nil
	}
	unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
	return nil
}
