package ingress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// The fast path proxies the requests that are most of an app's traffic —
// no request body, no protocol upgrade — over the upstream pool in the
// request's own goroutine. It keeps ReverseProxy's behaviour (the same
// header rules, streaming, trailers, 1xx, error answers) and is checked
// against it by the same tests; everything else (bodies, WebSocket and
// other upgrades, odd queries) goes through httputil.ReverseProxy and
// http.Transport. BenchmarkIngress compares the two.

// fastPathOK reports whether r can take the fast path.
func fastPathOK(r *http.Request) bool {
	if r.ContentLength != 0 || (r.Body != nil && r.Body != http.NoBody) || r.Method == http.MethodConnect {
		return false
	}
	if _, ok := r.Header["Upgrade"]; ok {
		return false
	}
	return cleanQuery(r.URL.RawQuery)
}

// cleanQuery reports whether ReverseProxy would pass the query unchanged:
// no ';' and no malformed escape (it re-encodes such queries).
func cleanQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hopHeaders are removed from requests and responses (RFC 9110 §7.6.1),
// like ReverseProxy does; so are the client's forwarding headers, which
// the ingress sets itself.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

var forwardingHeaders = map[string]bool{
	"Forwarded":         true,
	"X-Forwarded-For":   true,
	"X-Forwarded-Host":  true,
	"X-Forwarded-Proto": true,
}

// connectionTokens returns the canonical names of the headers listed in
// h's Connection header, which are hop-by-hop too.
func connectionTokens(h http.Header) []string {
	var out []string
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				out = append(out, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
	return out
}

// isIdempotent reports whether r may be sent twice (RFC 9110 §9.2.2):
// a retry after a kept-alive connection failed is safe.
func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// writeGrace is how long after a request's deadline writes to its client
// may still go on: time to deliver a 504.
const writeGrace = time.Second

// aLongTimeAgo is a deadline in the past: it wakes blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// lazyDeadline decides whether a connection whose armed deadline is armed
// needs a new one for a request that must end by t (its timeout being
// timeout). A deadline up to timeout/32 later than t is kept, so a busy
// kept-alive connection re-arms its timer about once per timeout/32
// instead of on every request; when it must re-arm, it arms the end of
// that range. So a request's deadline is never earlier than asked, and
// at most 1/32 of its timeout later.
func lazyDeadline(armed, t time.Time, timeout time.Duration) (time.Time, bool) {
	slack := timeout / 32
	if !armed.Before(t) && armed.Sub(t) <= slack {
		return armed, false
	}
	return t.Add(slack), true
}

// serveFast proxies r to t over its upstream pool. It answers every
// failure itself, like ReverseProxy's ErrorHandler would.
func (p *Proxy) serveFast(w http.ResponseWriter, r *http.Request, rt *route, t *target) {
	up := t.ep.up
	deadline := time.Now().Add(rt.timeout)
	ctx := r.Context()
	idempotent := isIdempotent(r)
	for attempt := 0; ; attempt++ {
		var c *upConn
		var err error
		if attempt == 0 {
			c, err = up.get(ctx)
		} else {
			c, err = up.dial(ctx)
		}
		if err != nil {
			p.upstreamFailed(w, r, rt, t, err, deadline)
			return
		}
		// Only reads wait on the replica: a request head fits in the
		// socket buffer of a kept-alive connection.
		c.setReadDeadline(deadline, rt.timeout)
		// A client that leaves aborts the exchange: the front's watcher
		// does it for its requests, a context callback for net/http's.
		fc, onFront := w.(*frontResponse)
		var stop func() bool
		if onFront {
			fc.c.setWriteDeadline(deadline.Add(writeGrace), rt.timeout)
			onFront = fc.c.setUpstream(c)
		} else {
			stop = context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
		}
		retry, done := p.exchange(w, r, c, attempt == 0 && c.reused && idempotent, rt, t, deadline)
		aborted := false
		if onFront {
			aborted = !fc.c.setUpstream(nil)
		} else {
			aborted = !stop()
		}
		if aborted || !done {
			c.nc.Close()
		} else {
			up.put(c)
		}
		if !retry {
			return
		}
	}
}

// exchange sends r on c and copies the response to w. retry reports a
// failure of a reused connection before any byte of response, which the
// caller retries on a new one when mayRetry; done reports that c is fit
// for reuse.
func (p *Proxy) exchange(w http.ResponseWriter, r *http.Request, c *upConn, mayRetry bool, rt *route, t *target, deadline time.Time) (retry, done bool) {
	err := writeRequest(c, r)
	var res *http.Response
	silent := true // no byte came back
	if err == nil {
		c.beginHeader()
		res, err = http.ReadResponse(c.br, r)
		for err == nil && res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			// Interim answers (103 Early Hints; 100 Continue) go to the
			// client as they come.
			if res.StatusCode != http.StatusContinue {
				h := w.Header()
				copyHeader(h, res.Header)
				w.WriteHeader(res.StatusCode)
				clear(h)
			}
			res, err = http.ReadResponse(c.br, r)
		}
		if err == nil && res.StatusCode == http.StatusSwitchingProtocols {
			err = errors.New("replica switched protocols unasked")
		}
		if err == nil && len(c.out.pending) > 0 {
			// Parsed from bytes that came before the request went out
			// (get refuses such connections: this is a safety net).
			err = errUnsolicited
		}
		silent = c.nothingReceived()
		c.endHeader()
	}
	if err != nil {
		if mayRetry && r.Context().Err() == nil && silent {
			return true, false
		}
		p.upstreamFailed(w, r, rt, t, err, deadline)
		return false, false
	}

	h := w.Header()
	copyHeader(h, res.Header)
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	if res.Body == http.NoBody {
		return false, !res.Close
	}
	if err := p.copyBody(w, res); err != nil {
		c.nc.Close()
		res.Body.Close()
		if r.Context().Err() != nil || errors.Is(err, errClientWrite) {
			return false, false // the client left
		}
		p.log.Warn("ingress: replica failed while sending a response", "app", rt.app.name, "endpoint", t.ep.id, "err", err)
		// The status is sent: cut the client's connection so it sees a
		// truncated response rather than a short one.
		panic(http.ErrAbortHandler)
	}
	res.Body.Close()
	// Trailers the replica announced go out as announced; if it sent
	// others, all go out as trailers declared late (TrailerPrefix).
	for k, vv := range res.Trailer {
		if len(res.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		h[k] = vv
	}
	return false, !res.Close
}

var (
	errClientWrite = errors.New("client write failed")
	errUnsolicited = errors.New("replica sent a response before the request")
)

// copyBody copies the response body to w, flushing after every read when
// the response streams (unknown length or Server-Sent Events).
func (p *Proxy) copyBody(w http.ResponseWriter, res *http.Response) error {
	flush := res.ContentLength == -1 || isEventStream(res.Header["Content-Type"])
	var flusher http.Flusher
	if flush {
		flusher, _ = w.(http.Flusher)
	}
	buf := p.bufs.Get()
	defer p.bufs.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return errClientWrite
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	v := strings.TrimLeft(ct[0], " \t")
	const es = "text/event-stream"
	if len(v) < len(es) || !strings.EqualFold(v[:len(es)], es) {
		return false
	}
	return len(v) == len(es) || v[len(es)] == ';' || v[len(es)] == ' ' || v[len(es)] == '\t'
}

// copyHeader copies the end-to-end headers of src into dst.
func copyHeader(dst, src http.Header) {
	var conn []string
	if _, ok := src["Connection"]; ok {
		conn = connectionTokens(src)
	}
	for k, vv := range src {
		if hopHeaders[k] || (conn != nil && containsString(conn, k)) {
			continue
		}
		dst[k] = vv
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// upstreamFailed answers a request whose exchange with the replica failed
// before a response status was sent.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, rt *route, t *target, err error, deadline time.Time) {
	switch {
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
	case errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline),
		errors.Is(err, context.DeadlineExceeded):
		p.log.Warn("ingress: replica did not answer in time", "app", rt.app.name, "endpoint", t.ep.id, "timeout", rt.timeout)
		writeError(w, http.StatusGatewayTimeout, rt.msgTimeout)
	default:
		p.log.Warn("ingress: replica failed", "app", rt.app.name, "endpoint", t.ep.id, "addr", t.ep.addr, "err", err)
		writeError(w, http.StatusBadGateway, "app "+rt.app.name+": replica "+t.ep.id+" failed: "+failureReason(err))
	}
}

// writeRequest writes r's request line and end-to-end headers, with the
// forwarding headers the ingress sets, and flushes them.
func writeRequest(c *upConn, r *http.Request) error {
	bw := c.bw
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	var conn []string
	if _, ok := r.Header["Connection"]; ok {
		conn = connectionTokens(r.Header)
	}
	for k, vv := range r.Header {
		if hopHeaders[k] || forwardingHeaders[k] || (conn != nil && containsString(conn, k)) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	// Ask for trailers only when the client can take them.
	for _, v := range r.Header["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			bw.WriteString("Te: trailers\r\n")
			break
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	bw.WriteString(clientIP)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	}
	// The request has no body: the response's first read sends it.
	c.out.hold = true
	err = bw.Flush()
	c.out.hold = false
	return err
}
