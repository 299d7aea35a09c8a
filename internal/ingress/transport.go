package ingress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"syscall"
)

// newTransport returns the connection pool of one replica: HTTP/1.1 with
// keep-alive, no compression, no proxy from the environment. One pool per
// replica lets Update close a removed replica's connections without
// touching the others', and keeps a reused address (a new replica given
// an old IP) from inheriting stale connections.
func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dialSettled,
		MaxIdleConnsPerHost:    p.cfg.MaxIdleConnsPerEndpoint,
		IdleConnTimeout:        p.cfg.IdleConnTimeout,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		ExpectContinueTimeout:  0, // forward Expect: 100-continue as is
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// reverseProxy returns the handler that proxies the route's requests to
// one endpoint.
func (p *Proxy) reverseProxy(app string, rt *route, es *endpointState) *httputil.ReverseProxy {
	addr := es.addr
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			// Out keeps the client's Host header. ReverseProxy dropped
			// the client's X-Forwarded-*; keep its X-Forwarded-For so
			// SetXForwarded appends to it.
			if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
		},
		// ReverseProxy clears the response header after each 1xx
		// answer: the close ServeHTTP asked for is asked again.
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode != http.StatusSwitchingProtocols && closeAfter(res.Request) {
				res.Header.Set("Connection", "close")
			}
			return nil
		},
		Transport:  es.transport,
		BufferPool: &p.bufs,
		ErrorLog:   p.debugLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// ReverseProxy wraps the body it was given: the context
			// carries it.
			if body, ok := r.Context().Value(timedBodyKey{}).(*timedBody); ok {
				if berr, stalled := body.failure(); berr != nil {
					p.clientBodyFailed(w, r, rt, berr, stalled)
					return
				}
			}
			switch ctxErr := r.Context().Err(); {
			case errors.Is(ctxErr, context.DeadlineExceeded):
				p.log.Warn("ingress: replica did not answer in time", "app", app, "endpoint", es.id, "timeout", rt.timeout)
				writeError(w, http.StatusGatewayTimeout, rt.msgTimeout)
			case ctxErr != nil:
				// The client left; nobody reads an answer.
			default:
				reason := failureReason(err)
				p.log.Warn("ingress: replica failed", "app", app, "endpoint", es.id, "addr", addr, "err", err)
				writeError(w, http.StatusBadGateway, "app "+app+": replica "+es.id+" failed: "+reason)
			}
		},
	}
}

// clientBodyFailed answers a request whose exchange failed because
// reading the client's body did: 408 when it stalled or did not arrive
// within the route's timeout, nothing when the client left. The
// connection closes after the answer: the rest of the body cannot be
// told from the next request.
func (p *Proxy) clientBodyFailed(w http.ResponseWriter, r *http.Request, rt *route, err error, stalled bool) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		p.log.Debug("ingress: client failed while sending a request body", "app", rt.app.name, "remote", r.RemoteAddr, "err", err)
		return
	}
	msg := rt.msgBodyTimeout
	if stalled {
		msg = rt.msgBodyStalled
	}
	p.log.Debug("ingress: request body timed out", "app", rt.app.name, "remote", r.RemoteAddr, "reason", msg)
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestTimeout, msg)
}

// failureReason says in a few words why a round trip to a replica failed.
func failureReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case errors.As(err, &ne) && ne.Timeout():
		return "connect timed out"
	}
	return err.Error()
}

// writeError answers with a short plain-text body.
func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// notFound answers a request no route matches.
func (p *Proxy) notFound(w http.ResponseWriter, host, path string) {
	if len(p.snap.Load().hosts[host]) > 0 {
		writeError(w, http.StatusNotFound, "no app serves path "+path+" on host "+host)
		return
	}
	writeError(w, http.StatusNotFound, "no app serves host "+host)
}

// bufferPool lends the 32 KiB buffers ReverseProxy copies bodies with.
// It pools array pointers, so neither Get nor Put allocates.
type bufferPool struct{ pool sync.Pool }

const bufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if a, ok := b.pool.Get().(*[bufferSize]byte); ok {
		return a[:]
	}
	return new([bufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < bufferSize {
		return
	}
	b.pool.Put((*[bufferSize]byte)(buf[:bufferSize]))
}

var _ httputil.BufferPool = (*bufferPool)(nil)
