package ingress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend is a replica speaking HTTP/1.1 by hand, to misbehave in ways
// net/http's server never does. For each request head it writes the
// parts answer returns, pausing between parts.
type rawBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	heads []string // "METHOD PATH" of the requests received, in order
}

// newRawBackend starts a raw replica on loopback.
func newRawBackend(t *testing.T, pause time.Duration, answer func(method, path string) []string) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rb := &rawBackend{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rb.serve(c, pause, answer)
		}
	}()
	return rb
}

func (rb *rawBackend) serve(c net.Conn, pause time.Duration, answer func(method, path string) []string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == "\r\n" {
				break
			}
		}
		if len(f) < 2 {
			return
		}
		rb.mu.Lock()
		rb.heads = append(rb.heads, f[0]+" "+f[1])
		rb.mu.Unlock()
		for i, part := range answer(f[0], f[1]) {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := io.WriteString(c, part); err != nil {
				return
			}
		}
	}
}

func (rb *rawBackend) endpoint() Endpoint {
	return Endpoint{ID: "raw", Addr: rb.ln.Addr().String()}
}

func (rb *rawBackend) received() []string {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return append([]string(nil), rb.heads...)
}

// poison is a complete HTTP response that a replica slips into a
// connection; whoever reads it as their answer gets the attacker's cookie.
const poison = "HTTP/1.1 200 OK\r\nSet-Cookie: session=attacker\r\nContent-Length: 6\r\n\r\nhacked"

const realAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"

// freshGet sends one request on a new connection of its own: another
// client than the one before.
func freshGet(t *testing.T, method, base, host, path string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	res, err := c.Do(mustRequest(t, method, base+path, host, nil))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return res, string(b)
}

// checkReal asserts that a GET /real from a new client gets the
// replica's real answer, and that its request reached the replica.
func checkReal(t *testing.T, rb *rawBackend, base string) {
	t.Helper()
	for i := range 3 {
		res, body := freshGet(t, "GET", base, "raw.localhost", "/real")
		if res.StatusCode != 200 || body != "real" || res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("GET /real #%d got %d %q, Set-Cookie %q: another request's bytes", i, res.StatusCode, body, res.Header.Get("Set-Cookie"))
		}
	}
	n := 0
	for _, h := range rb.received() {
		if h == "GET /real" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("the replica received %d of 3 GET /real (%q)", n, rb.received())
	}
}

// TestHeadBodyDoesNotPoisonPool: a replica that writes a body after its
// answer to a HEAD — here a complete response with a cookie — must not
// have that body read as the answer to the next client's request.
func TestHeadBodyDoesNotPoisonPool(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause time.Duration
	}{{"body in the same write", 0}, {"body 50ms later", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
				rb := newRawBackend(t, tc.pause, func(method, path string) []string {
					if method == "HEAD" {
						head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(poison)) + "\r\n\r\n"
						if tc.pause == 0 {
							return []string{head + poison}
						}
						return []string{head, poison}
					}
					return []string{realAnswer}
				})
				p, base := start(Config{})
				mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
				res, _ := freshGet(t, "HEAD", base, "raw.localhost", "/")
				if res.StatusCode != 200 || res.ContentLength != int64(len(poison)) {
					t.Fatalf("HEAD: %d, length %d", res.StatusCode, res.ContentLength)
				}
				time.Sleep(2 * tc.pause) // the body is sent while the connection idles
				checkReal(t, rb, base)
			})
		})
	}
}

// TestReplicaSendsTwoResponses: the second of two responses to one
// request is never anybody's answer.
func TestReplicaSendsTwoResponses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause time.Duration
	}{{"in one write", 0}, {"the second 50ms later", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
				first := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
				rb := newRawBackend(t, tc.pause, func(method, path string) []string {
					if path == "/double" {
						if tc.pause == 0 {
							return []string{first + poison}
						}
						return []string{first, poison}
					}
					return []string{realAnswer}
				})
				p, base := start(Config{})
				mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
				if res, body := freshGet(t, "GET", base, "raw.localhost", "/double"); res.StatusCode != 200 || body != "first" {
					t.Fatalf("GET /double: %d %q", res.StatusCode, body)
				}
				time.Sleep(2 * tc.pause)
				checkReal(t, rb, base)
			})
		})
	}
}

// TestReplicaSendsWhileIdle: bytes a replica sends on a kept-alive
// connection while no request is on it close the connection.
func TestReplicaSendsWhileIdle(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rb := newRawBackend(t, 30*time.Millisecond, func(method, path string) []string {
			if path == "/first" {
				return []string{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", poison}
			}
			return []string{realAnswer}
		})
		p, base := start(Config{})
		mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
		if res, body := freshGet(t, "GET", base, "raw.localhost", "/first"); res.StatusCode != 200 || body != "first" {
			t.Fatalf("GET /first: %d %q", res.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
		checkReal(t, rb, base)
	})
}

// TestBodilessStatusDoesNotPoisonPool: 204 and 304 answers have no body
// whatever the replica sends after them; what it sends is nobody's
// answer.
func TestBodilessStatusDoesNotPoisonPool(t *testing.T) {
	for _, status := range []string{"204 No Content", "304 Not Modified"} {
		t.Run(status[:3], func(t *testing.T) {
			forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
				rb := newRawBackend(t, 0, func(method, path string) []string {
					if path == "/bodiless" {
						return []string{"HTTP/1.1 " + status + "\r\nContent-Length: " + strconv.Itoa(len(poison)) + "\r\n\r\n" + poison}
					}
					return []string{realAnswer}
				})
				p, base := start(Config{})
				mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
				res, body := freshGet(t, "GET", base, "raw.localhost", "/bodiless")
				if res.Status != status || body != "" {
					t.Fatalf("GET /bodiless: %q %q", res.Status, body)
				}
				checkReal(t, rb, base)
			})
		})
	}
}
