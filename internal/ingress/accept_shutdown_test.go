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

// tickConn runs tick once, after the first read deadline an hour or more
// away (the idle timeout's, not the header timeout's): as a tick of
// Shutdown's wait loop coming just as the connection starts to wait for
// its first request.
type tickConn struct {
	net.Conn
	once sync.Once
	tick func()
}

func (c *tickConn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	if time.Until(t) > 59*time.Minute {
		c.once.Do(c.tick)
	}
	return err
}

// TestShutdownTickAsNewConnWaitsIsServed: a connection accepted as
// Shutdown began, which Shutdown's loop gives the header timeout just as
// the connection starts waiting for its first request, is served, not
// closed unanswered.
func TestShutdownTickAsNewConnWaitsIsServed(t *testing.T) {
	rp := newReplica(t, "r1", nil)
	p, err := New(Config{Addr: "127.0.0.1:0", ClientIdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	client, server := net.Pipe()
	defer client.Close()
	ln := &closingListener{conn: &tickConn{Conn: server, tick: p.closeIdleFront}, closed: make(chan struct{})}
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
	res, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("the connection got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "r1 /x" {
		t.Fatalf("got %d %q; want 200 from the replica", res.StatusCode, b)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}
