package ingress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bodyReplica reads the whole request body and answers its length; it
// sleeps first on /slow.
func bodyReplica(t *testing.T) *replica {
	return newReplica(t, "body", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, strings.Repeat("x", int(n)))
	})
}

// sendHead opens a connection to the proxy and sends a POST head with
// Content-Length 1000 and the first body bytes.
func sendHead(t *testing.T, base, path, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: body.localhost\r\nContent-Length: 1000\r\n\r\n"+first)
	return conn, bufio.NewReader(conn)
}

// readAnswer reads the response on br within 5s and whether the proxy
// closed the connection after it: an end of stream, or a reset when the
// client was still sending (the proxy closed with the client's bytes
// unread, or they came after the close).
func readAnswer(t *testing.T, conn net.Conn, br *bufio.Reader) (code int, body string, closed bool) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.ReadByte()
	return res.StatusCode, string(b), err == io.EOF || errors.Is(err, syscall.ECONNRESET)
}

// TestStalledBody: a client that sends part of its body and then nothing
// gets 408 once BodyReadTimeout passes, the connection closes, and the
// request no longer counts as in flight.
func TestStalledBody(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rp := bodyReplica(t)
		p, base := start(Config{BodyReadTimeout: 300 * time.Millisecond})
		mustUpdate(t, p, route1("body", "body-1", []string{"body.localhost"}, rp.endpoint())) // timeout 60s
		conn, br := sendHead(t, base, "/", "0123456789")
		eventually(t, "the request to count as in flight", func() bool { return p.RevisionStats("body-1").InFlight == 1 })
		start0 := time.Now()
		code, body, closed := readAnswer(t, conn, br)
		if code != 408 || !strings.Contains(body, "stalled") || !closed {
			t.Errorf("got %d %q (closed %v), want 408 saying the body stalled, and a close", code, body, closed)
		}
		if d := time.Since(start0); d > 3*time.Second {
			t.Errorf("answered after %v", d)
		}
		eventually(t, "no request in flight", func() bool {
			return p.RevisionStats("body-1").InFlight == 0 && p.InFlight("body") == 0
		})
	})
}

// TestTrickledBody: a body that keeps coming, a byte at a time, is still
// bounded by the route's timeout.
func TestTrickledBody(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rp := bodyReplica(t)
		p, base := start(Config{BodyReadTimeout: 800 * time.Millisecond})
		rt := route1("body", "body-1", []string{"body.localhost"}, rp.endpoint())
		rt.Timeout = time.Second
		mustUpdate(t, p, rt)
		conn, br := sendHead(t, base, "/", "x")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for range 100 {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := io.WriteString(conn, "x"); err != nil {
					return
				}
			}
		}()
		start0 := time.Now()
		code, body, closed := readAnswer(t, conn, br)
		if code != 408 || !strings.Contains(body, "did not arrive within 1s") || !closed {
			t.Errorf("got %d %q (closed %v), want 408 saying the body did not arrive within 1s, and a close", code, body, closed)
		}
		if d := time.Since(start0); d > 3*time.Second {
			t.Errorf("answered after %v", d)
		}
		eventually(t, "no request in flight", func() bool { return p.InFlight("body") == 0 })
	})
}

// TestBodyThenSlowReplica: once the replica has the whole request, the
// route's timeout answers 504, as for any request.
func TestBodyThenSlowReplica(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rp := bodyReplica(t)
		p, base := start(Config{BodyReadTimeout: 300 * time.Millisecond})
		rt := route1("body", "body-1", []string{"body.localhost"}, rp.endpoint())
		rt.Timeout = 500 * time.Millisecond
		mustUpdate(t, p, rt)
		conn, br := sendHead(t, base, "/slow", strings.Repeat("b", 1000))
		if code, body, _ := readAnswer(t, conn, br); code != 504 {
			t.Errorf("got %d %q, want 504", code, body)
		}
		conn, br = sendHead(t, base, "/", strings.Repeat("b", 1000))
		if code, body, _ := readAnswer(t, conn, br); code != 200 || len(body) != 1000 {
			t.Errorf("a complete body: got %d (%d bytes), want 200", code, len(body))
		}
	})
}

// TestManyStalledBodies: 200 clients stalling their bodies at once all
// get their answer within the route's timeout; the in-flight gauge the
// autoscaler reads returns to 0, and a drain of the replica finishes.
func TestManyStalledBodies(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		rp := bodyReplica(t)
		p, base := start(Config{})
		rt := route1("body", "body-1", []string{"body.localhost"}, rp.endpoint())
		rt.Timeout = 3 * time.Second // time for all of them to reach the replica
		mustUpdate(t, p, rt)
		const n = 200
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
				if err != nil {
					codes <- 0
					return
				}
				defer conn.Close()
				io.WriteString(conn, "POST / HTTP/1.1\r\nHost: body.localhost\r\nContent-Length: 1000\r\n\r\n0123456789")
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				res, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					codes <- 0
					return
				}
				codes <- res.StatusCode
			})
		}
		eventually(t, "every request to reach the replica", func() bool { return p.InFlight("body") == n })
		// Scale to zero: the replica leaves the table and is drained.
		mustUpdate(t, p, route1("body", "body-1", []string{"body.localhost"}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.WaitIdle(ctx, "body"); err != nil {
			t.Errorf("drain: %v", err)
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		if count[408] != n {
			t.Errorf("answers %v, want %d × 408", count, n)
		}
		eventually(t, "the in-flight gauge to return to 0", func() bool { return p.RevisionStats("body-1").InFlight == 0 })
	})
}

// TestStalledBodyH2C: over cleartext HTTP/2 too, a stalled body ends the
// request with 408 and it stops counting as in flight.
func TestStalledBodyH2C(t *testing.T) {
	rp := bodyReplica(t)
	p, base := testProxy(t, Config{BodyReadTimeout: 300 * time.Millisecond})
	mustUpdate(t, p, route1("body", "body-1", []string{"body.localhost"}, rp.endpoint()))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	pr, pw := io.Pipe()
	defer pw.Close()
	go io.WriteString(pw, "0123456789") // then nothing
	req, _ := http.NewRequest("POST", base+"/", pr)
	req.Host = "body.localhost"
	req.ContentLength = 1000
	start0 := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 408 || !strings.Contains(string(b), "stalled") {
		t.Errorf("got %s %d %q, want HTTP/2 408 saying the body stalled", res.Proto, res.StatusCode, b)
	}
	if d := time.Since(start0); d > 3*time.Second {
		t.Errorf("answered after %v", d)
	}
	eventually(t, "no request in flight", func() bool { return p.InFlight("body") == 0 })
}
