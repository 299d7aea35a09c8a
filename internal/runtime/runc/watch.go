package runc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// watcher is one inotify instance per Runtime. It watches the exit
// directory (conmon writes <exits>/<id> when a container exits) and the
// directories of rotated logs, and wakes whoever waits for them.
type watcher struct {
	f      *os.File
	fd     int // f's descriptor; f.Fd() would make it blocking
	exitWD int

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // container id → channels closed on exit
	logDirs map[int]*logDir                       // watch descriptor → log directory
	dirWD   map[string]int                        // log directory → watch descriptor
	done    chan struct{}
}

// logDir is a watched directory of container logs.
type logDir struct {
	dir  string
	logs map[string]*rotation // log file base name → its rotation
}

func newWatcher(exitDir string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, errdefs.Unavailable("inotify_init1: %w", err)
	}
	wd, err := unix.InotifyAddWatch(fd, exitDir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
	if err != nil {
		unix.Close(fd)
		return nil, errdefs.Unavailable("watch exit directory %s: %w", exitDir, err)
	}
	w := &watcher{
		// A non-blocking descriptor goes to Go's poller, so Read parks
		// the goroutine and Close wakes it.
		f:       os.NewFile(uintptr(fd), "inotify"),
		fd:      fd,
		exitWD:  wd,
		waiters: map[string]map[chan struct{}]struct{}{},
		logDirs: map[int]*logDir{},
		dirWD:   map[string]int{},
		done:    make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

func (w *watcher) close() error {
	err := w.f.Close()
	<-w.done
	return err
}

// subscribe returns a channel closed when an exit file for id appears.
// Call it before checking for the file, so no exit is missed.
func (w *watcher) subscribe(id string) (chan struct{}, func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	if w.waiters[id] == nil {
		w.waiters[id] = map[chan struct{}]struct{}{}
	}
	w.waiters[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		if _, ok := w.waiters[id][ch]; ok {
			delete(w.waiters[id], ch)
			if len(w.waiters[id]) == 0 {
				delete(w.waiters, id)
			}
		}
		w.mu.Unlock()
	}
}

func (w *watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := string(trimNul(nameBytes))
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.wakeAll()
				continue
			}
			if int(ev.Wd) == w.exitWD {
				w.wake(name)
				continue
			}
			w.mu.Lock()
			var rot *rotation
			if d := w.logDirs[int(ev.Wd)]; d != nil {
				rot = d.logs[name]
			}
			w.mu.Unlock()
			if rot != nil {
				rot.rotated()
			}
		}
	}
}

func trimNul(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func (w *watcher) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.waiters[id] {
		close(ch)
	}
	delete(w.waiters, id)
}

// wakeAll wakes every waiter; they check their exit file again.
func (w *watcher) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, chs := range w.waiters {
		for ch := range chs {
			close(ch)
		}
		delete(w.waiters, id)
	}
}

// watchLog starts watching rot's log directory for conmon's renames.
func (w *watcher) watchLog(rot *rotation) error {
	dir, base := filepath.Dir(rot.logPath), filepath.Base(rot.logPath)
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, ok := w.dirWD[dir]
	if !ok {
		var err error
		wd, err = unix.InotifyAddWatch(w.fd, dir, unix.IN_MOVED_TO)
		if err != nil {
			return fmt.Errorf("watch log directory %s: %w", dir, err)
		}
		w.dirWD[dir] = wd
		w.logDirs[wd] = &logDir{dir: dir, logs: map[string]*rotation{}}
	}
	w.logDirs[wd].logs[base] = rot
	return nil
}

// unwatchLog stops watching logPath, and its directory once no other log
// there is watched.
func (w *watcher) unwatchLog(logPath string) {
	dir, base := filepath.Dir(logPath), filepath.Base(logPath)
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, ok := w.dirWD[dir]
	if !ok {
		return
	}
	d := w.logDirs[wd]
	delete(d.logs, base)
	if len(d.logs) == 0 {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
		delete(w.logDirs, wd)
		delete(w.dirWD, dir)
	}
}
