package ingress

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// replayConn is a connection handed to net/http: it reads the replayed
// bytes first, then the connection.
type replayConn struct {
	net.Conn
	replay []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.replay) > 0 {
		n := copy(p, r.replay)
		r.replay = r.replay[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// stdServer is the net/http server the front hands connections to; it
// accepts them from a channel.
type stdServer struct {
	srv    *http.Server
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
	addr   net.Addr
	closed atomic.Bool
}

// give hands c to the server; false when it is closed.
func (s *stdServer) give(c net.Conn) bool {
	if s.closed.Load() {
		return false
	}
	select {
	case s.conns <- c:
		return true
	case <-s.done:
		return false
	}
}

// Accept implements net.Listener for http.Server.Serve.
func (s *stdServer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (s *stdServer) Close() error {
	s.once.Do(func() { s.closed.Store(true); close(s.done) })
	return nil
}

// Addr returns the front's address.
func (s *stdServer) Addr() net.Addr { return s.addr }

var _ net.Listener = (*stdServer)(nil)

// tlsReplayConn is a replayConn over TLS: net/http takes the connection
// state from it (ConnectionState), so its requests carry Request.TLS.
type tlsReplayConn struct{ replayConn }

// ConnectionState returns the TLS connection's state.
func (r *tlsReplayConn) ConnectionState() tls.ConnectionState {
	return r.Conn.(*tls.Conn).ConnectionState()
}
