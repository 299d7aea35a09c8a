package ingress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// Start listens on the configured address and serves HTTP/1.1 and
// cleartext HTTP/2 (prior knowledge) there in the background until
// Shutdown or Close. ctx bounds only the listen.
func (p *Proxy) Start(ctx context.Context) error {
	ln, err := Listen(ctx, p.cfg.Addr)
	if err != nil {
		return err
	}
	if err := p.Serve(ln); err != nil {
		ln.Close()
		return err
	}
	return nil
}

// Listen opens the TCP listener an ingress at addr serves, for Serve.
// Listening apart from serving lets a daemon bind the port (or receive it
// from the process before it) and accept only once its routes are in.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, errdefs.Unavailable("ingress: listen on %s: %w (is another server using the port? set another ingress address)", addr, err)
	}
	return ln, nil
}

// Serve serves on ln, as Start does on the listener it opens, and owns
// ln from then on (Shutdown and Close close it). Connections waiting in
// ln's queue are accepted from now on, so a listener inherited from
// another process loses none.
func (p *Proxy) Serve(ln net.Listener) error {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.std != nil {
		return errdefs.Conflict("ingress: already started on %s", p.ln.Addr())
	}
	select {
	case <-p.closed:
		return errdefs.Conflict("ingress: closed; create a new one")
	default:
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	p.std = &stdServer{
		srv: &http.Server{
			Handler:           p,
			Protocols:         &protos,
			ReadHeaderTimeout: p.cfg.ReadHeaderTimeout,
			IdleTimeout:       p.cfg.ClientIdleTimeout,
			ErrorLog:          p.debugLog,
		},
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
		addr:  ln.Addr(),
	}
	p.ln = ln
	var stdLn net.Listener = p.std
	if p.noFront {
		stdLn = ln
	} else {
		p.acceptWG.Add(1)
		go p.frontAccept(ln, nil, p.std)
	}
	go func(srv *http.Server) {
		if err := srv.Serve(stdLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("ingress stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}(p.std.srv)
	return nil
}

// Addr returns the address Start listens on, or nil before Start.
func (p *Proxy) Addr() net.Addr {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Shutdown stops accepting connections, answers held requests with 503,
// and waits for proxied requests to finish until ctx is done (then it
// closes the remaining connections and returns ctx's error).
func (p *Proxy) Shutdown(ctx context.Context) error {
	stds := p.stopAccepting()
	if len(stds) == 0 {
		return nil
	}
	frontDone := make(chan struct{})
	go func() { p.connsWG.Wait(); close(frontDone) }()
	stdDone := make(chan error, len(stds))
	for _, std := range stds {
		go func() {
			err := std.srv.Shutdown(ctx)
			std.Close()
			// Shutdown reports the close of a listener we closed
			// above when Serve had not yet noticed it: not a failure.
			if err != nil && !errors.Is(err, net.ErrClosed) {
				std.srv.Close()
			} else {
				err = nil
			}
			stdDone <- err
		}()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		p.closeIdleFront()
		select {
		case <-frontDone:
			break wait
		case <-tick.C:
		case <-ctx.Done():
			err = ctx.Err()
			p.closeFront()
			<-frontDone
			break wait
		}
	}
	for range stds {
		if serr := <-stdDone; err == nil {
			err = serr
		}
	}
	p.closeIdle()
	return err
}

// stopAccepting marks the proxy closed and closes its listeners; it
// returns the servers to stop (none if neither Serve nor ServeTLS ran).
func (p *Proxy) stopAccepting() []*stdServer {
	p.closeOnce.Do(func() { close(p.closed) })
	p.srvMu.Lock()
	var stds []*stdServer
	for _, s := range []struct {
		std *stdServer
		ln  net.Listener
	}{{p.std, p.ln}, {p.tlsStd, p.tlsLn}} {
		if s.std != nil {
			s.ln.Close()
			stds = append(stds, s.std)
		}
	}
	p.srvMu.Unlock()
	// A connection accepted before the close is tracked by its accept
	// loop, and served: none is dropped unanswered.
	p.acceptWG.Wait()
	p.connsMu.Lock()
	p.frontClosed = true
	if stds != nil {
		select {
		case <-p.lnClosed:
		default:
			close(p.lnClosed)
		}
	}
	p.connsMu.Unlock()
	p.frontClosing.Store(true)
	return stds
}

// Close stops the listeners and closes every connection at once, cutting
// requests in flight; held requests get 503.
func (p *Proxy) Close() error {
	stds := p.stopAccepting()
	if len(stds) == 0 {
		return nil
	}
	p.closeFront()
	var err error
	for _, std := range stds {
		if serr := std.srv.Close(); err == nil {
			err = serr
		}
		std.Close()
	}
	p.connsWG.Wait()
	p.closeIdle()
	return err
}

// closeIdleFront closes the front connections waiting for a request.
func (p *Proxy) closeIdleFront() {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	for c := range p.conns {
		if !c.served.Load() {
			// Not a request yet: the client may be sending its first.
			// It has the header timeout to do so, and is served.
			if c.state.CompareAndSwap(connIdle, connClosing) {
				c.nc.SetReadDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
			}
			continue
		}
		if c.state.CompareAndSwap(connIdle, connClosing) || c.state.Load() == connClosing {
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// closeFront closes every front connection.
func (p *Proxy) closeFront() {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	for c := range p.conns {
		c.state.Store(connClosing)
		c.nc.Close()
		c.clientGone() // aborts its request to a replica
	}
}

func (p *Proxy) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, es := range p.endpoints {
		es.closeIdleConns(true)
	}
}
