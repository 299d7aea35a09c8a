package ingress

import (
	"net"
	"testing"
	"time"
)

// TestSettle: a reused connection is settled once the read loop reads
// from it again or closes it, and not before.
func TestSettle(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newSettledConn(a)
	if c.settle(20 * time.Millisecond) {
		t.Fatal("settled with no read and no close")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		c.Read(buf[:])
	}()
	if !c.settle(5 * time.Second) {
		t.Fatal("not settled while a read waits on the connection")
	}
	b.Write([]byte("x"))
	<-done
	if c.reading.Load() {
		t.Fatal("still reading after the read returned")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.Close()
	}()
	if !c.settle(5 * time.Second) {
		t.Fatal("not settled once closed")
	}
}
