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
	// staleCheckAfter is how long a connection may sit idle before it is
	// checked for a close by the replica before reuse.
	staleCheckAfter = time.Second
)

// get returns an idle connection, or dials a new one. With check, an
// idle connection is checked for a close by the replica however briefly
// it was idle: for requests that cannot be retried.
func (u *upstream) get(ctx context.Context, check bool) (*upConn, error) {
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
		if idle := time.Since(c.idleFrom); idle > u.idleTimeout || ((check || idle > staleCheckAfter) && c.closedByPeer()) {
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
	c.lr.nc = &c.out
	c.br = bufio.NewReaderSize(&c.lr, upReadBufferSize)
	c.bw = bufio.NewWriterSize(&c.out, upWriteBufferSize)
	return c, nil
}

// put returns a connection whose last response was read in full. Its
// read deadline is left as the last request set it: the next request sets
// its own, and closedByPeer clears it.
func (u *upstream) put(c *upConn) {
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

// closedByPeer reports whether the replica closed (or reset) the idle
// connection, or sent something unasked, with a non-blocking peek.
func (c *upConn) closedByPeer() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	if c.raw == nil {
		return false
	}
	c.nc.SetReadDeadline(time.Time{}) // a past deadline fails the read below
	c.deadline = time.Time{}
	var buf [1]byte
	gone := false
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = n > 0 || (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		return true
	})
	return gone || err != nil
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
