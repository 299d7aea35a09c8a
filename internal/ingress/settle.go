package ingress

import (
	"context"
	"net"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// settledConn is a connection of a replica's http.Transport (the path of
// requests with bodies). It closes a window in net/http
// (golang.org/issue/31259): the Transport puts a connection back in its
// pool as soon as a response body is read, and only then its read loop
// looks at what follows; bytes the replica sent past the response (a
// second response in the same write) are seen as unsolicited and close
// the connection — unless a request took the connection first, which
// then gets those bytes as its answer. A request that takes a reused
// connection waits (settle) until the read loop has looked: it is
// reading the socket again, so nothing was left over, or it closed the
// connection, and the Transport sends the request on a new one (or
// answers 502 for a body it cannot send twice).
type settledConn struct {
	net.Conn
	reading atomic.Bool   // a Read is waiting on the socket
	closed  atomic.Bool   // Close was called
	wake    chan struct{} // a token when reading or closed is set
}

func newSettledConn(c net.Conn) *settledConn {
	return &settledConn{Conn: c, wake: make(chan struct{}, 1)}
}

func (c *settledConn) Read(b []byte) (int, error) {
	c.reading.Store(true)
	c.signal()
	n, err := c.Conn.Read(b)
	c.reading.Store(false)
	return n, err
}

func (c *settledConn) Close() error {
	c.closed.Store(true)
	c.signal()
	return c.Conn.Close()
}

func (c *settledConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// settleLimit bounds the wait for the read loop: it is normally a
// goroutine switch away.
const settleLimit = 100 * time.Millisecond

// settle waits, at most limit, until the Transport's read loop is
// reading from c again or c is closed. It reports whether it saw either.
func (c *settledConn) settle(limit time.Duration) bool {
	if c.reading.Load() || c.closed.Load() {
		return true
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case <-c.wake:
			if c.reading.Load() || c.closed.Load() {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}

// settleTrace makes a request wait for a reused connection to settle.
var settleTrace = &httptrace.ClientTrace{
	GotConn: func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*settledConn); ok && info.Reused {
			c.settle(settleLimit)
		}
	},
}

// dialSettled dials a connection for a replica's Transport.
func (p *Proxy) dialSettled(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return newSettledConn(c), nil
}
