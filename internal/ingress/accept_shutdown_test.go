package ingress

import (
	"net"
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
	_, done := shutdownWithOneConn(t, Config{Addr: "127.0.0.1:0", ClientIdleTimeout: time.Hour}, func(p *Proxy, server net.Conn) net.Conn {
		return &tickConn{Conn: server, tick: p.closeIdleFront}
	})
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}
