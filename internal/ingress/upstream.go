package ingress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// upstream is the pool of kept-alive HTTP/1.1 connections the fast path
// (see fastpath.go) uses to reach one replica. Connections are used by
// one request at a time, in the request's goroutine: no reader or writer
// goroutine per connection, no channel hand-off per request, which is
// where http.Transport spends most of its time on small requests.
//
// The pool is a LIFO stack under a mutex held for a push or a pop: the
// most recently used connections stay warm, the others age at the bottom
// and are closed after idleTimeout by a timer armed only while
// connections are idle.
type upstream struct {
	addr        string
	dialer      *net.Dialer
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	reaper *time.Timer
	closed bool
}

// upConn is one connection to a replica.
type upConn struct {
	nc       net.Conn
	raw      syscall.RawConn // nil when the conn offers none
	out      heldConn        // nc, holding a request for the response's read
	lr       limitedConn
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
	reused   bool
	deadline time.Time // the read deadline armed on nc (see lazyDeadline)

	peek      func(fd uintptr) // c.peekFD, for quiet
	peekBuf   [1]byte
	peekQuiet bool
}

// setReadDeadline bounds the wait for the response of a request that must
// end by t, lazily (see lazyDeadline).
func (c *upConn) setReadDeadline(t time.Time, timeout time.Duration) {
	if t2, ok := lazyDeadline(c.deadline, t, timeout); ok {
		c.nc.SetReadDeadline(t2)
		c.deadline = t2
	}
}

// limitedConn reads from a connection with a budget, so a replica cannot
// make the proxy buffer an endless response header.
type limitedConn struct {
	nc net.Conn
	n  int64
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.nc.Read(p)
	l.n -= int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("response header too large")

const (
	maxResponseHeaderBytes = 1 << 20
	upReadBufferSize       = 8 << 10
	upWriteBufferSize      = 4 << 10
)

// get returns an idle connection, or dials a new one. Every idle
// connection is checked, without blocking, for a close by the replica or
// bytes it sent unasked (a body after a HEAD response, a second
// response): such a connection is closed, never used, since those bytes
// would be read as the answer to the next request.
func (u *upstream) get(ctx context.Context) (*upConn, error) {
	for {
		u.mu.Lock()
		n := len(u.idle)
		if n == 0 {
			u.mu.Unlock()
			break
		}
		c := u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		u.mu.Unlock()
		if time.Since(c.idleFrom) > u.idleTimeout || !c.quiet() {
			c.nc.Close()
			continue
		}
		c.reused = true
		return c, nil
	}
	return u.dial(ctx)
}

// dial opens a new connection to the replica.
func (u *upstream) dial(ctx context.Context) (*upConn, error) {
	nc, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, err
	}
	c := &upConn{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.out = heldConn{Conn: nc, raw: c.raw}
	c.peek = c.peekFD
	c.lr.nc = &c.out
	c.br = bufio.NewReaderSize(&c.lr, upReadBufferSize)
	c.bw = bufio.NewWriterSize(&c.out, upWriteBufferSize)
	return c, nil
}

// put returns a connection whose last response was read in full. A
// connection holding bytes beyond that response, or a request that was
// never sent, is closed instead: those bytes are not the answer to any
// request the pool will send. Its read deadline is left as the last
// request set it: the next request sets its own.
func (u *upstream) put(c *upConn) {
	if c.br.Buffered() > 0 || len(c.out.pending) > 0 {
		c.nc.Close()
		return
	}
	c.idleFrom = time.Now()
	u.mu.Lock()
	if u.closed || len(u.idle) >= u.maxIdle {
		u.mu.Unlock()
		c.nc.Close()
		return
	}
	u.idle = append(u.idle, c)
	if u.reaper == nil {
		u.reaper = time.AfterFunc(u.idleTimeout, u.reap)
	}
	u.mu.Unlock()
}

// reap closes the connections idle for longer than idleTimeout.
func (u *upstream) reap() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reaper = nil
	now := time.Now()
	i := 0
	for i < len(u.idle) && now.Sub(u.idle[i].idleFrom) > u.idleTimeout {
		u.idle[i].nc.Close()
		i++
	}
	rest := copy(u.idle, u.idle[i:])
	clear(u.idle[rest:])
	u.idle = u.idle[:rest]
	if len(u.idle) > 0 {
		u.reaper = time.AfterFunc(u.idleTimeout-now.Sub(u.idle[0].idleFrom)+time.Millisecond, u.reap)
	}
}

// closeIdle closes the idle connections; with final, the pool also closes
// those returned later.
func (u *upstream) closeIdle(final bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.idle {
		c.nc.Close()
	}
	clear(u.idle)
	u.idle = u.idle[:0]
	if final {
		u.closed = true
	}
}

// quiet reports whether an idle connection is fit to carry a request:
// nothing buffered, no held write, and a non-blocking peek at the socket
// finds neither bytes nor a close or reset by the replica. The peek is
// made through Control, not Read, so that the read deadline the last
// request left (possibly past) neither fails it nor needs re-arming: one
// recvfrom that returns EAGAIN, no allocation.
func (c *upConn) quiet() bool {
	if c.br.Buffered() > 0 || len(c.out.pending) > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	c.peekQuiet = false
	if err := c.raw.Control(c.peek); err != nil {
		return false
	}
	return c.peekQuiet
}

// peekFD peeks at the socket for quiet; c.peek holds it, bound once per
// connection. MSG_DONTWAIT never blocks: a raw system call will do.
func (c *upConn) peekFD(fd uintptr) {
	for {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		// Bytes nobody asked for, a close (0 bytes) or a reset: only
		// EAGAIN means nothing happened.
		c.peekQuiet = errno == syscall.EAGAIN
		return
	}
}

// nothingReceived reports whether the replica sent no byte since
// beginHeader: a failure then means it had closed the kept-alive
// connection before the request arrived.
func (c *upConn) nothingReceived() bool {
	return c.lr.n == maxResponseHeaderBytes && c.br.Buffered() == 0
}

// beginHeader limits how much the next response header may read.
func (c *upConn) beginHeader() { c.lr.n = maxResponseHeaderBytes }

// endHeader lifts the limit for the body.
func (c *upConn) endHeader() { c.lr.n = math.MaxInt64 }

var _ io.Reader = (*limitedConn)(nil)
