package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

func TestRouting(t *testing.T) { forEachPath(t, testRouting) }

func testRouting(t *testing.T, start func(Config) (*Proxy, string)) {
	p, base := start(Config{})
	shop := newReplica(t, "shop-1", nil)
	api := newReplica(t, "api-1", nil)
	admin := newReplica(t, "admin-1", nil)
	mustUpdate(t, p,
		route1("shop", "shop-00001", []string{"shop.localhost", "Shop.Example.com"}, shop.endpoint()),
		Route{App: "api", Hosts: []string{"shop.example.com"}, PathPrefix: "/api/",
			Backends: []Backend{{Revision: "api-00001", Percent: 100, Endpoints: []Endpoint{api.endpoint()}}}},
		Route{App: "admin", Hosts: []string{"admin.localhost"}, PathPrefix: "/admin",
			Backends: []Backend{{Revision: "admin-00001", Percent: 100, Endpoints: []Endpoint{admin.endpoint()}}}},
	)
	tests := []struct {
		name, host, path string
		code             int
		body             string
	}{
		{"host", "shop.localhost", "/", 200, "shop-1 /"},
		{"host with port", "shop.localhost:8080", "/x", 200, "shop-1 /x"},
		{"host case-insensitive", "SHOP.example.COM", "/", 200, "shop-1 /"},
		{"host with trailing dot", "shop.localhost.", "/", 200, "shop-1 /"},
		{"longest prefix wins", "shop.example.com", "/api/v1", 200, "api-1 /api/v1"},
		{"prefix itself", "shop.example.com", "/api", 200, "api-1 /api"},
		{"prefix on segment boundary only", "shop.example.com", "/apis", 200, "shop-1 /apis"},
		{"prefix route", "admin.localhost", "/admin/users", 200, "admin-1 /admin/users"},
		{"path outside the only prefix", "admin.localhost", "/other", 404, "no app serves path /other on host admin.localhost\n"},
		{"unknown host", "nope.localhost", "/", 404, "no app serves host nope.localhost\n"},
		{"ip host", "127.0.0.1", "/", 404, "no app serves host 127.0.0.1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, base+tt.path, tt.host)
			if code != tt.code || body != tt.body {
				t.Errorf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
		})
	}
}

func TestUpdateRejectsInvalidTables(t *testing.T) {
	ep := Endpoint{ID: "r1", Addr: "127.0.0.1:1"}
	ok := func() Route { return route1("shop", "shop-1", []string{"shop.localhost"}, ep) }
	tests := []struct {
		name   string
		routes func() []Route
		want   string
	}{
		{"empty app", func() []Route { r := ok(); r.App = ""; return []Route{r} }, "app is empty"},
		{"no hosts", func() []Route { r := ok(); r.Hosts = nil; return []Route{r} }, "hosts is empty"},
		{"host with port", func() []Route { r := ok(); r.Hosts = []string{"shop.localhost:80"}; return []Route{r} }, "not a bare host name"},
		{"prefix without slash", func() []Route { r := ok(); r.PathPrefix = "api"; return []Route{r} }, "does not start with /"},
		{"duplicate host and prefix", func() []Route {
			r2 := ok()
			r2.App = "other"
			r2.Hosts = []string{"SHOP.localhost"}
			return []Route{ok(), r2}
		}, `already served by app "shop"`},
		{"no backends", func() []Route { r := ok(); r.Backends = nil; return []Route{r} }, "backends is empty"},
		{"percents not 100", func() []Route {
			r := ok()
			r.Backends = append(r.Backends, Backend{Revision: "shop-2", Percent: 10})
			return []Route{r}
		}, "sum to 110"},
		{"percent out of range", func() []Route { r := ok(); r.Backends[0].Percent = 101; return []Route{r} }, "outside 0..100"},
		{"duplicate revision", func() []Route {
			r := ok()
			r.Backends = []Backend{{Revision: "a", Percent: 50}, {Revision: "a", Percent: 50}}
			return []Route{r}
		}, "appears twice"},
		{"bad endpoint addr", func() []Route {
			r := ok()
			r.Backends[0].Endpoints = []Endpoint{{ID: "x", Addr: "10.0.0.1"}}
			return []Route{r}
		}, "not host:port"},
		{"endpoint id with two addrs", func() []Route {
			r2 := route1("other", "other-1", []string{"other.localhost"}, Endpoint{ID: "r1", Addr: "127.0.0.1:2"})
			return []Route{ok(), r2}
		}, "has two addresses"},
		{"negative timeout", func() []Route { r := ok(); r.Timeout = -1; return []Route{r} }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Update(Table{Routes: tt.routes()})
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid-argument error containing %q", err, tt.want)
			}
			if len(p.snap.Load().hosts) != 0 {
				t.Error("a rejected table changed the routes")
			}
		})
	}
}

func TestWeightedSplit(t *testing.T) {
	p, base := testProxy(t, Config{})
	v1 := newReplica(t, "v1", nil)
	v2 := newReplica(t, "v2", nil)
	idle := newReplica(t, "idle", nil)
	mustUpdate(t, p, Route{App: "shop", Hosts: []string{"shop.localhost"}, Backends: []Backend{
		{Revision: "shop-1", Percent: 90, Endpoints: []Endpoint{v1.endpoint()}},
		{Revision: "shop-2", Percent: 10, Endpoints: []Endpoint{v2.endpoint()}},
		{Revision: "shop-3", Percent: 0, Endpoints: []Endpoint{idle.endpoint()}},
	}})
	const n = 2000
	for range n {
		if code, body := get(t, base+"/", "shop.localhost"); code != 200 {
			t.Fatalf("got %d %q", code, body)
		}
	}
	// 10% of 2000 is 200 with a standard deviation of 13.4; allow 4.5σ.
	if got := v2.count.Load(); got < 140 || got > 260 {
		t.Errorf("revision at 10%% got %d of %d requests, want 200±60", got, n)
	}
	if got := v1.count.Load() + v2.count.Load(); got != n {
		t.Errorf("the two revisions got %d requests, want %d", got, n)
	}
	if got := idle.count.Load(); got != 0 {
		t.Errorf("revision at 0%% got %d requests", got)
	}
	if s := p.RevisionStats("shop-2"); s.Requests != uint64(v2.count.Load()) || s.InFlight != 0 {
		t.Errorf("RevisionStats(shop-2) = %+v, want %d requests, none in flight", s, v2.count.Load())
	}
}

// TestBalancePrefersIdleEndpoint: with one replica stuck on a request, all
// later requests go to the idle one (round robin or random would send it
// half of them).
func TestBalancePrefersIdleEndpoint(t *testing.T) {
	p, base := testProxy(t, Config{})
	g := newGate()
	defer g.open()
	slow := newReplica(t, "slow", g.handler("slow"))
	fast := newReplica(t, "fast", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, slow.endpoint(), fast.endpoint()))

	// Until a request sticks on the slow replica, ties are broken at random.
	var stuck <-chan result
	for i := 0; stuck == nil; i++ {
		if i == 100 {
			t.Fatal("no request reached the slow replica in 100 tries")
		}
		ch := goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
		select {
		case <-g.arrived:
			stuck = ch
		case r := <-ch:
			if r.err != nil || r.body != "fast /" {
				t.Fatalf("got %+v", r)
			}
		}
	}
	before := fast.count.Load()
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		code, body := do(t, mustRequest(t, "GET", base+"/", "shop.localhost", nil).WithContext(ctx))
		cancel()
		if code != 200 || body != "fast /" {
			t.Fatalf("got %d %q, want the idle replica", code, body)
		}
	}
	if got := fast.count.Load() - before; got != 50 {
		t.Errorf("idle replica got %d of 50 requests", got)
	}
	if got := slow.count.Load(); got != 1 {
		t.Errorf("busy replica got %d requests, want only the stuck one", got)
	}
	g.open()
	if r := waitResult(t, stuck); r.code != 200 || r.body != "slow /" {
		t.Errorf("stuck request got %d %q", r.code, r.body)
	}
}

// TestUpdateKeepsRequestsInFlight: a table swap does not cut a request to
// a replica the new table drops, and new requests follow the new table.
func TestUpdateKeepsRequestsInFlight(t *testing.T) { forEachPath(t, testUpdateKeepsRequestsInFlight) }

func testUpdateKeepsRequestsInFlight(t *testing.T, start func(Config) (*Proxy, string)) {
	p, base := start(Config{})
	g := newGate()
	defer g.open()
	old := newReplica(t, "old", g.handler("old"))
	next := newReplica(t, "new", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, old.endpoint()))
	inflight := goDo(mustRequest(t, "GET", base+"/slow", "shop.localhost", nil))
	g.waitArrival(t)

	mustUpdate(t, p, route1("shop", "shop-2", []string{"shop.localhost"}, next.endpoint()))
	if code, body := get(t, base+"/", "shop.localhost"); code != 200 || body != "new /" {
		t.Fatalf("after update got %d %q, want the new replica", code, body)
	}
	g.open()
	if r := waitResult(t, inflight); r.code != 200 || r.body != "old /slow" {
		t.Errorf("request in flight during the update got %d %q", r.code, r.body)
	}
}

// TestDrain: after its removal, an endpoint gets no new request and
// WaitIdle returns once its last request is done.
func TestDrain(t *testing.T) { forEachPath(t, testDrain) }

func testDrain(t *testing.T, start func(Config) (*Proxy, string)) {
	p, base := start(Config{})
	g := newGate()
	defer g.open()
	a := newReplica(t, "a", g.handler("a"))
	b := newReplica(t, "b", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, a.endpoint()))
	inflight := goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
	g.waitArrival(t)

	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, b.endpoint()))
	if got := p.InFlight("a"); got != 1 {
		t.Fatalf("InFlight(a) = %d after removal, want 1", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := p.WaitIdle(ctx, "a")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("WaitIdle with a request in flight = %v, want a deadline error", err)
	}
	for range 20 {
		if code, body := get(t, base+"/", "shop.localhost"); body != "b /" {
			t.Fatalf("got %d %q from a draining table, want replica b", code, body)
		}
	}
	if got := a.count.Load(); got != 1 {
		t.Errorf("removed endpoint got %d requests, want 1", got)
	}

	idle := make(chan error, 1)
	go func() { idle <- p.WaitIdle(context.Background(), "a") }()
	select {
	case err := <-idle:
		t.Fatalf("WaitIdle returned %v before the request finished", err)
	case <-time.After(20 * time.Millisecond):
	}
	g.open()
	if r := waitResult(t, inflight); r.code != 200 {
		t.Errorf("draining request got %d %q", r.code, r.body)
	}
	select {
	case err := <-idle:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitIdle did not return after the request finished")
	}
	if got := p.InFlight("a"); got != 0 {
		t.Errorf("InFlight(a) = %d after the drain", got)
	}
	if err := p.WaitIdle(context.Background(), "never-seen"); err != nil {
		t.Errorf("WaitIdle of an unknown endpoint = %v", err)
	}
}

// TestDrainRace: requests racing a removal never reach the removed
// endpoint once Update has returned and WaitIdle has seen it idle.
func TestDrainRace(t *testing.T) {
	p, base := testProxy(t, Config{})
	a := newReplica(t, "a", nil)
	b := newReplica(t, "b", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, a.endpoint(), b.endpoint()))
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				res, err := testClient.Do(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- errors.New(res.Status)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, b.endpoint()))
	if err := p.WaitIdle(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	after := a.count.Load()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := a.count.Load(); got != after {
		t.Errorf("removed endpoint got %d requests after WaitIdle returned", got-after)
	}
}

func TestFailures(t *testing.T) { forEachPath(t, testFailures) }

func testFailures(t *testing.T, start func(Config) (*Proxy, string)) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	g := newGate()
	defer g.open()
	hang := newReplica(t, "hang", g.handler("hang"))
	reset := newReplica(t, "reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})

	tests := []struct {
		name  string
		route Route
		code  int
		body  string
	}{
		{"connection refused", route1("shop", "shop-1", []string{"x.localhost"}, Endpoint{ID: "shop-1-a", Addr: refused}),
			502, "app shop: replica shop-1-a failed: connection refused\n"},
		{"connection reset", route1("shop", "shop-1", []string{"x.localhost"}, reset.endpoint()),
			502, "app shop: replica reset failed: connection reset\n"},
		{"timeout", func() Route {
			r := route1("slow", "slow-1", []string{"x.localhost"}, hang.endpoint())
			r.Timeout = 100 * time.Millisecond
			return r
		}(), 504, "app slow: no answer within 100ms\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, base := start(Config{})
			mustUpdate(t, p, tt.route)
			start := time.Now()
			code, body := get(t, base+"/", "x.localhost")
			if code != tt.code || body != tt.body {
				t.Errorf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answer took %v", d)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) { forEachPath(t, testForwardedHeaders) }

func testForwardedHeaders(t *testing.T, start func(Config) (*Proxy, string)) {
	p, base := start(Config{})
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	rp := newReplica(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App", "yes")
	})
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	req := mustRequest(t, "GET", base+"/", "shop.localhost:8080", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "drop me")
	req.Header.Set("X-Keep", "keep me")
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := <-seen
	tests := []struct{ name, header, want string }{
		{"for appended", "X-Forwarded-For", "203.0.113.7, 127.0.0.1"},
		{"host set by the ingress", "X-Forwarded-Host", "shop.localhost:8080"},
		{"proto set by the ingress", "X-Forwarded-Proto", "http"},
		{"hop-by-hop named in Connection dropped", "X-Hop", ""},
		{"end-to-end kept", "X-Keep", "keep me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(h.Values(tt.header), ","); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
	if got := <-hosts; got != "shop.localhost:8080" {
		t.Errorf("replica saw Host %q, want the client's", got)
	}
	if res.Header.Get("Keep-Alive") != "" || res.Header.Get("X-App") != "yes" {
		t.Errorf("response headers %v: want hop-by-hop dropped, others kept", res.Header)
	}
}

func TestRevisionStatsInFlight(t *testing.T) {
	p, base := testProxy(t, Config{})
	g := newGate()
	defer g.open()
	rp := newReplica(t, "a", g.handler("a"))
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	var chs []<-chan result
	for range 3 {
		chs = append(chs, goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil)))
		g.waitArrival(t)
	}
	if s := p.RevisionStats("shop-1"); s != (RevisionStats{InFlight: 3, Requests: 3}) {
		t.Errorf("with 3 requests held by the replica: %+v", s)
	}
	if got := p.InFlight("a"); got != 3 {
		t.Errorf("InFlight(a) = %d, want 3", got)
	}
	g.open()
	for _, ch := range chs {
		waitResult(t, ch)
	}
	if s := p.RevisionStats("shop-1"); s != (RevisionStats{Requests: 3}) {
		t.Errorf("after the requests: %+v", s)
	}
	if s := p.Stats(); len(s) != 1 || s["shop-1"].Requests != 3 {
		t.Errorf("Stats() = %v", s)
	}
	if s := p.RevisionStats("unknown"); s != (RevisionStats{}) {
		t.Errorf("unknown revision: %+v", s)
	}
}

func TestStartErrors(t *testing.T) {
	p, _ := testProxy(t, Config{})
	if err := p.Start(context.Background()); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Start = %v, want a conflict", err)
	}
	q, err := New(Config{Addr: p.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a used port = %v, want unavailable", err)
	}
	if _, err := New(Config{Addr: "8080"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("New with a bad address = %v, want invalid", err)
	}
}

// TestRoutingCleansPath: a path with dot segments or empty segments is
// routed as net/http's ServeMux would route it, cleaned, and the replica
// gets the path it was routed by.
func TestRoutingCleansPath(t *testing.T) { forEachPath(t, testRoutingCleansPath) }

func testRoutingCleansPath(t *testing.T, start func(Config) (*Proxy, string)) {
	echoURI := func(id string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", id, r.RequestURI) }
	}
	api := newReplica(t, "api", echoURI("api"))
	web := newReplica(t, "web", echoURI("web"))
	p, base := start(Config{})
	rtAPI := route1("api", "api-1", []string{"shop.localhost"}, api.endpoint())
	rtAPI.PathPrefix = "/api"
	mustUpdate(t, p, rtAPI, route1("web", "web-1", []string{"shop.localhost"}, web.endpoint()))
	tests := []struct{ target, want string }{
		{"/api/x", "api /api/x"},
		{"/api/../x", "web /x"},
		{"/api/%2e%2e/x", "web /x"},
		{"/api/%2E%2E/x?q=1", "web /x?q=1"},
		{"/api/..", "web /"},
		{"/x/../api/y", "api /api/y"},
		{"//api/y", "api /api/y"},
		{"/api/./y", "api /api/y"},
		{"/api/a/../b/", "api /api/b/"},
		{"/api/y/", "api /api/y/"},
		{"/api/a%2Fb?q=%2F", "api /api/a%2Fb?q=%2F"},
		{"/web/../api/z?a=b", "api /api/z?a=b"},
	}
	for _, tt := range tests {
		raw := "GET " + tt.target + " HTTP/1.1\r\nHost: shop.localhost\r\n\r\n"
		res, bodies, _ := rawExchange(t, base, raw, 1)
		if res[0].StatusCode != 200 || bodies[0] != tt.want {
			t.Errorf("GET %s: got %d %q, want %q", tt.target, res[0].StatusCode, bodies[0], tt.want)
		}
	}
}

// TestIsCleanPath: the allocation-free check agrees with cleanPath.
func TestIsCleanPath(t *testing.T) {
	segs := []string{"", ".", "..", "a", ".a", "a.", "..a", "...", "a..b"}
	var paths []string
	for _, a := range segs {
		for _, b := range segs {
			for _, c := range segs {
				paths = append(paths, "/"+a, "/"+a+"/"+b, "/"+a+"/"+b+"/"+c, "/"+a+"/"+b+"/"+c+"/")
			}
		}
	}
	for _, p := range paths {
		if got, want := isCleanPath(p), cleanPath(p) == p; got != want {
			t.Errorf("isCleanPath(%q) = %v, but cleanPath gives %q", p, got, cleanPath(p))
		}
	}
	for _, p := range []string{"", "*"} {
		if !isCleanPath(p) {
			t.Errorf("isCleanPath(%q) = false: only paths starting with / are cleaned", p)
		}
	}
}
