package ingress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The front is the ingress's own HTTP/1.1 server loop for the common
// case: keep-alive connections carrying requests without a body or an
// upgrade. Per request it does what net/http's server does minus the
// background read of the client connection and its per-request
// goroutine hand-offs, which on a small proxied request cost about a
// quarter of the CPU (see the README's figures).
//
// It serves a connection only as long as every request on it is plain:
// the first request that is not (a body, an upgrade, Expect, HTTP/1.0 or
// HTTP/2, anything malformed or unusual) is handed, with the connection
// and every byte read since the request began, to a net/http server that
// serves the connection from then on. So every case the front does not
// handle is handled by net/http, which also answers malformed requests.

// frontConn is one client connection served by the front.
type frontConn struct {
	p      *Proxy
	nc     net.Conn // the client connection: TCP, or TLS over wire
	raw    syscall.RawConn
	out    heldConn  // nc, holding the last answer for the next read
	wire   *heldConn // the heldConn on the socket: &out, or the one under TLS
	std    *stdServer
	remote string
	tls    *tls.ConnectionState // nil on plain HTTP
	rec    recorder
	br     *bufio.Reader
	bw     *bufio.Writer
	res    frontResponse

	ctx    context.Context // canceled when the client is seen gone, or the connection ends
	cancel context.CancelFunc

	idleDeadline time.Time // the read deadline armed for idle waits
	state        atomic.Int32
	// served is set once the connection's first request is read; a
	// shutdown lets a connection that has none yet send it.
	served atomic.Bool

	watch     *time.Timer // starts watchClient when a request lasts
	watchDone sync.WaitGroup

	// abortMu guards the replica connection of the request in flight,
	// which watchClient aborts when the client leaves.
	abortMu  sync.Mutex
	upstream *upConn
	gone     bool

	writeDeadline time.Time // the write deadline armed on nc; zero: none
}

// setWriteDeadline bounds the writes of the request's response by the
// request's deadline t, or up to timeout/32 later (see lazyDeadline): a deadline
// armed for an earlier request is kept when it is in that range, since
// re-arming the timer on every request costs more than the rest of the
// bookkeeping. serveRequest lifts an expired one.
func (c *frontConn) setWriteDeadline(t time.Time, timeout time.Duration) {
	if t2, ok := lazyDeadline(c.writeDeadline, t, timeout); ok {
		c.nc.SetWriteDeadline(t2)
		c.writeDeadline = t2
	}
}

// setUpstream records the replica connection the request uses (nil when
// done with it). It reports false when the client has left: the caller
// must not use, or must not reuse, the connection.
func (c *frontConn) setUpstream(u *upConn) bool {
	c.abortMu.Lock()
	defer c.abortMu.Unlock()
	c.upstream = u
	if c.gone && u != nil {
		u.nc.SetDeadline(aLongTimeAgo)
	}
	return !c.gone
}

// clientGone cancels the request in flight: its context, and its
// exchange with a replica.
func (c *frontConn) clientGone() {
	c.cancel() // first: the aborted exchange must see it
	c.abortMu.Lock()
	c.gone = true
	if c.upstream != nil {
		c.upstream.nc.SetDeadline(aLongTimeAgo)
	}
	c.abortMu.Unlock()
}

// Connection states, for Shutdown.
const (
	connIdle int32 = iota
	connActive
	connClosing
)

// clientWatchAfter is how long a request may last before the front starts
// watching its client connection for a close, to cancel the request.
const clientWatchAfter = 500 * time.Millisecond

// recorder reads from a connection and, while recording, keeps a copy of
// what it reads, so a request can be replayed to net/http.
type recorder struct {
	nc    net.Conn
	on    bool
	buf   []byte
	limit int   // read budget while recording; bounds the header size
	err   error // the last read error while recording
}

func (r *recorder) Read(p []byte) (int, error) {
	if !r.on {
		return r.nc.Read(p)
	}
	if r.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if len(p) > r.limit {
		p = p[:r.limit]
	}
	n, err := r.nc.Read(p)
	r.limit -= n
	r.buf = append(r.buf, p[:n]...)
	if err != nil {
		r.err = err
	}
	return n, err
}

// frontAccept serves the connections ln accepts, each in its own
// goroutine, over TLS with conf when it is not nil, handing those the
// front does not serve to std, until ln is closed. Each connection is
// tracked before the next Accept, so Shutdown knows every connection
// accepted before the close.
func (p *Proxy) frontAccept(ln net.Listener, conf *tls.Config, std *stdServer) {
	defer p.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("ingress: accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := p.newFrontConn(nc, conf, std)
		if !p.trackConn(c, true) {
			c.cancel()
			nc.Close()
			continue
		}
		go c.run(conf != nil)
	}
}

func (p *Proxy) trackConn(c *frontConn, add bool) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if add {
		if p.frontClosed {
			return false
		}
		p.conns[c] = struct{}{}
		p.connsWG.Add(1)
		return true
	}
	delete(p.conns, c)
	p.connsWG.Done()
	return true
}

// newFrontConn returns the front's connection over nc, TLS with conf
// when it is not nil, handed to std when the front does not serve it.
func (p *Proxy) newFrontConn(nc net.Conn, conf *tls.Config, std *stdServer) *frontConn {
	c := &frontConn{p: p, nc: nc, std: std, remote: nc.RemoteAddr().String()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.out = heldConn{Conn: nc, raw: c.raw}
	c.wire = &c.out
	if conf != nil {
		// The answers are held under TLS, as encrypted records: the
		// connection's own heldConn only passes writes on.
		c.wire = &heldConn{Conn: nc, raw: c.raw}
		c.nc = tls.Server(c.wire, conf)
		c.out = heldConn{Conn: c.nc}
	}
	c.rec.nc = &c.out
	c.br = bufio.NewReaderSize(&c.rec, 4<<10)
	c.bw = bufio.NewWriterSize(&c.out, 4<<10)
	c.res.c = c
	c.res.h = make(http.Header)
	return c
}

// run serves the connection, tracked by trackConn, after a TLS handshake
// if overTLS, until it ends or goes to net/http.
func (c *frontConn) run(overTLS bool) {
	p := c.p
	handedOff := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			p.log.Error("ingress: panic serving a request", "remote", c.remote, "panic", fmt.Sprint(err), "stack", string(buf))
		}
		if c.watch != nil {
			c.watch.Stop()
		}
		c.cancel()
		if !handedOff {
			c.flushAnswers()
			if p.frontClosing.Load() {
				c.lingerClose()
			} else {
				c.nc.Close()
			}
		}
		p.trackConn(c, false)
	}()
	if overTLS {
		var ok bool
		if ok, handedOff = c.handshake(); !ok || handedOff {
			return
		}
	}
	handedOff = c.serve()
}

// handshake runs the TLS handshake, bounded by ReadHeaderTimeout as
// net/http bounds it. It reports whether it succeeded, and whether the
// connection went to net/http: every protocol but HTTP/1.1 (HTTP/2, the
// ACME TLS-ALPN challenge) is served there.
func (c *frontConn) handshake() (ok, handedOff bool) {
	tc := c.nc.(*tls.Conn)
	c.nc.SetDeadline(time.Now().Add(c.p.cfg.ReadHeaderTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		reason := err.Error()
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "client sent an HTTP request to an HTTPS server"
		}
		c.p.debugLog.Printf("http: TLS handshake error from %s: %s", c.remote, reason)
		return false, false
	}
	c.nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	switch st.NegotiatedProtocol {
	case "", "http/1.1":
		c.tls = &st
		return true, false
	}
	if !c.std.give(tc) {
		return false, false
	}
	return true, true
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// serve runs the request loop; it reports whether it handed the
// connection to net/http.
func (c *frontConn) serve() (handedOff bool) {
	p := c.p
	for {
		c.state.Store(connIdle)
		if p.frontClosing.Load() && c.served.Load() && !c.pending() {
			return false
		}
		now := time.Now()
		if c.idleDeadline.Sub(now) < p.cfg.ClientIdleTimeout/2 {
			// Re-armed lazily: an idle connection is closed between
			// half the idle timeout and the whole of it.
			c.idleDeadline = now.Add(p.cfg.ClientIdleTimeout)
			c.nc.SetReadDeadline(c.idleDeadline)
			if c.state.Load() == connClosing {
				// Shutdown's deadline may have been overwritten: a
				// served connection ends here, a new one gets the
				// header timeout for its first request, as
				// closeIdleFront gives it.
				if c.served.Load() {
					return false
				}
				c.nc.SetReadDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
			}
		}
		if _, err := c.br.Peek(1); err != nil {
			// Shutdown woke an idle connection: a request the client had
			// already sent is still served (closing the connection on it
			// would fail it), anything else ends here.
			if !p.frontClosing.Load() || !c.pending() {
				return false
			}
			c.state.Store(connActive)
			c.nc.SetReadDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
			if _, err := c.br.Peek(1); err != nil {
				return false
			}
		} else if !c.state.CompareAndSwap(connIdle, connActive) && !c.pending() {
			return false // Shutdown closed it
		}
		c.state.Store(connActive)
		c.served.Store(true)
		c.rec.buf = append(c.rec.buf[:0], peekBuffered(c.br)...)
		c.rec.on = true
		c.rec.limit = maxRequestHeaderBytes
		if !bytes.Contains(peekBuffered(c.br), []byte("\r\n\r\n")) {
			// The header is not all here yet: bound the wait for it.
			c.nc.SetReadDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
			c.idleDeadline = time.Time{}
		}
		c.rec.err = nil
		req, err := http.ReadRequest(c.br)
		c.rec.on = false
		if err != nil && (c.rec.err != nil || connGone(err)) {
			// Timed out, or the client left, mid-header. A read error
			// can come back as a malformed request (a partial request
			// line reads as a whole one): it must not be handed to
			// net/http, which would start a header timeout of its own.
			return false
		}
		if err != nil || !c.plain(req) {
			c.handOff()
			return true
		}
		if c.idleDeadline.IsZero() {
			c.idleDeadline = time.Now().Add(p.cfg.ClientIdleTimeout)
			c.nc.SetReadDeadline(c.idleDeadline)
		}
		if !c.serveRequest(req) {
			return false
		}
	}
}

// lingerClose closes a connection the ingress gives up while shutting
// down without resetting it: it sends its end first and reads what the
// client still sends for a moment, so a request that crossed the close
// meets an orderly end of stream (which clients retry on a reused
// connection), not a reset.
func (c *frontConn) lingerClose() {
	tcp := c.wire.Conn
	if c.tls != nil {
		c.nc.(*tls.Conn).CloseWrite() // close_notify
	}
	if tc, ok := tcp.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	c.nc.Close()
}

// flushAnswers sends the answers still buffered or held.
func (c *frontConn) flushAnswers() error {
	if err := c.out.flush(); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.wire.flush()
}

// pending reports, without blocking, whether the client has sent bytes
// not read yet.
func (c *frontConn) pending() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	if c.raw == nil {
		return false
	}
	var buf [1]byte
	n := 0
	c.raw.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

// connGone reports whether an error is the connection's (a read that
// failed, timed out or hit the end), not a malformed request's. Parse
// errors may look like network errors (*url.Error is a net.Error): only
// errors from the connection itself count.
func connGone(err error) bool {
	var oe *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &oe) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// maxRequestHeaderBytes bounds a request header read by the front, as
// net/http's DefaultMaxHeaderBytes does; a larger one is handed to
// net/http, which answers 431.
const maxRequestHeaderBytes = http.DefaultMaxHeaderBytes

// plain reports whether the front serves req itself: HTTP/1.1, no body,
// no upgrade or Expect, a single valid Host, valid header names and
// values. http.ReadRequest accepts names net/http's server refuses (a
// space before the colon: "Content-Length : 5"); such a request goes to
// net/http, which answers 400, and never to a replica (RFC 9112 §5.1).
func (c *frontConn) plain(req *http.Request) bool {
	if req.ProtoMajor != 1 || req.ProtoMinor != 1 || !fastPathOK(req) || req.Host == "" || !validHost(req.Host) {
		return false
	}
	if _, ok := req.Header["Expect"]; ok {
		return false
	}
	if _, ok := req.Header["Transfer-Encoding"]; ok {
		return false
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !validHeaderValue(v) {
				return false
			}
		}
	}
	return countHostHeaders(c.rec.buf) == 1
}

// countHostHeaders counts the Host lines of the raw request head.
func countHostHeaders(raw []byte) int {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return -1
	}
	head := raw[:end+2]
	n := 0
	for {
		i := bytes.IndexByte(head, '\n')
		if i < 0 || i+5 >= len(head) {
			return n
		}
		head = head[i+1:]
		if len(head) >= 5 && (head[0]|0x20) == 'h' && (head[1]|0x20) == 'o' && (head[2]|0x20) == 's' && (head[3]|0x20) == 't' && head[4] == ':' {
			n++
		}
	}
}

// validHost accepts the bytes RFC 3986 allows in a host and port.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control bytes other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// handOff gives the connection, with the bytes of the request being read,
// to the net/http server.
func (c *frontConn) handOff() {
	// Answers to earlier pipelined requests go first.
	if c.flushAnswers() != nil {
		c.nc.Close()
		return
	}
	replay := make([]byte, len(c.rec.buf))
	copy(replay, c.rec.buf)
	c.nc.SetReadDeadline(time.Time{})
	c.nc.SetWriteDeadline(time.Time{})
	var rc net.Conn = &replayConn{Conn: c.nc, replay: replay}
	if c.tls != nil {
		rc = &tlsReplayConn{replayConn{Conn: c.nc, replay: replay}}
	}
	if !c.std.give(rc) {
		c.nc.Close()
	}
}

// serveRequest answers one plain request; it reports whether the
// connection stays open for the next one.
func (c *frontConn) serveRequest(req *http.Request) bool {
	req.RemoteAddr = c.remote
	req.TLS = c.tls
	req = req.WithContext(c.ctx)
	w := &c.res
	w.reset(req)
	if c.p.frontClosing.Load() {
		w.closeAfter = true // the client opens its next request elsewhere
	}

	c.startWatch()
	c.p.ServeHTTP(w, req)
	c.stopWatch()

	w.finish()
	if w.err != nil {
		return false
	}
	if !c.writeDeadline.IsZero() && c.writeDeadline.Before(time.Now()) {
		// Only requests that reach a replica arm it.
		c.nc.SetWriteDeadline(time.Time{})
		c.writeDeadline = time.Time{}
	}
	if cap(c.rec.buf) > 64<<10 {
		c.rec.buf = nil // a huge header once is no reason to keep its buffer
	}
	if w.closeAfter || c.ctx.Err() != nil {
		c.bw.Flush()
		return false
	}
	// Answers to pipelined requests go out together. The last one is
	// held for the read of the next request, which sends it.
	if c.br.Buffered() == 0 {
		c.wire.hold = true
		err := c.bw.Flush()
		c.wire.hold = false
		if err != nil {
			return false
		}
	}
	return true
}

// startWatch arms the timer that watches the client of a long request.
func (c *frontConn) startWatch() {
	c.watchDone.Add(1)
	if c.watch == nil {
		c.watch = time.AfterFunc(clientWatchAfter, c.watchClient)
	} else {
		c.watch.Reset(clientWatchAfter)
	}
}

// stopWatch ends the watch of the request that just finished.
func (c *frontConn) stopWatch() {
	if c.watch.Stop() {
		c.watchDone.Done()
		return
	}
	// The watcher runs: wake it and wait for it.
	c.nc.SetReadDeadline(aLongTimeAgo)
	c.watchDone.Wait()
	c.idleDeadline = time.Now().Add(c.p.cfg.ClientIdleTimeout)
	c.nc.SetReadDeadline(c.idleDeadline)
}

// watchClient waits, without reading anything, until the client closes
// the connection (then it cancels the request), sends more (a pipelined
// request: nothing to learn) or stopWatch wakes it.
func (c *frontConn) watchClient() {
	defer c.watchDone.Done()
	if c.raw == nil || c.br.Buffered() > 0 {
		return
	}
	if c.tls != nil {
		// A TLS client says goodbye in a record (close_notify) before
		// it closes: read, as nothing else reads the connection while
		// a request without a body is served. What is read stays in
		// the buffer for the next request.
		if _, err := c.br.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.clientGone()
		}
		return
	}
	var buf [1]byte
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return rerr != syscall.EAGAIN
	})
	if err == nil && (n == 0 && rerr == nil || rerr != nil && rerr != syscall.EINTR) {
		c.clientGone()
	}
}

var _ io.Reader = (*recorder)(nil)
