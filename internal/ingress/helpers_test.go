package ingress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyPaths are the ways the ingress serves a request: its own HTTP/1.1
// front with the fast path to replicas (the default for plain requests),
// net/http's server with the fast path, and net/http's server with
// httputil.ReverseProxy (what requests with bodies and upgrades take).
var proxyPaths = []struct {
	name       string
	noFront    bool
	noFastPath bool
}{
	{"front", false, false},
	{"nethttp+fast", true, false},
	{"nethttp+httputil", true, true},
}

// forEachPath runs f once per proxy path, as subtests.
func forEachPath(t *testing.T, f func(t *testing.T, start func(Config) (*Proxy, string))) {
	for _, path := range proxyPaths {
		t.Run(path.name, func(t *testing.T) {
			f(t, func(cfg Config) (*Proxy, string) { return testProxyPath(t, cfg, path.noFront, path.noFastPath) })
		})
	}
}

// testProxy starts a Proxy on a loopback port and returns it with its
// base URL.
func testProxy(t testing.TB, cfg Config) (*Proxy, string) {
	t.Helper()
	return testProxyPath(t, cfg, false, false)
}

// testProxyPath starts a proxy serving the given way.
func testProxyPath(t testing.TB, cfg Config, noFront, noFastPath bool) (*Proxy, string) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.noFront, p.noFastPath = noFront, noFastPath
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, "http://" + p.Addr().String()
}

// replica is a test backend that counts its requests and names itself in
// its answers.
type replica struct {
	id    string
	srv   *httptest.Server
	count atomic.Int64
}

// newReplica starts a backend answering "<id> <path>" unless h is given.
func newReplica(t testing.TB, id string, h http.HandlerFunc) *replica {
	t.Helper()
	rp := &replica{id: id}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", id, r.URL.Path)
		}
	}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.count.Add(1)
		h(w, r)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *replica) endpoint() Endpoint {
	return Endpoint{ID: rp.id, Addr: rp.srv.Listener.Addr().String()}
}

// route1 is a route of app to one revision.
func route1(app, rev string, hosts []string, eps ...Endpoint) Route {
	return Route{App: app, Hosts: hosts, Backends: []Backend{{Revision: rev, Percent: 100, Endpoints: eps}}}
}

func mustUpdate(t testing.TB, p *Proxy, routes ...Route) {
	t.Helper()
	if err := p.Update(Table{Routes: routes}); err != nil {
		t.Fatal(err)
	}
}

var testClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	Timeout:   20 * time.Second,
}

// get sends GET url with the Host header host and returns status and body.
func get(t testing.TB, url, host string) (int, string) {
	t.Helper()
	return do(t, mustRequest(t, http.MethodGet, url, host, nil))
}

func mustRequest(t testing.TB, method, url, host string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// gate is a backend handler that blocks each request until released, and
// tells when a request arrived.
type gate struct {
	arrived chan string
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{arrived: make(chan string, 100), release: make(chan struct{})}
}

func (g *gate) handler(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.arrived <- id
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "%s %s", id, r.URL.Path)
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// waitArrival waits for a request to reach a gated backend.
func (g *gate) waitArrival(t testing.TB) string {
	t.Helper()
	select {
	case id := <-g.arrived:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the backend")
		return ""
	}
}

// result is what an asynchronous request got.
type result struct {
	code int
	body string
	err  error
}

// goDo sends req in the background.
func goDo(req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		res, err := testClient.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		ch <- result{code: res.StatusCode, body: string(b), err: err}
	}()
	return ch
}

func waitResult(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("request did not finish")
		return result{}
	}
}

// eventually polls cond for up to 10s; tests use it only to observe state
// from the outside, never the proxy itself.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
