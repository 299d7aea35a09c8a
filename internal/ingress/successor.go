package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

// A daemon hands its listeners over to a new process (see the daemon's
// upgrade.go): both accept on the same sockets until the old one shuts
// its proxy down. Requests the old proxy holds for a replica then can
// never be released there (its controllers are gone, no Update comes),
// and answering them 503 would fail them across a handover that is meant
// to fail none. HandOver makes Shutdown pass them on to the new process
// instead, through the listeners' own addresses, which only the new
// process accepts on once this one has closed its copies.

// successor is where held requests go once the proxy shuts down.
type successor struct {
	plain *httputil.ReverseProxy // to the plain listener's address
	tls   *httputil.ReverseProxy // to the TLS listener's, over TLS
}

// HandOver tells the proxy that another process serves its listeners from
// now on (it received them): from Shutdown on, a request held for a
// replica is passed on to that process, as it came (over TLS if it came
// over TLS, with its Host and body), instead of being answered 503. Call
// it before Shutdown. The requests passed on reach the replica with one
// more address in X-Forwarded-For: this proxy's, as the new process sees
// it.
func (p *Proxy) HandOver() {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	s := &successor{}
	if p.ln != nil {
		s.plain = p.passOn("http", p.ln.Addr().String())
	}
	if p.tlsLn != nil {
		s.tls = p.passOn("https", p.tlsLn.Addr().String())
	}
	p.succ.Store(s)
}

// passOn returns the handler that sends requests to the listener at addr,
// which the successor now accepts on; its certificate is not checked
// (the socket is this proxy's own, now the successor's).
func (p *Proxy) passOn(scheme, addr string) *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext:            p.dialer.DialContext,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	if scheme == "https" {
		// The handshake names the request's host, as its client's did,
		// so the successor finds the certificate; a connection serves
		// one request, as hosts differ.
		tr.DisableKeepAlives = true
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := p.dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			name, _ := ctx.Value(passOnHost{}).(string)
			tc := tls.Client(nc, &tls.Config{
				ServerName:         name,
				InsecureSkipVerify: true, // our own listener, see above
				NextProtos:         []string{"http/1.1"},
			})
			if err := tc.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = scheme
			pr.Out.URL.Host = addr
			pr.Out.Host = pr.In.Host
			if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: &p.bufs,
		ErrorLog:   p.debugLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rt := r.Context().Value(passOnKey{}).(*route)
			switch ctxErr := r.Context().Err(); {
			case errors.Is(ctxErr, context.DeadlineExceeded):
				writeError(w, http.StatusGatewayTimeout, rt.msgTimeout)
			case ctxErr != nil:
				// The client left; nobody reads an answer.
			default:
				p.log.Warn("ingress: a held request could not be passed on to the new daemon", "app", rt.app.name, "err", err)
				writeError(w, http.StatusServiceUnavailable, rt.msgShutdown)
			}
		},
	}
}

type (
	passOnKey  struct{} // the request's *route
	passOnHost struct{} // the request's host, for the TLS handshake
)

// passHeld passes a held request on to the successor once the proxy's
// listeners are closed; it reports false when there is no successor (the
// caller answers 503).
func (p *Proxy) passHeld(w http.ResponseWriter, r *http.Request, rt *route) bool {
	s := p.succ.Load()
	if s == nil {
		return false
	}
	h := s.plain
	if r.TLS != nil {
		h = s.tls
	}
	if h == nil {
		return false
	}
	// Until this proxy's copies of the listeners are closed it could
	// accept the request itself.
	<-p.lnClosed
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, passOnKey{}, rt)
	ctx = context.WithValue(ctx, passOnHost{}, requestHost(r.Host))
	h.ServeHTTP(w, r.WithContext(ctx))
	return true
}
