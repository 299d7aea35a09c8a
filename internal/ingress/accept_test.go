package ingress

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// closingListener hands out one connection from an Accept that was
// waiting when Close came: the connection the kernel had queued just
// before the listener closed.
type closingListener struct {
	conn      net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	gave      bool
}

func (l *closingListener) Accept() (net.Conn, error) {
	<-l.closed
	if !l.gave {
		l.gave = true
		return l.conn, nil
	}
	return nil, net.ErrClosed
}

func (l *closingListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *closingListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// TestConnAcceptedAsListenerClosesIsServed: a connection accepted as
// Shutdown closes the listener is served (its request gets the replica's
// answer), not closed unanswered.
func TestConnAcceptedAsListenerClosesIsServed(t *testing.T) {
	br, done := shutdownWithOneConn(t, Config{Addr: "127.0.0.1:0"}, func(p *Proxy, server net.Conn) net.Conn { return server })
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v; want the connection closed by the shutdown", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

// shutdownWithOneConn starts a proxy of cfg with one route to a replica,
// serving a listener that gives one piped connection (wrap(p, server))
// as Shutdown closes it; it shuts the proxy down, sends a request on the
// connection and checks that the replica's answer comes back. It returns
// the client's reader after the answer and Shutdown's result.
func shutdownWithOneConn(t *testing.T, cfg Config, wrap func(p *Proxy, server net.Conn) net.Conn) (*bufio.Reader, <-chan error) {
	t.Helper()
	rp := newReplica(t, "r1", nil)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	ln := &closingListener{conn: wrap(p, server), closed: make(chan struct{})}
	if err := p.Serve(ln); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(client, "GET /x HTTP/1.1\r\nHost: shop.localhost\r\n\r\n")
	br := bufio.NewReader(client)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the connection accepted as the proxy shut down got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "r1 /x" {
		t.Fatalf("got %d %q; want 200 from the replica", res.StatusCode, b)
	}
	return br, done
}
