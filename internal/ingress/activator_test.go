package ingress

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingActivator records Activate calls.
type countingActivator struct {
	mu    sync.Mutex
	calls []string // "app/revision"
	ch    chan string
}

func newCountingActivator() *countingActivator {
	return &countingActivator{ch: make(chan string, 100)}
}

func (a *countingActivator) Activate(ctx context.Context, app, revision string) {
	a.mu.Lock()
	a.calls = append(a.calls, app+"/"+revision)
	a.mu.Unlock()
	a.ch <- app + "/" + revision
}

func (a *countingActivator) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

var _ Activator = (*countingActivator)(nil)

// TestActivatorHoldsUntilReady: concurrent requests for a revision with
// no replica are held, ask for one replica once, and are all released
// as soon as an Update brings one.
func TestActivatorHoldsUntilReady(t *testing.T) {
	act := newCountingActivator()
	p, base := testProxy(t, Config{Activator: act})
	rp := newReplica(t, "shop-1-a", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}))

	const n = 20
	var chs []<-chan result
	for range n {
		chs = append(chs, goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil)))
	}
	eventually(t, "20 held requests", func() bool { return p.RevisionStats("shop-1").Queued == n })
	if got := act.count(); got != 1 {
		t.Fatalf("Activate called %d times for %d concurrent held requests, want 1", got, n)
	}
	if got := <-act.ch; got != "shop/shop-1" {
		t.Errorf("Activate(%s), want shop/shop-1", got)
	}
	if s := p.RevisionStats("shop-1"); s.InFlight != n || s.Requests != n {
		t.Errorf("held requests count as in flight: %+v", s)
	}

	start := time.Now()
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	for _, ch := range chs {
		if r := waitResult(t, ch); r.code != 200 || r.body != "shop-1-a /" {
			t.Fatalf("held request got %d %q", r.code, r.body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("held requests took %v to be released after the update", d)
	}
	if s := p.RevisionStats("shop-1"); s.InFlight != 0 || s.Queued != 0 {
		t.Errorf("after release: %+v", s)
	}
	if got := act.count(); got != 1 {
		t.Errorf("Activate called %d times in all, want 1", got)
	}
}

// TestActivatorAgainAfterWave: once the held requests are gone, a new one
// asks again (an activation may have failed).
func TestActivatorAgainAfterWave(t *testing.T) {
	act := newCountingActivator()
	p, base := testProxy(t, Config{Activator: act})
	r := route1("shop", "shop-1", []string{"shop.localhost"})
	r.QueueTimeout = 30 * time.Millisecond
	mustUpdate(t, p, r)
	for i := 1; i <= 2; i++ {
		if code, _ := get(t, base+"/", "shop.localhost"); code != 503 {
			t.Fatalf("got %d", code)
		}
		if got := act.count(); got != i {
			t.Errorf("after wave %d: %d Activate calls", i, got)
		}
	}
}

func TestActivatorLimits(t *testing.T) {
	tests := []struct {
		name     string
		maxQueue int
		timeout  time.Duration
		held     int // requests held before the one checked
		body     string
		minWait  time.Duration
	}{
		{"queue full", 2, time.Minute, 2, "app shop: too many requests waiting for a replica to start\n", 0},
		{"queue timeout", 10, 150 * time.Millisecond, 0, "app shop: no replica became ready within 150ms\n", 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act := newCountingActivator()
			p, base := testProxy(t, Config{Activator: act})
			r := route1("shop", "shop-1", []string{"shop.localhost"})
			r.MaxQueue, r.QueueTimeout = tt.maxQueue, tt.timeout
			mustUpdate(t, p, r)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range tt.held {
				goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil).WithContext(ctx))
			}
			eventually(t, "held requests", func() bool { return p.RevisionStats("shop-1").Queued == int64(tt.held) })
			start := time.Now()
			code, body := get(t, base+"/", "shop.localhost")
			if d := time.Since(start); code != 503 || body != tt.body || d < tt.minWait || d > tt.minWait+2*time.Second {
				t.Errorf("got %d %q after %v, want 503 %q after %v", code, body, d, tt.body, tt.minWait)
			}
			cancel()
			eventually(t, "canceled held requests to leave", func() bool { return p.RevisionStats("shop-1").Queued == 0 })
		})
	}
}

// TestActivatorZeroPercentNeverChosen: a backend at 0% with no endpoints
// is never chosen, so its revision is never activated.
func TestActivatorZeroPercentNeverChosen(t *testing.T) {
	act := newCountingActivator()
	p, base := testProxy(t, Config{Activator: act})
	rp := newReplica(t, "a", nil)
	mustUpdate(t, p, Route{App: "shop", Hosts: []string{"shop.localhost"}, Backends: []Backend{
		{Revision: "shop-1", Percent: 100, Endpoints: []Endpoint{rp.endpoint()}},
		{Revision: "shop-2", Percent: 0},
	}})
	for range 200 {
		if code, _ := get(t, base+"/", "shop.localhost"); code != 200 {
			t.Fatalf("got %d", code)
		}
	}
	if got := act.count(); got != 0 {
		t.Errorf("Activate called %d times", got)
	}
}

// TestHeldRequestFollowsTrafficChange: a request held for a revision that
// leaves the route goes to the revision that replaced it.
func TestHeldRequestFollowsTrafficChange(t *testing.T) {
	act := newCountingActivator()
	p, base := testProxy(t, Config{Activator: act})
	rp := newReplica(t, "v2", nil)
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}))
	ch := goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
	eventually(t, "a held request", func() bool { return p.RevisionStats("shop-1").Queued == 1 })
	mustUpdate(t, p, route1("shop", "shop-2", []string{"shop.localhost"}, rp.endpoint()))
	if r := waitResult(t, ch); r.code != 200 || r.body != "v2 /" {
		t.Errorf("got %d %q", r.code, r.body)
	}
	if s := p.RevisionStats("shop-2"); s.InFlight != 0 {
		t.Errorf("stats after the move: %+v", s)
	}
}

func TestShutdownAnswersHeldRequests(t *testing.T) {
	p, base := testProxy(t, Config{})
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}))
	ch := goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
	eventually(t, "a held request", func() bool { return p.RevisionStats("shop-1").Queued == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(ctx) }()
	if r := waitResult(t, ch); r.code != 503 || r.body != "app shop: the ingress is shutting down\n" {
		t.Errorf("held request got %d %q", r.code, r.body)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

// TestUnavailableAnswersAtOnce: a route that says why its app cannot get
// a replica answers 503 with that reason instead of holding requests, and
// releases the requests it held when the table that says so lands; a
// replica that comes later still serves.
func TestUnavailableAnswersAtOnce(t *testing.T) {
	act := newCountingActivator()
	p, base := testProxy(t, Config{Activator: act})
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}))
	held := goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))
	eventually(t, "a held request", func() bool { return p.RevisionStats("shop-1").Queued == 1 })

	down := route1("shop", "shop-1", []string{"shop.localhost"})
	down.Unavailable = "app shop cannot start: ImageNotFound: no image nope"
	start := time.Now()
	mustUpdate(t, p, down)
	if r := waitResult(t, held); r.code != 503 || !strings.Contains(r.body, down.Unavailable) {
		t.Fatalf("held request got %d %q, want 503 naming the reason", r.code, r.body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the held request was answered %v after the update", d)
	}
	if r := waitResult(t, goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))); r.code != 503 || !strings.Contains(r.body, "ImageNotFound") {
		t.Fatalf("new request got %d %q", r.code, r.body)
	}
	if s := p.RevisionStats("shop-1"); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("after the answers: %+v", s)
	}
	// With an endpoint, the route serves whatever it says.
	rp := newReplica(t, "shop-1-a", nil)
	up := route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint())
	up.Unavailable = down.Unavailable
	mustUpdate(t, p, up)
	if r := waitResult(t, goDo(mustRequest(t, "GET", base+"/", "shop.localhost", nil))); r.code != 200 {
		t.Fatalf("with a replica: %d %q", r.code, r.body)
	}
}
