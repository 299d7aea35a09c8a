package ingress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connCounter is a replica that counts its open connections.
type connCounter struct {
	srv  *httptest.Server
	open atomic.Int64
}

func newConnCounter(t *testing.T) *connCounter {
	cc := &connCounter{}
	cc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	cc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cc.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.open.Add(-1)
		}
	}
	cc.srv.Start()
	t.Cleanup(cc.srv.Close)
	return cc
}

// TestPooledConnectionsClosed: the ingress closes its kept-alive
// connections to a replica once they idle past IdleConnTimeout, and at
// once when the replica leaves the table.
func TestPooledConnectionsClosed(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		idle := newConnCounter(t)
		removed := newConnCounter(t)
		p, base := start(Config{IdleConnTimeout: 100 * time.Millisecond})
		mustUpdate(t, p,
			route1("idle", "idle-1", []string{"idle.localhost"}, Endpoint{ID: "idle", Addr: idle.srv.Listener.Addr().String()}),
			route1("gone", "gone-1", []string{"gone.localhost"}, Endpoint{ID: "gone", Addr: removed.srv.Listener.Addr().String()}))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for _, host := range []string{"idle.localhost", "gone.localhost"} {
					if code, _ := get(t, base+"/", host); code != 200 {
						t.Errorf("%s: %d", host, code)
					}
				}
			})
		}
		wg.Wait()
		if idle.open.Load() == 0 || removed.open.Load() == 0 {
			t.Fatalf("no kept-alive connections to the replicas (%d, %d)", idle.open.Load(), removed.open.Load())
		}
		mustUpdate(t, p, route1("idle", "idle-1", []string{"idle.localhost"}, Endpoint{ID: "idle", Addr: idle.srv.Listener.Addr().String()}))
		eventually(t, "the removed replica's connections to close", func() bool { return removed.open.Load() == 0 })
		eventually(t, "idle connections to close", func() bool { return idle.open.Load() == 0 })
	})
}

// TestUpdatesUnderTraffic: tables swapped while requests flow never make a
// request fail.
func TestUpdatesUnderTraffic(t *testing.T) {
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		p, base := start(Config{})
		var eps []Endpoint
		for i := range 3 {
			eps = append(eps, newReplica(t, fmt.Sprintf("r%d", i), nil).endpoint())
		}
		table := func(i int) Route {
			// Two of the three replicas, and the revision split, change
			// with every update.
			return Route{App: "shop", Hosts: []string{"shop.localhost"}, Backends: []Backend{
				{Revision: "shop-1", Percent: 50 + i%2*40, Endpoints: []Endpoint{eps[i%3], eps[(i+1)%3]}},
				{Revision: "shop-2", Percent: 50 - i%2*40, Endpoints: []Endpoint{eps[(i+2)%3]}},
			}}
		}
		mustUpdate(t, p, table(0))
		stop := make(chan struct{})
		errs := make(chan error, 4)
		var served atomic.Int64
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
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						errs <- errors.New(res.Status)
						return
					}
					served.Add(1)
				}
			}()
		}
		for i := 1; i <= 60; i++ {
			mustUpdate(t, p, table(i))
			time.Sleep(2 * time.Millisecond)
		}
		close(stop)
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if served.Load() == 0 {
			t.Fatal("no request served")
		}
		for _, ep := range eps {
			if n := p.InFlight(ep.ID); n != 0 {
				t.Errorf("InFlight(%s) = %d after the traffic", ep.ID, n)
			}
		}
	})
}

// TestQuietCheck: the check of an idle replica connection sees bytes the
// replica sent and its close, and costs no allocation.
func TestQuietCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan net.Conn, 2)
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c
		}
	}()
	u := &upstream{dialer: &net.Dialer{}, addr: ln.Addr().String()}
	chatty, err := u.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer chatty.nc.Close()
	closing, err := u.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer closing.nc.Close()
	p1, p2 := <-peers, <-peers
	defer p1.Close()
	if !chatty.quiet() || !closing.quiet() {
		t.Fatal("a fresh connection is not quiet")
	}
	if n := testing.AllocsPerRun(100, func() { chatty.quiet() }); n != 0 {
		t.Errorf("quiet allocates %v times", n)
	}
	chatty.nc.SetReadDeadline(aLongTimeAgo) // a past deadline does not matter
	p1.Write([]byte("H"))
	p2.Close()
	eventually(t, "the byte and the close to be seen", func() bool { return !chatty.quiet() && !closing.quiet() })
}
