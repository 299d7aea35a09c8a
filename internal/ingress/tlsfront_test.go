package ingress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/pki"
)

// tlsPaths are the ways the ingress serves HTTPS: HTTP/1.1 by its own
// front over TLS (the default), or everything by net/http's TLS server.
var tlsPaths = []struct {
	name    string
	noFront bool
}{{"front", false}, {"nethttp", true}}

// forEachTLSPath runs f once per way of serving HTTPS, as subtests, with
// a proxy serving TLS on a loopback port (see startTLS).
func forEachTLSPath(t *testing.T, f func(t *testing.T, p *Proxy, ca *pki.CA, addr string)) {
	for _, path := range tlsPaths {
		t.Run(path.name, func(t *testing.T) {
			p, _ := testProxyPath(t, Config{}, path.noFront, false)
			ca, addr := startTLS(t, p)
			f(t, p, ca, addr)
		})
	}
}

// http1TLSClient speaks HTTP/1.1 over TLS (no ALPN offer of h2), as wrk
// and most HTTP/1.1 clients do, on one kept-alive connection at a time.
func http1TLSClient(ca *pki.CA, addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.Pool()},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// frontTLSConns counts the TLS connections the front serves itself.
func frontTLSConns(p *Proxy) int {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	n := 0
	for c := range p.conns {
		if c.tls != nil {
			n++
		}
	}
	return n
}

// TestTLSHTTP1 checks that HTTP/1.1 over TLS is proxied as it is over
// plain HTTP, with X-Forwarded-Proto https and no redirect, whether the
// front serves the request (no body) or hands the connection to net/http
// (a body); on the front path the connection is the front's.
func TestTLSHTTP1(t *testing.T) {
	rp := newReplica(t, "r1", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s proto=%s xff=%s host=%s body=%s", r.Method, r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), b)
	})
	forEachTLSPath(t, func(t *testing.T, p *Proxy, ca *pki.CA, addr string) {
		shop := route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint())
		shop.RedirectHTTPS = true
		mustUpdate(t, p, shop)
		c := http1TLSClient(ca, addr)
		do := func(method, body string) string {
			t.Helper()
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, "https://shop.localhost/x", rd)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.ProtoMajor != 1 || res.TLS == nil {
				t.Fatalf("%s: got %d %s %q; want 200 over HTTP/1.1 and TLS", method, res.StatusCode, res.Proto, b)
			}
			return string(b)
		}
		for i := range 3 {
			if got, want := do("GET", ""), "GET proto=https xff=127.0.0.1 host=shop.localhost body="; got != want {
				t.Fatalf("GET %d: %q, want %q", i, got, want)
			}
		}
		if !p.noFront {
			if n := frontTLSConns(p); n != 1 {
				t.Fatalf("the front serves %d TLS connections; want the client's one", n)
			}
		}
		// A body hands the connection to net/http; it stays HTTPS.
		if got, want := do("POST", "hello"), "POST proto=https xff=127.0.0.1 host=shop.localhost body=hello"; got != want {
			t.Fatalf("POST: %q, want %q", got, want)
		}
		if got, want := do("GET", ""), "GET proto=https xff=127.0.0.1 host=shop.localhost body="; got != want {
			t.Fatalf("GET after POST: %q, want %q", got, want)
		}
		eventually(t, "the connection to leave the front", func() bool { return frontTLSConns(p) == 0 })
	})
}

// TestTLSPipelined: requests pipelined on one TLS connection are answered
// in order.
func TestTLSPipelined(t *testing.T) {
	rp := newReplica(t, "r1", nil)
	forEachTLSPath(t, func(t *testing.T, p *Proxy, ca *pki.CA, addr string) {
		mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "shop.localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var reqs strings.Builder
		for i := range 3 {
			fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: shop.localhost\r\n\r\n", i)
		}
		io.WriteString(conn, reqs.String())
		br := bufio.NewReader(conn)
		for i := range 3 {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			if want := fmt.Sprintf("r1 /%d", i); res.StatusCode != 200 || string(b) != want {
				t.Fatalf("answer %d: %d %q, want %q", i, res.StatusCode, b, want)
			}
		}
	})
}

// TestTLSClientGoneCancelsReplicaRequest: a TLS client that leaves in the
// middle of a request cancels it at the replica.
func TestTLSClientGoneCancelsReplicaRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	rp := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	})
	forEachTLSPath(t, func(t *testing.T, p *Proxy, ca *pki.CA, addr string) {
		mustUpdate(t, p, route1("r", "r-1", []string{"r.localhost"}, rp.endpoint()))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://r.localhost/wait", nil)
		done := make(chan error, 1)
		go func() {
			res, err := http1TLSClient(ca, addr).Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		<-arrived
		time.Sleep(20 * time.Millisecond)
		cancel()
		<-done
		select {
		case <-canceled:
		case <-time.After(5 * time.Second):
			t.Fatal("the replica's request was not canceled after the client left")
		}
		eventually(t, "no request in flight", func() bool { return p.InFlight("r") == 0 })
	})
}

// TestTLSShutdownDrains: Shutdown lets a TLS request in flight finish,
// closes idle TLS connections and refuses new ones.
func TestTLSShutdownDrains(t *testing.T) {
	forEachTLSPath(t, func(t *testing.T, p *Proxy, ca *pki.CA, addr string) {
		g := newGate()
		defer g.open()
		rp := newReplica(t, "r", g.handler("r"))
		mustUpdate(t, p, route1("r", "r-1", []string{"r.localhost"}, rp.endpoint()))
		conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "r.localhost"}
		idle, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		io.WriteString(idle, "GET /nope HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
		idleBr := bufio.NewReader(idle)
		if res, err := http.ReadResponse(idleBr, nil); err != nil || res.StatusCode != 404 {
			t.Fatalf("first request on the idle connection: %v", err)
		} else {
			io.Copy(io.Discard, res.Body)
		}
		busy, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		io.WriteString(busy, "GET / HTTP/1.1\r\nHost: r.localhost\r\n\r\n")
		g.waitArrival(t)

		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- p.Shutdown(ctx)
		}()
		idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := idleBr.ReadByte(); err != io.EOF {
			t.Errorf("idle connection: read %v, want EOF", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		g.open()
		busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(busy), nil)
		if err != nil {
			t.Fatalf("request in flight: %v", err)
		}
		if b, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(b) != "r /" {
			t.Errorf("request in flight got %d %q", res.StatusCode, b)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if _, err := net.Dial("tcp", addr); err == nil {
			t.Error("a new connection was accepted after Shutdown")
		}
	})
}

// TestTLSPortAnswersPlainHTTP: a plain HTTP request on the TLS port gets
// net/http's 400 naming the mistake.
func TestTLSPortAnswersPlainHTTP(t *testing.T) {
	forEachTLSPath(t, func(t *testing.T, p *Proxy, ca *pki.CA, addr string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: shop.localhost\r\n\r\n")
		b, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
			t.Fatalf("got %q; want a 400 naming the mistake", b)
		}
	})
}
