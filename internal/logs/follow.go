package logs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// follow reads new records as they are written until Done, Until, ctx or
// fn ends it. r.cur is the file read so far, if any.
func (r *reader) follow(ctx context.Context) error {
	done := r.opts.Done
	var until <-chan time.Time
	if !r.opts.Until.IsZero() {
		t := time.NewTimer(time.Until(r.opts.Until))
		defer t.Stop()
		until = t.C
	}
	finishing := false
	for {
		if r.cur != nil {
			if err := r.drain(ctx, r.cur); err != nil {
				return err
			}
		}
		switched, err := r.rotate(ctx)
		if err != nil {
			return err
		}
		if switched {
			continue
		}
		if finishing {
			if r.cur != nil {
				r.abandon(r.cur)
			}
			return nil
		}
		if r.opts.Idle != nil {
			if err := r.opts.Idle(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.w.wake:
		case err := <-r.w.errc:
			return err
		case <-done:
			finishing = true
		case <-until:
			finishing = true
		}
	}
}

// rotate moves to the next file once the writer has put a new one at the
// log's path, after reading the current one to its end. The next file is
// path.1 when that is a file not read yet (the reader fell one rotation
// behind), otherwise path itself. It reports whether it moved, or must
// look again.
func (r *reader) rotate(ctx context.Context) (bool, error) {
	st, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("stat log: %w", err))
	}
	if r.cur != nil && os.SameFile(st, r.cur.info) {
		return false, nil
	}
	if r.cur != nil {
		// The writer no longer writes cur: read what it added since the
		// last drain, then report what it left unfinished.
		if err := r.drain(ctx, r.cur); err != nil {
			return false, err
		}
		r.abandon(r.cur)
	}
	old, err := os.Stat(r.path + RotatedSuffix)
	if err != nil {
		old = nil
	}
	r.prune(st, old)
	next, nextInfo := r.path, st
	if old != nil && !r.seen(old) && !os.SameFile(old, st) {
		next, nextInfo = r.path+RotatedSuffix, old
	}
	s, err := openSegment(next)
	if err != nil {
		return false, err
	}
	if s == nil || !os.SameFile(s.info, nextInfo) {
		// Rotated again between the stat and the open: decide afresh.
		s.close()
		return true, nil
	}
	if r.cur != nil {
		r.retired = append(r.retired, r.cur)
	}
	r.cur = s
	return true, nil
}

// seen reports whether fi is the current file or one already read.
func (r *reader) seen(fi fs.FileInfo) bool {
	if r.cur != nil && os.SameFile(fi, r.cur.info) {
		return true
	}
	for _, s := range r.retired {
		if os.SameFile(fi, s.info) {
			return true
		}
	}
	return false
}

// prune closes the files already read that neither of the log's names
// shows any more (path and rotated may be nil). A file that is still shown
// stays open, so that its inode number cannot be reused by a new file that
// would then be mistaken for it.
func (r *reader) prune(path, rotated fs.FileInfo) {
	kept := r.retired[:0]
	for _, s := range r.retired {
		if (path != nil && os.SameFile(path, s.info)) || (rotated != nil && os.SameFile(rotated, s.info)) {
			kept = append(kept, s)
			continue
		}
		s.close()
	}
	clear(r.retired[len(kept):])
	r.retired = kept
}

// watcher wakes a follower when one of a few names in a directory is
// created, renamed to, or written.
type watcher struct {
	f     *os.File
	names [][]byte
	// wake holds one pending notification; more events coalesce into it.
	wake chan struct{}
	errc chan error
	// exited is closed when the reading goroutine has returned.
	exited chan struct{}
}

const watchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR

func newWatcher(dir string, names ...string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, errdefs.Unavailable("follow log: inotify_init1: %v", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, errdefs.NotFound("follow log: directory %s does not exist", dir)
		}
		if errors.Is(err, unix.ENOSPC) {
			return nil, errdefs.Unavailable("follow log: watch %s: too many inotify watches: raise fs.inotify.max_user_watches", dir)
		}
		return nil, errdefs.Unavailable("follow log: watch %s: %v", dir, err)
	}
	w := &watcher{
		// A non-blocking fd is served by the runtime's poller, so Read
		// parks the goroutine instead of a thread, and Close wakes it.
		f:      os.NewFile(uintptr(fd), "inotify"),
		wake:   make(chan struct{}, 1),
		errc:   make(chan error, 1),
		exited: make(chan struct{}),
	}
	for _, n := range names {
		w.names = append(w.names, []byte(n))
	}
	go w.run()
	return w, nil
}

func (w *watcher) run() {
	defer close(w.exited)
	buf := make([]byte, 16<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.errc <- errdefs.Unavailable("follow log: read inotify events: %v", err)
			}
			return
		}
		if w.relevant(buf[:n]) {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// relevant reports whether a batch of inotify events concerns one of the
// watched names, or may have lost events (queue overflow).
func (w *watcher) relevant(events []byte) bool {
	for len(events) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(events[4:8])
		nameLen := int(binary.NativeEndian.Uint32(events[12:16]))
		end := min(unix.SizeofInotifyEvent+nameLen, len(events))
		name := bytes.TrimRight(events[unix.SizeofInotifyEvent:end], "\x00")
		events = events[end:]
		if mask&unix.IN_Q_OVERFLOW != 0 {
			return true
		}
		for _, n := range w.names {
			if bytes.Equal(name, n) {
				return true
			}
		}
	}
	return false
}

func (w *watcher) close() {
	w.f.Close()
	<-w.exited
}
