package ingress

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// heldConn is a connection one of whose writes can be held back and sent
// by the next Read, from inside that read's wait for the peer (a
// syscall.RawConn read): the request to a replica just before reading its
// response, the response to a client just before reading its next
// request. A plain write-then-read costs a read that finds nothing yet
// (EAGAIN) before the wait; here the wait starts right after the write,
// which saves that system call on both sides of every proxied request.
//
// A heldConn is used by one goroutine at a time, like the bufio reader
// and writer around it.
type heldConn struct {
	net.Conn
	raw     syscall.RawConn // nil: nothing is held
	hold    bool            // the next Write is held
	pending []byte          // the held write, not sent yet
}

// Write holds p when hold is set (and clears hold), after any write
// still held; otherwise it sends what is held, then p.
func (h *heldConn) Write(p []byte) (int, error) {
	if h.hold && h.raw != nil {
		h.hold = false
		h.pending = append(h.pending, p...)
		return len(p), nil
	}
	if err := h.flush(); err != nil {
		return 0, err
	}
	return h.write(p)
}

// flush sends a held write, if any.
func (h *heldConn) flush() error {
	if len(h.pending) == 0 {
		return nil
	}
	_, err := h.write(h.pending)
	h.pending = h.pending[:0]
	return err
}

// write sends p. The socket is non-blocking, so a write never blocks in
// the kernel: it is made as a raw system call, which the Go scheduler
// does not see (see rawWrite). On a full socket buffer it waits, under
// the connection's write deadline, as net.Conn's Write does.
func (h *heldConn) write(p []byte) (int, error) {
	if h.raw == nil {
		return h.Conn.Write(p)
	}
	n := 0
	var werr error
	err := h.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			w, errno := rawWrite(fd, p[n:])
			switch errno {
			case 0:
				n += w
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				werr = os.NewSyscallError("write", errno)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// Read sends a held write, then waits for the peer and reads.
func (h *heldConn) Read(p []byte) (int, error) {
	if h.raw == nil {
		return h.Conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n       int
		rerr    syscall.Errno
		werr    error
		sent    = len(h.pending) == 0
		partial bool
	)
	err := h.raw.Read(func(fd uintptr) bool {
		if !sent {
			sent = true
			for len(h.pending) > 0 {
				w, errno := rawWrite(fd, h.pending)
				switch errno {
				case 0:
					h.pending = h.pending[w:]
					continue
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					// The socket buffer is full: the rest goes out
					// through the connection's own Write.
					partial = true
					return true
				}
				werr = os.NewSyscallError("write", errno)
				h.pending = h.pending[:0]
				return true
			}
			h.pending = h.pending[:0]
			return false // wait until the peer answers
		}
		for {
			n, rerr = rawRead(fd, p)
			if rerr != syscall.EINTR {
				break
			}
		}
		return rerr != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case werr != nil:
		return 0, werr
	case partial:
		if err := h.flush(); err != nil {
			return 0, err
		}
		return h.Read(p)
	case rerr != 0:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawRead and rawWrite are read(2) and write(2) as raw system calls: on
// a non-blocking socket they return at once, so they skip the scheduler's
// bookkeeping of a system call that may block (entersyscall and
// exitsyscall). That bookkeeping is not free where system calls are slow,
// as on the project's VM (a bare getppid takes 3-6 µs): a goroutine that
// stays in one for a scheduler tick (20 µs) has its P taken and handed to
// another thread, and must get one back on return, which costs futex
// wake-ups and thread switches on every proxied request.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
