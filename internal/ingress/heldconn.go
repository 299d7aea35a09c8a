package ingress

import (
	"io"
	"net"
	"os"
	"syscall"
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
	return h.Conn.Write(p)
}

// flush sends a held write, if any.
func (h *heldConn) flush() error {
	if len(h.pending) == 0 {
		return nil
	}
	_, err := h.Conn.Write(h.pending)
	h.pending = h.pending[:0]
	return err
}

// Read sends a held write, then waits for the peer and reads.
func (h *heldConn) Read(p []byte) (int, error) {
	if len(h.pending) == 0 || len(p) == 0 {
		return h.Conn.Read(p)
	}
	var (
		n       int
		rerr    error
		sent    bool
		partial bool
	)
	err := h.raw.Read(func(fd uintptr) bool {
		if !sent {
			sent = true
			for len(h.pending) > 0 {
				w, err := syscall.Write(int(fd), h.pending)
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					// The socket buffer is full: the rest goes out
					// through the connection's own Write.
					partial = true
					return true
				case err != nil:
					rerr = os.NewSyscallError("write", err)
					h.pending = h.pending[:0]
					return true
				}
				h.pending = h.pending[w:]
			}
			h.pending = h.pending[:0]
			return false // wait until the peer answers
		}
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				break
			}
		}
		return rerr != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case partial:
		if err := h.flush(); err != nil {
			return 0, err
		}
		return h.Conn.Read(p)
	case rerr != nil:
		if _, ok := rerr.(*os.SyscallError); !ok {
			rerr = os.NewSyscallError("read", rerr)
		}
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
