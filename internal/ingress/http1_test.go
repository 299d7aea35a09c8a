package ingress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoReplica answers "<method> <path> <body>".
func echoReplica(t testing.TB) *replica {
	return newReplica(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
}

// rawExchange writes raw to the proxy on one connection and reads n
// responses from it; closed reports whether the proxy closed the
// connection afterwards.
func rawExchange(t *testing.T, base, raw string, n int) (res []*http.Response, bodies []string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for range n {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading response %d: %v", len(res)+1, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
		bodies = append(bodies, string(b))
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = br.ReadByte()
	return res, bodies, err == io.EOF
}

func TestHTTP1Connections(t *testing.T) { forEachPath(t, testHTTP1Connections) }

func testHTTP1Connections(t *testing.T, start func(Config) (*Proxy, string)) {
	p, base := start(Config{})
	rp := echoReplica(t)
	mustUpdate(t, p, route1("echo", "echo-1", []string{"echo.localhost"}, rp.endpoint()))
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: echo.localhost\r\n\r\n" }
	tests := []struct {
		name   string
		raw    string
		codes  []int
		bodies []string
		closed bool
	}{
		{"keep-alive and pipelining", get("/a") + get("/b") + get("/c"),
			[]int{200, 200, 200}, []string{"GET /a ", "GET /b ", "GET /c "}, false},
		{"a request with a body between plain ones",
			get("/a") + "POST /b HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: 5\r\n\r\nhello" + get("/c"),
			[]int{200, 200, 200}, []string{"GET /a ", "POST /b hello", "GET /c "}, false},
		// Closed after: the ingress cannot tell whether a Content-Length
		// came too (see TestContentLengthAndChunked).
		{"chunked request body",
			"PUT /up HTTP/1.1\r\nHost: echo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/after"),
			[]int{200}, []string{"PUT /up abc"}, true},
		{"malformed header line", "GET / HTTP/1.1\r\nHost: echo.localhost\r\nno colon here\r\n\r\n",
			[]int{400}, nil, true},
		{"two host headers", "GET / HTTP/1.1\r\nHost: echo.localhost\r\nHost: other.localhost\r\n\r\n",
			[]int{400}, nil, true},
		{"no host", "GET / HTTP/1.1\r\n\r\n", []int{400}, nil, true},
		{"control byte in a header value", "GET / HTTP/1.1\r\nHost: echo.localhost\r\nX-A: a\x01b\r\n\r\n",
			[]int{400}, nil, true},
		{"HTTP/1.0", "GET /ten HTTP/1.0\r\nHost: echo.localhost\r\n\r\n",
			[]int{200}, []string{"GET /ten "}, true},
		{"connection close", "GET /bye HTTP/1.1\r\nHost: echo.localhost\r\nConnection: close\r\n\r\n",
			[]int{200}, []string{"GET /bye "}, true},
		{"absolute-form target", "GET http://echo.localhost/abs?q=1 HTTP/1.1\r\nHost: echo.localhost\r\n\r\n",
			[]int{200}, []string{"GET /abs "}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, bodies, closed := rawExchange(t, base, tt.raw, len(tt.codes))
			for i, r := range res {
				if r.StatusCode != tt.codes[i] {
					t.Errorf("response %d: status %d, want %d (%q)", i+1, r.StatusCode, tt.codes[i], bodies[i])
				}
				if tt.bodies != nil && bodies[i] != tt.bodies[i] {
					t.Errorf("response %d: body %q, want %q", i+1, bodies[i], tt.bodies[i])
				}
			}
			if closed != tt.closed {
				t.Errorf("connection closed: %v, want %v", closed, tt.closed)
			}
			if tt.closed && tt.codes[0] == 200 && !res[0].Close {
				t.Errorf("response before the close does not say Connection: close")
			}
		})
	}
}

// TestHeaderTimeout: a client that never finishes its request header is
// disconnected.
func TestHeaderTimeout(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		_, base := start(Config{ReadHeaderTimeout: 100 * time.Millisecond})
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: echo.localhost\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start0 := time.Now()
		io.Copy(io.Discard, conn) // a 408 or nothing, then EOF
		if d := time.Since(start0); d > 3*time.Second {
			t.Errorf("connection with a partial header lasted %v", d)
		}
	})
}

// TestPartialRequestLineTimesOut: a client whose request line never ends
// is disconnected after one header timeout, not two (the front once took
// the timed-out partial line for a malformed request and handed it to
// net/http, which started its own).
func TestPartialRequestLineTimesOut(t *testing.T) {
	const timeout = 500 * time.Millisecond
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		_, base := start(Config{ReadHeaderTimeout: timeout})
		for _, partial := range []string{"G", "GET /", "GET / HTTP/1.1"} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, partial)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			start0 := time.Now()
			io.Copy(io.Discard, conn) // nothing, or net/http's 400, then EOF
			conn.Close()
			if d := time.Since(start0); d > timeout*9/5 {
				t.Errorf("%q: the connection lasted %v with a header timeout of %v", partial, d.Round(time.Millisecond), timeout)
			}
		}
	})
}

func TestResponses(t *testing.T) { forEachPath(t, testResponses) }

func testResponses(t *testing.T, start func(Config) (*Proxy, string)) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	rp := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "42")
			w.Header().Set("X-Head", "yes")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		case "/big-chunked":
			for i := 0; i < len(big); i += 100000 {
				w.Write(big[i:min(i+100000, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("body"))
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		case "/early-hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Write([]byte("final"))
		case "/huge-header":
			w.Header().Set("X-Huge", strings.Repeat("h", 2<<20))
		case "/close-delimited":
			conn, brw, _ := w.(http.Hijacker).Hijack()
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
			brw.Flush()
			conn.Close()
		case "/hop":
			w.Header().Set("Connection", "X-Private")
			w.Header().Set("X-Private", "hop")
			w.Header().Set("X-Public", "end-to-end")
		default:
			w.Write([]byte("default"))
		}
	})
	p, base := start(Config{})
	mustUpdate(t, p, route1("r", "r-1", []string{"r.localhost"}, rp.endpoint()))
	sum := func(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
	tests := []struct {
		name, method, path string
		code               int
		body               string
		check              func(t *testing.T, res *http.Response)
	}{
		{"head keeps the length", "HEAD", "/head", 200, "", func(t *testing.T, res *http.Response) {
			if res.ContentLength != 42 || res.Header.Get("X-Head") != "yes" {
				t.Errorf("length %d, header %v", res.ContentLength, res.Header)
			}
		}},
		{"no content", "GET", "/204", 204, "", nil},
		{"not modified", "GET", "/304", 304, "", nil},
		{"1 MiB with a length", "GET", "/big", 200, sum(big), nil},
		{"1 MiB chunked", "GET", "/big-chunked", 200, sum(big), nil},
		{"trailers", "GET", "/trailers", 200, "body", func(t *testing.T, res *http.Response) {
			if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Late") != "late" {
				t.Errorf("trailers %v", res.Trailer)
			}
		}},
		{"replica header too large", "GET", "/huge-header", 502, "app r: replica r failed", nil},
		{"close-delimited body", "GET", "/close-delimited", 200, "until the end", nil},
		{"hop-by-hop response headers", "GET", "/hop", 200, "", func(t *testing.T, res *http.Response) {
			if res.Header.Get("X-Private") != "" || res.Header.Get("X-Public") != "end-to-end" {
				t.Errorf("headers %v", res.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := testClient.Do(mustRequest(t, tt.method, base+tt.path, "r.localhost", nil))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			if len(b) > 1000 {
				body = sum(b)
			}
			if res.StatusCode != tt.code || !strings.HasPrefix(body, tt.body) {
				t.Errorf("got %d %.100q, want %d %.100q", res.StatusCode, body, tt.code, tt.body)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}

	t.Run("early hints", func(t *testing.T) {
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		}}
		req := mustRequest(t, "GET", base+"/early-hints", "r.localhost", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		code, body := do(t, req)
		if code != 200 || body != "final" || len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
			t.Errorf("got %d %q, hints %q", code, body, hints)
		}
	})
}

// TestReplicaClosesKeptAliveConnections: replicas that close idle
// connections, or close after every answer without saying so, do not
// make requests fail.
func TestReplicaClosesKeptAliveConnections(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		idle := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		idle.Config.IdleTimeout = 30 * time.Millisecond
		idle.Start()
		defer idle.Close()
		rude := newReplica(t, "rude", func(w http.ResponseWriter, r *http.Request) {
			conn, brw, _ := w.(http.Hijacker).Hijack()
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			brw.Flush()
			conn.Close()
		})
		p, base := start(Config{})
		mustUpdate(t, p,
			route1("idle", "idle-1", []string{"idle.localhost"}, Endpoint{ID: "idle", Addr: idle.Listener.Addr().String()}),
			route1("rude", "rude-1", []string{"rude.localhost"}, rude.endpoint()))
		// GET and DELETE are retried on a new connection; POST, which
		// cannot be, relies on the check of the idle connection (a close
		// is seen once the replica's FIN has arrived: hence the pause).
		for i := range 4 {
			for _, host := range []string{"idle.localhost", "rude.localhost"} {
				for _, method := range []string{"GET", "DELETE", "POST"} {
					time.Sleep(5 * time.Millisecond)
					if code, body := do(t, mustRequest(t, method, base+"/", host, nil)); code != 200 || body != "ok" {
						t.Fatalf("%s %s #%d: got %d %q", method, host, i, code, body)
					}
				}
			}
			time.Sleep(60 * time.Millisecond)
		}
	})
}

// TestClientGoneCancelsReplicaRequest: when a client leaves, the replica's
// request is canceled, while waiting for the answer and while streaming.
func TestClientGoneCancelsReplicaRequest(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		arrived := make(chan string, 2)
		canceled := make(chan string, 2)
		rp := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
			}
			arrived <- r.URL.Path
			select {
			case <-r.Context().Done():
				canceled <- r.URL.Path
			case <-time.After(20 * time.Second):
			}
		})
		p, base := start(Config{})
		mustUpdate(t, p, route1("r", "r-1", []string{"r.localhost"}, rp.endpoint()))
		for _, path := range []string{"/wait", "/stream"} {
			ctx, cancel := context.WithCancel(context.Background())
			ch := goDo(mustRequest(t, "GET", base+path, "r.localhost", nil).WithContext(ctx))
			<-arrived
			time.Sleep(20 * time.Millisecond)
			cancel()
			<-ch
			select {
			case got := <-canceled:
				if got != path {
					t.Errorf("canceled %s, want %s", got, path)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the replica's request was not canceled after the client left", path)
			}
		}
		eventually(t, "no request in flight", func() bool { return p.InFlight("r") == 0 })
	})
}

// TestShutdownDrainsConnections: Shutdown lets the request in flight
// finish, closes idle connections, and refuses new ones.
func TestShutdownDrainsConnections(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		g := newGate()
		defer g.open()
		rp := newReplica(t, "r", g.handler("r"))
		p, base := start(Config{})
		mustUpdate(t, p, route1("r", "r-1", []string{"r.localhost"}, rp.endpoint()))

		// A connection that served a request and waits for the next.
		idle, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
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
		inflight := goDo(mustRequest(t, "GET", base+"/", "r.localhost", nil))
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
		if r := waitResult(t, inflight); r.code != 200 {
			t.Errorf("request in flight got %d", r.code)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if _, err := net.Dial("tcp", strings.TrimPrefix(base, "http://")); err == nil {
			t.Error("a new connection was accepted after Shutdown")
		}
	})
}

// TestStuckClientTimesOut: a client that stops reading does not hold a
// replica past the route's timeout (plus the grace to write a 504).
func TestStuckClientTimesOut(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		rp := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		p, base := start(Config{})
		rt := route1("r", "r-1", []string{"r.localhost"}, rp.endpoint())
		rt.Timeout = 200 * time.Millisecond
		mustUpdate(t, p, rt)
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /endless HTTP/1.1\r\nHost: r.localhost\r\n\r\n")
		eventually(t, "the request to reach the replica", func() bool { return rp.count.Load() == 1 })
		start0 := time.Now()
		eventually(t, "the stuck request to end", func() bool { return p.InFlight("r") == 0 })
		if d := time.Since(start0); d > 3*time.Second {
			t.Errorf("a client that stopped reading held the replica %v", d)
		}
	})
}

// TestContentLengthAndChunked: a request with both Content-Length and
// Transfer-Encoding is served by its chunked body, and the connection
// closes after the answer (RFC 9112 §6.1), so that bytes a peer in front
// framed by the other header are never read as a request. An interim
// 103 answer does not lose the close.
func TestContentLengthAndChunked(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		var seen []string
		var mu sync.Mutex
		rp := newReplica(t, "echo", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.Path)
			mu.Unlock()
			if r.URL.Path == "/hints" {
				w.Header().Set("Link", "</a.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
		})
		p, base := start(Config{})
		mustUpdate(t, p, route1("echo", "echo-1", []string{"echo.localhost"}, rp.endpoint()))
		for _, path := range []string{"/te", "/hints"} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.localhost\r\n\r\n")
			br := bufio.NewReader(conn)
			var res *http.Response
			for res == nil || res.StatusCode < 200 {
				if res, err = http.ReadResponse(br, nil); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
			}
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || string(b) != "POST "+path+" abc" || !res.Close {
				t.Errorf("%s: got %d %q (Connection: close %v), want 200 with the chunked body and a close", path, res.StatusCode, b, res.Close)
			}
			conn.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := br.ReadByte(); err != io.EOF {
				t.Errorf("%s: the connection stayed open (read %q, %v)", path, n, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(seen, "/smuggled") {
			t.Errorf("the replica received the request after the body: %q", seen)
		}
	})
}
