package ingress

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// The benchmarks compare a request through the ingress with the same
// request sent to the replica directly, over real loopback connections.
//
//	go test -run '^$' -bench . -benchmem ./internal/ingress/

var helloBody = []byte("hello from skiff\n")

func benchReplica(b *testing.B) *replica {
	return newReplica(b, "hello-1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(helloBody)
	})
}

func benchGet(b *testing.B, c *http.Client, url string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = "hello.localhost"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

// BenchmarkDirect: client → replica.
func BenchmarkDirect(b *testing.B) {
	rp := benchReplica(b)
	benchGet(b, benchClient(), rp.srv.URL+"/")
}

// BenchmarkIngress: client → ingress → replica.
func BenchmarkIngress(b *testing.B) {
	for _, path := range proxyPaths {
		b.Run(path.name, func(b *testing.B) {
			rp := benchReplica(b)
			p, base := testProxyPath(b, Config{}, path.noFront, path.noFastPath)
			mustUpdate(b, p, route1("hello", "hello-1", []string{"hello.localhost"}, rp.endpoint()))
			benchGet(b, benchClient(), base+"/")
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so that
// BenchmarkServeHTTP counts the proxy's allocations alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP calls the proxy's handler directly (no client
// connection): its allocations are the ingress's own plus those of the
// replica round trip (http.Transport).
func BenchmarkServeHTTP(b *testing.B) {
	for _, path := range proxyPaths {
		b.Run(path.name, func(b *testing.B) {
			rp := benchReplica(b)
			p, _ := testProxy(b, Config{})
			p.noFastPath = path.noFastPath
			mustUpdate(b, p, route1("hello", "hello-1", []string{"hello.localhost"}, rp.endpoint()))
			req := httptest.NewRequest(http.MethodGet, "http://hello.localhost/", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("User-Agent", "bench")
			req.Header.Set("Accept", "*/*")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: make(http.Header)}
				for pb.Next() {
					clear(w.h)
					p.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkTransport is the round trip ServeHTTP makes, alone: the floor
// of BenchmarkServeHTTP.
func BenchmarkTransport(b *testing.B) {
	rp := benchReplica(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	benchGet(b, c, rp.srv.URL+"/")
}

// BenchmarkRoute is the routing decision alone: snapshot, host, prefix,
// revision and endpoint choice.
func BenchmarkRoute(b *testing.B) {
	p, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	eps := []Endpoint{{ID: "a", Addr: "127.0.0.1:1"}, {ID: "b", Addr: "127.0.0.1:2"}, {ID: "c", Addr: "127.0.0.1:3"}}
	mustUpdate(b, p,
		Route{App: "shop", Hosts: []string{"shop.localhost"}, Backends: []Backend{
			{Revision: "shop-1", Percent: 90, Endpoints: eps},
			{Revision: "shop-2", Percent: 10, Endpoints: eps[:1]},
		}},
		Route{App: "api", Hosts: []string{"shop.localhost"}, PathPrefix: "/api", Backends: []Backend{
			{Revision: "api-1", Percent: 100, Endpoints: eps},
		}},
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt := p.snap.Load().route(requestHost("Shop.localhost:8080"), "/api/x")
			t := rt.pick().choose()
			if !t.ep.acquire() {
				b.Fatal("acquire failed")
			}
			t.ep.release()
		}
	})
}

// rawReplica is a replica answering every request on a connection with
// the same bytes, without allocating: benchmarks through it count the
// ingress's allocations alone.
func rawReplica(b *testing.B) Endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 17\r\n\r\nhello from skiff\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return Endpoint{ID: "raw", Addr: ln.Addr().String()}
}

// skipHead reads up to the end of a request or response head and, for a
// response, its Content-Length body.
func skipHead(br *bufio.Reader) error {
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	_, err := br.Discard(length)
	return err
}

// BenchmarkFront: raw keep-alive clients → ingress → raw replica. Its
// allocations are the ingress's own, per request.
func BenchmarkFront(b *testing.B) {
	for _, path := range proxyPaths {
		b.Run(path.name, func(b *testing.B) {
			p, base := testProxyPath(b, Config{}, path.noFront, path.noFastPath)
			mustUpdate(b, p, route1("hello", "hello-1", []string{"hello.localhost"}, rawReplica(b)))
			req := []byte("GET / HTTP/1.1\r\nHost: hello.localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			runKeptAlive(b, req, func() (net.Conn, error) { return net.Dial("tcp", strings.TrimPrefix(base, "http://")) })
		})
	}
}

// BenchmarkFrontTLS is BenchmarkFront over TLS (kept-alive HTTP/1.1, no
// handshake per request): the front, or net/http's TLS server.
func BenchmarkFrontTLS(b *testing.B) {
	for _, path := range tlsPaths {
		b.Run(path.name, func(b *testing.B) {
			p, _ := testProxyPath(b, Config{}, path.noFront, false)
			mustUpdate(b, p, route1("hello", "hello-1", []string{"hello.localhost"}, rawReplica(b)))
			ca, addr := startTLS(b, p)
			conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "hello.localhost"}
			req := []byte("GET / HTTP/1.1\r\nHost: hello.localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			runKeptAlive(b, req, func() (net.Conn, error) { return tls.Dial("tcp", addr, conf) })
		})
	}
}

// runKeptAlive sends req over and over on kept-alive connections from
// dial, one per parallel worker, reading each answer's head.
func runKeptAlive(b *testing.B, req []byte, dial func() (net.Conn, error)) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 16<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := skipHead(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
