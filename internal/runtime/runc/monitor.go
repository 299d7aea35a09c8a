package runc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// monitorGone returns a channel closed when the container's conmon has
// exited (at once if it no longer runs), and a function releasing the
// watch. It uses a pidfd in Go's poller, so a waiting caller holds no
// thread. If the monitor's pid cannot be told, the channel never closes.
func (r *Runtime) monitorGone(id string) (<-chan struct{}, func()) {
	gone := make(chan struct{})
	pid, err := readPid(filepath.Join(r.containerDir(id), "conmon.pid"))
	if err != nil {
		return gone, func() {}
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		close(gone)
		return gone, func() {}
	}
	if err != nil {
		return gone, func() {}
	}
	// The pid may have been reused since conmon wrote it: it must still
	// be conmon for this container.
	if !isMonitorOf(pid, id) {
		unix.Close(fd)
		close(gone)
		return gone, func() {}
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return gone, func() {}
	}
	go func() {
		first := true
		err := rc.Read(func(fd uintptr) bool {
			if first {
				first = false
				n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
				return n > 0
			}
			return true // woken: the pidfd is readable, the process exited
		})
		if err == nil {
			close(gone)
		}
	}()
	return gone, func() { f.Close() }
}

// monitorAlive reports whether the container's conmon still runs.
func (r *Runtime) monitorAlive(id string) bool {
	pid, err := readPid(filepath.Join(r.containerDir(id), "conmon.pid"))
	return err == nil && isMonitorOf(pid, id)
}

// isMonitorOf reports whether pid is conmon running container id.
func isMonitorOf(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("\x00-c\x00"+id+"\x00"))
}
