package ingress

import (
	"io"
	"net/http"
	"net/http/httptest"
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
