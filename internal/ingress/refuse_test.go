package ingress

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// okAnswer is what a lenient raw replica answers to anything.
const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// statusClass sends raw on a new connection to addr and returns the class
// of the first response ("2xx", "4xx"...), or "closed" when the server
// closed the connection without one.
func statusClass(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(conn, raw)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "closed"
	}
	res.Body.Close()
	return fmt.Sprintf("%dxx", res.StatusCode/100)
}

// TestHeaderNameWithSpaceRefused: a header name with whitespace before
// the colon is answered 400 and never reaches a replica, which might
// read it as the header it resembles (request smuggling, host spoofing).
func TestHeaderNameWithSpaceRefused(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rb := newRawBackend(t, 0, func(string, string) []string { return []string{okAnswer} })
		p, base := start(Config{})
		mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
		for _, raw := range []string{
			"GET /cl HTTP/1.1\r\nHost: raw.localhost\r\nContent-Length : 5\r\n\r\nhello",
			"GET /te HTTP/1.1\r\nHost: raw.localhost\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			"GET /host HTTP/1.1\r\nHost: raw.localhost\r\nHost : evil.example\r\n\r\n",
		} {
			res, _, closed := rawExchange(t, base, raw, 1)
			if res[0].StatusCode != 400 || !closed {
				t.Errorf("%q: got %d (closed %v), want 400 and a close", strings.SplitN(raw, "\r\n", 3)[2], res[0].StatusCode, closed)
			}
		}
		if got := rb.received(); len(got) != 0 {
			t.Errorf("the replica received %q", got)
		}
	})
}

// TestMalformedRequestsLikeNetHTTP runs malformed requests through the
// ingress's front and through a plain net/http server: each must get
// the same class of answer from both, and one the front answers 2xx
// must have been one net/http accepts.
func TestMalformedRequestsLikeNetHTTP(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer plain.Close()
	rb := newRawBackend(t, 0, func(string, string) []string { return []string{okAnswer} })
	p, base := testProxy(t, Config{})
	mustUpdate(t, p, route1("raw", "raw-1", []string{"raw.localhost"}, rb.endpoint()))
	proxyAddr := strings.TrimPrefix(base, "http://")

	const h = "Host: raw.localhost\r\n"
	cases := []struct{ name, raw string }{
		{"well-formed", "GET / HTTP/1.1\r\n" + h + "\r\n"},
		{"space before colon, Content-Length", "GET / HTTP/1.1\r\n" + h + "Content-Length : 5\r\n\r\nhello"},
		{"space before colon, Transfer-Encoding", "GET / HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"space before colon, Host", "GET / HTTP/1.1\r\n" + h + "Host : evil.example\r\n\r\n"},
		{"space before colon, other name", "GET / HTTP/1.1\r\n" + h + "X-Name : v\r\n\r\n"},
		{"tab before colon", "GET / HTTP/1.1\r\n" + h + "X-Name\t: v\r\n\r\n"},
		{"space inside a name", "GET / HTTP/1.1\r\n" + h + "X Name: v\r\n\r\n"},
		{"empty name", "GET / HTTP/1.1\r\n" + h + ": v\r\n\r\n"},
		{"separator in a name", "GET / HTTP/1.1\r\n" + h + "X(Name): v\r\n\r\n"},
		{"non-ASCII name", "GET / HTTP/1.1\r\n" + h + "X-Nämé: v\r\n\r\n"},
		{"line without colon", "GET / HTTP/1.1\r\n" + h + "no colon\r\n\r\n"},
		{"leading whitespace before the first header", "GET / HTTP/1.1\r\n X-A: v\r\n" + h + "\r\n"},
		{"NUL in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n"},
		{"control byte in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x01b\r\n\r\n"},
		{"DEL in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x7fb\r\n\r\n"},
		{"bare CR in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\rb\r\n\r\n"},
		{"bare LF line ends", "GET / HTTP/1.1\n" + h[:len(h)-2] + "\n\n"},
		{"obsolete line folding", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n b\r\n\r\n"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"two Hosts", "GET / HTTP/1.1\r\n" + h + "Host: other.localhost\r\n\r\n"},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: raw.localhost evil\r\n\r\n"},
		{"Host with a slash", "GET / HTTP/1.1\r\nHost: raw.localhost/x\r\n\r\n"},
		{"two different Content-Lengths", "GET / HTTP/1.1\r\n" + h + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"Content-Length not a number", "GET / HTTP/1.1\r\n" + h + "Content-Length: abc\r\n\r\n"},
		{"negative Content-Length", "GET / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n"},
		{"signed Content-Length", "GET / HTTP/1.1\r\n" + h + "Content-Length: +0\r\n\r\n"},
		{"unknown Transfer-Encoding", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n"},
		{"Content-Length and chunked", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"invalid method", "G(T / HTTP/1.1\r\n" + h + "\r\n"},
		{"bad version", "GET / HTTP/1.x\r\n" + h + "\r\n"},
		{"HTTP/2 version on HTTP/1", "GET / HTTP/2.0\r\n" + h + "\r\n"},
		{"space in the target", "GET /a b HTTP/1.1\r\n" + h + "\r\n"},
		{"control byte in the target", "GET /a\x01b HTTP/1.1\r\n" + h + "\r\n"},
		{"relative target", "GET a/b HTTP/1.1\r\n" + h + "\r\n"},
		{"extra field in the request line", "GET / HTTP/1.1 x\r\n" + h + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := statusClass(t, plain.Listener.Addr().String(), tc.raw)
			got := statusClass(t, proxyAddr, tc.raw)
			if got != want {
				t.Errorf("%q: the ingress answered %s, net/http %s", tc.raw, got, want)
			}
		})
	}
	// Nothing net/http refuses may have reached the replica.
	for _, h := range rb.received() {
		if h != "GET /" && h != "POST /" {
			t.Errorf("the replica received %q", h)
		}
	}
}
