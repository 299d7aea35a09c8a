package ingress

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func held(t *testing.T, nc net.Conn) *heldConn {
	t.Helper()
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return &heldConn{Conn: nc, raw: raw}
}

func TestHeldConn(t *testing.T) {
	tests := []struct {
		name string
		size int // bytes held
	}{
		{"small", 200},
		// More than the socket buffers take at once: the rest goes out
		// through the connection's Write.
		{"larger than the socket buffer", 16 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			h := held(t, client)
			msg := bytes.Repeat([]byte("x"), tt.size)
			h.hold = true
			if n, err := h.Write(msg); err != nil || n != len(msg) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if h.hold || len(h.pending) != len(msg) {
				t.Fatalf("the write was not held (hold %v, %d pending)", h.hold, len(h.pending))
			}
			// The peer reads everything, then answers.
			go func() {
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, msg) {
					server.Close()
					return
				}
				server.Write([]byte("answer"))
			}()
			client.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			n, err := h.Read(buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("Read = %q, %v; want the answer", buf[:n], err)
			}
			if len(h.pending) != 0 {
				t.Fatal("the held write is still pending after the read")
			}
		})
	}
}

func TestHeldConnFlushAndErrors(t *testing.T) {
	client, server := tcpPair(t)
	h := held(t, client)
	h.hold = true
	h.Write([]byte("last answer"))
	// A connection closed without another read still sends what it held.
	if err := h.flush(); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, err := server.Read(buf); err != nil || string(buf[:n]) != "last answer" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}

	// A peer that is gone: the held write or the read fails, and the
	// failure comes back from Read, not as a silent success.
	server.(*net.TCPConn).SetLinger(0)
	server.Close()
	time.Sleep(50 * time.Millisecond)
	h.hold = true
	h.Write([]byte("to nobody"))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := h.Read(buf); err == nil {
		t.Fatalf("Read after the peer reset = %d bytes, no error", n)
	}

	// A read deadline bounds the wait that follows the held write.
	c2, s2 := tcpPair(t)
	h2 := held(t, c2)
	h2.hold = true
	h2.Write([]byte("ping"))
	c2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := h2.Read(buf); err == nil || !isTimeout(err) {
		t.Fatalf("Read with a silent peer = %v, want a timeout", err)
	}
	s2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := s2.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("the held write did not go out before the wait: %q, %v", buf[:n], err)
	}
}

// TestHeldConnKeepsUnsentWrites: a second held write does not replace one
// that no read has sent yet; both go out, in order.
func TestHeldConnKeepsUnsentWrites(t *testing.T) {
	client, server := tcpPair(t)
	h := held(t, client)
	h.hold = true
	h.Write([]byte("first "))
	h.hold = true
	h.Write([]byte("second"))
	go func() {
		got := make([]byte, len("first second"))
		if _, err := io.ReadFull(server, got); err != nil {
			server.Close()
			return
		}
		server.Write(got)
	}()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for len(got) < len("first second") {
		n, err := h.Read(buf)
		if err != nil {
			t.Fatalf("Read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "first second" {
		t.Fatalf("the peer received %q, want both held writes in order", got)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestLazyDeadline(t *testing.T) {
	now := time.Unix(1000, 0)
	const timeout = 32 * time.Second // slack: 1s
	tests := []struct {
		name  string
		armed time.Time
		t     time.Time
		want  time.Time
		rearm bool
	}{
		{"none armed", time.Time{}, now, now.Add(time.Second), true},
		{"armed within the slack", now.Add(500 * time.Millisecond), now, now.Add(500 * time.Millisecond), false},
		{"armed exactly at t", now, now, now, false},
		{"armed too early", now.Add(-time.Millisecond), now, now.Add(time.Second), true},
		{"armed too late", now.Add(time.Second + time.Millisecond), now, now.Add(time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rearm := lazyDeadline(tt.armed, tt.t, timeout)
			if !got.Equal(tt.want) || rearm != tt.rearm {
				t.Fatalf("lazyDeadline = %v, %v; want %v, %v", got, rearm, tt.want, tt.rearm)
			}
			if got.Before(tt.t) || got.Sub(tt.t) > timeout/32 {
				t.Fatalf("deadline %v is outside [t, t+timeout/32]", got)
			}
		})
	}
}

// TestHeldConnWrites: writes made as raw system calls behave as
// net.Conn's: a large write waits for the peer to read (all of it
// arrives, in order), a peer that does not read ends it at the write
// deadline, and a write to a reset connection fails.
func TestHeldConnWrites(t *testing.T) {
	client, server := tcpPair(t)
	h := held(t, client)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(server, int64(len(msg))))
		got <- b
	}()
	client.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if n, err := h.Write(msg); err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatalf("the peer received %d bytes, not the %d written", len(b), len(msg))
	}

	// Nobody reads: the write deadline ends the write.
	c2, _ := tcpPair(t)
	h2 := held(t, c2)
	c2.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	n, err := h2.Write(msg)
	if err == nil || !isTimeout(err) || n >= len(msg) {
		t.Fatalf("Write to a peer that does not read = %d, %v; want a timeout", n, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the write deadline ended the write after %v", d)
	}

	// A reset peer: the write fails.
	c3, s3 := tcpPair(t)
	h3 := held(t, c3)
	s3.(*net.TCPConn).SetLinger(0)
	s3.Close()
	time.Sleep(50 * time.Millisecond)
	var werr error
	for range 3 { // the first write after a reset may still be taken
		if _, werr = h3.Write([]byte("to nobody")); werr != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if werr == nil {
		t.Fatal("writes to a reset connection succeeded")
	}
}
