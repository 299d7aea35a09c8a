package ingress

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"

	"skiff.dev/skiff/api/errdefs"
)

// ServeTLS serves the same routes as Serve over TLS on ln, a second
// listener, and owns ln from then on (Shutdown and Close stop it too).
// conf gives the certificates (its GetCertificate, typically, answers by
// the client's server name); HTTP/2 and HTTP/1.1 are offered by ALPN.
// Requests arriving there carry X-Forwarded-Proto "https", and from then
// on routes with RedirectHTTPS answer plain HTTP requests with a 308 to
// ln's port.
func (p *Proxy) ServeTLS(ln net.Listener, conf *tls.Config) error {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.tlsSrv != nil {
		return errdefs.Conflict("ingress: already serving TLS")
	}
	select {
	case <-p.closed:
		return errdefs.Conflict("ingress: closed; create a new one")
	default:
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Handler:           p,
		Protocols:         &protos,
		TLSConfig:         conf.Clone(),
		ReadHeaderTimeout: p.cfg.ReadHeaderTimeout,
		IdleTimeout:       p.cfg.ClientIdleTimeout,
		ErrorLog:          p.debugLog,
	}
	if srv.TLSConfig.MinVersion == 0 {
		srv.TLSConfig.MinVersion = tls.VersionTLS12
	}
	p.tlsSrv = srv
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		p.tlsPort.Store(int32(a.Port))
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("ingress stopped serving TLS", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// tlsServer returns ServeTLS's server, or nil.
func (p *Proxy) tlsServer() *http.Server {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	return p.tlsSrv
}

// ServesHost reports whether a route serves host (matched as requests'
// hosts are: case-insensitive, port ignored, any path) to the client at
// remote ("ip:port"; internal routes serve only local clients, as
// requests do), and the certificate files the first such route names,
// if any.
func (p *Proxy) ServesHost(host, remote string) (files *TLSFiles, ok bool) {
	local := -1 // not asked yet
	for _, rt := range p.snap.Load().hosts[requestHost(host)] {
		if rt.internal {
			if local < 0 {
				local = 0
				if p.local(remote) {
					local = 1
				}
			}
			if local == 0 {
				continue
			}
		}
		if rt.tls != nil {
			return rt.tls, true
		}
		ok = true
	}
	return nil, ok
}

// redirectHTTPS answers r with a permanent redirect (308, the method
// kept) to the same URL over HTTPS on port.
func redirectHTTPS(w http.ResponseWriter, r *http.Request, host string, port int) {
	u := "https://" + host
	if port != 443 {
		u = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	}
	http.Redirect(w, r, u+r.URL.RequestURI(), http.StatusPermanentRedirect)
}
