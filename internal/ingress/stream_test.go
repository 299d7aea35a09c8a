package ingress

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamingIsNotBuffered: the first part of a response reaches the
// client while the replica is still writing the rest.
func TestStreamingIsNotBuffered(t *testing.T) { forEachPath(t, testStreamingIsNotBuffered) }

func testStreamingIsNotBuffered(t *testing.T, start func(Config) (*Proxy, string)) {
	tests := []struct {
		name        string
		contentType string
		first, rest string
	}{
		{"chunked body", "text/plain", "first chunk\n", "rest\n"},
		{"server-sent events", "text/event-stream", "event: tick\ndata: 1\n\n", "event: tick\ndata: 2\n\n"},
		{"json lines", "application/x-ndjson", "{\"n\":1}\n", "{\"n\":2}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, base := start(Config{})
			more := make(chan struct{})
			defer close(more)
			rp := newReplica(t, "stream", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.first)
				w.(http.Flusher).Flush()
				select {
				case <-more:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, tt.rest)
			})
			mustUpdate(t, p, route1("feed", "feed-1", []string{"feed.localhost"}, rp.endpoint()))
			res, err := testClient.Do(mustRequest(t, "GET", base+"/events", "feed.localhost", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q", got)
			}
			buf := make([]byte, len(tt.first))
			got := make(chan error, 1)
			go func() {
				_, err := io.ReadFull(res.Body, buf)
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil || string(buf) != tt.first {
					t.Fatalf("read %q, %v", buf, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the first chunk did not arrive while the replica held the rest back")
			}
			more <- struct{}{}
			rest, err := io.ReadAll(res.Body)
			if err != nil || string(rest) != tt.rest {
				t.Errorf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestRequestBodyStreams: a large upload is streamed to the replica.
func TestRequestBodyStreams(t *testing.T) {
	p, base := testProxy(t, Config{})
	rp := newReplica(t, "sink", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	mustUpdate(t, p, route1("sink", "sink-1", []string{"sink.localhost"}, rp.endpoint()))
	const size = 8 << 20
	code, body := do(t, mustRequest(t, "POST", base+"/", "sink.localhost", io.LimitReader(rand.Reader, size)))
	if code != 200 || body != fmt.Sprintf("%d <nil>", size) {
		t.Errorf("got %d %q", code, body)
	}
}

// wsAccept computes Sec-WebSocket-Accept (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final text frame, masked when mask is set.
func wsWrite(w io.Writer, payload []byte, mask bool) error {
	hdr := []byte{0x81, byte(len(payload))} // FIN + text; payloads < 126 bytes
	if mask {
		hdr[1] |= 0x80
		key := []byte{1, 2, 3, 4}
		hdr = append(hdr, key...)
		masked := make([]byte, len(payload))
		for i := range payload {
			masked[i] = payload[i] ^ key[i%4]
		}
		payload = masked
	}
	_, err := w.Write(append(hdr, payload...))
	return err
}

// wsRead reads one small frame and unmasks it.
func wsRead(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[1] & 0x7f)
	if n >= 126 {
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	}
	var key [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return payload, nil
}

// wsEchoHandler is a minimal WebSocket server echoing text frames.
func wsEchoHandler(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	brw.Flush()
	for {
		msg, err := wsRead(brw)
		if err != nil {
			return
		}
		if err := wsWrite(conn, append([]byte("echo: "), msg...), false); err != nil {
			return
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	p, base := testProxy(t, Config{})
	rp := newReplica(t, "ws", wsEchoHandler)
	mustUpdate(t, p, route1("chat", "chat-1", []string{"chat.localhost"}, rp.endpoint()))

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: chat.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake answer %s %v", res.Status, res.Header)
	}
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := wsWrite(conn, []byte(msg), true); err != nil {
			t.Fatal(err)
		}
		got, err := wsRead(br)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	if got := p.InFlight("ws"); got != 1 {
		t.Errorf("an open WebSocket session counts as a request in flight: InFlight = %d", got)
	}
}

// TestH2C: clients speaking cleartext HTTP/2 are served, replicas are
// spoken to in HTTP/1.1, and many streams share one client connection.
func TestH2C(t *testing.T) {
	p, base := testProxy(t, Config{})
	rp := newReplica(t, "h2", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.Header.Get("X-Forwarded-Proto"))
	})
	mustUpdate(t, p, route1("h2", "h2-1", []string{"h2.localhost"}, rp.endpoint()))

	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	var dials sync.Map
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				dials.Store(c.LocalAddr().String(), true)
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	// One request opens the connection; ten concurrent ones share it.
	var wg sync.WaitGroup
	errs := make(chan error, 11)
	for i := range 11 {
		if i == 1 {
			wg.Wait()
		}
		wg.Go(func() {
			req, _ := http.NewRequest("GET", base+"/", nil)
			req.Host = "h2.localhost"
			res, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.ProtoMajor != 2 || string(b) != "HTTP/1.1 http" {
				errs <- fmt.Errorf("client saw %s, replica answered %q", res.Proto, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	dials.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d client connections for 11 HTTP/2 requests, want 1", n)
	}
}
