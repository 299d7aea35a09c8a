package ingress

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
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
	if p.tlsStd != nil {
		return errdefs.Conflict("ingress: already serving TLS")
	}
	select {
	case <-p.closed:
		return errdefs.Conflict("ingress: closed; create a new one")
	default:
	}
	conf = conf.Clone()
	if conf.MinVersion == 0 {
		conf.MinVersion = tls.VersionTLS12
	}
	if !slices.Contains(conf.NextProtos, "h2") {
		conf.NextProtos = append([]string{"h2"}, conf.NextProtos...)
	}
	if !slices.Contains(conf.NextProtos, "http/1.1") {
		conf.NextProtos = append(conf.NextProtos, "http/1.1")
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	std := &stdServer{
		srv: &http.Server{
			Handler:           p,
			Protocols:         &protos,
			TLSConfig:         conf.Clone(), // lists "h2": Serve sets HTTP/2 up
			ReadHeaderTimeout: p.cfg.ReadHeaderTimeout,
			IdleTimeout:       p.cfg.ClientIdleTimeout,
			ErrorLog:          p.debugLog,
		},
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
		addr:  ln.Addr(),
	}
	p.tlsStd, p.tlsLn = std, ln
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		p.tlsPort.Store(int32(a.Port))
	}
	// The front serves HTTP/1.1 over TLS as it serves plain HTTP; it
	// hands HTTP/2 connections, and those it does not serve, to std.
	var stdLn net.Listener = std
	if p.noFront {
		stdLn = tls.NewListener(ln, conf)
	} else {
		p.acceptWG.Add(1)
		go p.frontAccept(ln, conf, std)
	}
	go func() {
		if err := std.srv.Serve(stdLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("ingress stopped serving TLS", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
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
