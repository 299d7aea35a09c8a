package probe

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// app is a loopback HTTP server standing for the container's app: each
// path answers the status set for it (200 by default) and counts hits.
type app struct {
	mu     sync.Mutex
	status map[string]int
	hits   map[string]int
	first  map[string]time.Time
	ip     string
	port   int
}

func newApp(t *testing.T) *app {
	a := &app{status: map[string]int{}, hits: map[string]int{}, first: map[string]time.Time{}}
	a.ip, a.port = server(t, func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		code := a.status[r.URL.Path]
		a.hits[r.URL.Path]++
		if _, ok := a.first[r.URL.Path]; !ok {
			a.first[r.URL.Path] = time.Now()
		}
		a.mu.Unlock()
		if code != 0 {
			w.WriteHeader(code)
		}
	})
	return a
}

func (a *app) set(path string, code int) {
	a.mu.Lock()
	a.status[path] = code
	a.mu.Unlock()
}

func (a *app) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

// fakeRuntime holds one container record; Exec answers with exitCode.
type fakeRuntime struct {
	mu       sync.Mutex
	ctr      api.Container
	gets     atomic.Int64
	exitCode atomic.Int64
	execs    atomic.Int64
}

func (f *fakeRuntime) Get(ctx context.Context, id string) (api.Container, error) {
	f.gets.Add(1)
	if err := ctx.Err(); err != nil {
		return api.Container{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctr, nil
}

func (f *fakeRuntime) Exec(ctx context.Context, id string, cmd []string) (int, error) {
	f.execs.Add(1)
	return int(f.exitCode.Load()), nil
}

// note is one report: "ready", "unready: why", "failing: msg" or
// "restart: why", with the app's hit count of path at that moment.
type note struct {
	what string
	hits int
}

type recorder struct {
	a     *app
	path  string // whose hits each note records
	mu    sync.Mutex
	notes []note
	ch    chan struct{}
}

func (r *recorder) add(what string) {
	r.mu.Lock()
	r.notes = append(r.notes, note{what, r.a.count(r.path)})
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) Seen(api.Container) {}
func (r *recorder) Ready(ready bool, why string) {
	if ready {
		r.add("ready")
	} else {
		r.add("unready: " + why)
	}
}
func (r *recorder) Failing(msg string) { r.add("failing: " + msg) }
func (r *recorder) Restart(why string) { r.add("restart: " + why) }

var _ Reporter = (*recorder)(nil)

// waitFor waits (up to 5s) for the first note starting with prefix.
func (r *recorder) waitFor(t *testing.T, prefix string) note {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for _, n := range r.notes {
			if len(n.what) >= len(prefix) && n.what[:len(prefix)] == prefix {
				r.mu.Unlock()
				return n
			}
		}
		notes := fmt.Sprint(r.notes)
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no %q report in 5s; reports: %s", prefix, notes)
		}
	}
}

func (r *recorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.notes {
		if len(n.what) >= len(prefix) && n.what[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// probe starts a Prober for a running container served by a, whose run
// started at started; reports record path's hits.
func probe(t *testing.T, a *app, ps api.Probes, path string, started time.Time) (*recorder, *fakeRuntime) {
	rt := &fakeRuntime{ctr: api.Container{ID: "c1", State: api.ContainerState{Status: api.StatusRunning, StartedAt: started},
		NetworkSettings: &api.NetworkSettings{IP: a.ip}}}
	rec := &recorder{a: a, path: path, ch: make(chan struct{}, 1)}
	p := &Prober{ID: "c1", Port: a.port, Probes: ps, Runtime: rt, Reporter: rec}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec, rt
}

func httpProbe(path string, period time.Duration, mods ...func(*api.Probe)) *api.Probe {
	p := &api.Probe{HTTP: &api.HTTPGetAction{Path: path}, Period: dur(period)}
	for _, m := range mods {
		m(p)
	}
	return p
}

func TestProberSuccessThreshold(t *testing.T) {
	a := newApp(t)
	rec, _ := probe(t, a, api.Probes{Readiness: httpProbe("/ready", 20*time.Millisecond, func(p *api.Probe) { p.SuccessThreshold = 3 })}, "/ready", time.Now())
	if n := rec.waitFor(t, "ready"); n.hits < 3 {
		t.Fatalf("ready after %d passing probes, want 3", n.hits)
	}
}

func TestProberFailureThreshold(t *testing.T) {
	a := newApp(t)
	rec, _ := probe(t, a, api.Probes{Readiness: httpProbe("/ready", 20*time.Millisecond, func(p *api.Probe) { p.FailureThreshold = 3 })}, "/ready", time.Now())
	before := rec.waitFor(t, "ready").hits
	a.set("/ready", http.StatusServiceUnavailable)
	n := rec.waitFor(t, "unready: readiness probe failed")
	if n.hits-before < 3 {
		t.Fatalf("unready after %d failed probes, want 3", n.hits-before)
	}
	if !rec.has("failing: readiness probe: HTTP GET /ready: status 503") {
		t.Fatalf("the failures were not reported: %v", rec.notes)
	}
	a.set("/ready", http.StatusOK)
	rec.mu.Lock()
	rec.notes = nil
	rec.mu.Unlock()
	rec.waitFor(t, "ready")
}

func TestProberInitialDelay(t *testing.T) {
	a := newApp(t)
	started := time.Now()
	rec, _ := probe(t, a, api.Probes{Readiness: httpProbe("/ready", 20*time.Millisecond, func(p *api.Probe) { p.InitialDelay = dur(300 * time.Millisecond) })}, "/ready", started)
	rec.waitFor(t, "ready")
	a.mu.Lock()
	first := a.first["/ready"]
	a.mu.Unlock()
	if d := first.Sub(started); d < 300*time.Millisecond {
		t.Fatalf("first probe %s after the start, before the initial delay of 300ms", d)
	}
}

func TestProberStartup(t *testing.T) {
	a := newApp(t)
	a.set("/startup", http.StatusServiceUnavailable)
	ps := api.Probes{
		Startup:   httpProbe("/startup", 20*time.Millisecond, func(p *api.Probe) { p.FailureThreshold = 1000 }),
		Readiness: httpProbe("/ready", 20*time.Millisecond),
	}
	rec, _ := probe(t, a, ps, "/startup", time.Now())
	rec.waitFor(t, "failing: startup probe")
	time.Sleep(100 * time.Millisecond)
	if n := a.count("/ready"); n != 0 || rec.has("ready") {
		t.Fatalf("readiness probed %d times before the startup probe passed", n)
	}
	a.set("/startup", http.StatusOK)
	rec.waitFor(t, "ready")
	if a.count("/ready") == 0 {
		t.Fatal("ready without a readiness probe")
	}
}

func TestProberStartupFailureRestarts(t *testing.T) {
	a := newApp(t)
	a.set("/startup", http.StatusInternalServerError)
	ps := api.Probes{Startup: httpProbe("/startup", 20*time.Millisecond, func(p *api.Probe) { p.FailureThreshold = 3 })}
	rec, _ := probe(t, a, ps, "/startup", time.Now())
	n := rec.waitFor(t, "restart: startup probe failed 3 times")
	if n.hits < 3 {
		t.Fatalf("restart asked after %d startup probes, want 3", n.hits)
	}
}

func TestProberLivenessRestarts(t *testing.T) {
	a := newApp(t)
	ps := api.Probes{Readiness: httpProbe("/ready", 20*time.Millisecond),
		Liveness: httpProbe("/live", 20*time.Millisecond, func(p *api.Probe) { p.FailureThreshold = 2 })}
	rec, _ := probe(t, a, ps, "/live", time.Now())
	before := rec.waitFor(t, "ready").hits
	a.set("/live", http.StatusInternalServerError)
	n := rec.waitFor(t, "restart: liveness probe failed 2 times")
	if n.hits-before < 2 {
		t.Fatalf("restart after %d failed liveness probes, want 2", n.hits-before)
	}
	if !rec.has("unready: liveness probe failed") {
		t.Fatalf("not made unready before the restart: %v", rec.notes)
	}
}

// A liveness probe waiting for its initial delay must not make the
// prober spin.
func TestProberLivenessDelayWaits(t *testing.T) {
	a := newApp(t)
	ps := api.Probes{Readiness: httpProbe("/ready", 100*time.Millisecond),
		Liveness: httpProbe("/live", 100*time.Millisecond, func(p *api.Probe) { p.InitialDelay = dur(time.Minute) })}
	rec, rt := probe(t, a, ps, "/ready", time.Now())
	rec.waitFor(t, "ready")
	gets := rt.gets.Load()
	time.Sleep(500 * time.Millisecond)
	if n := rt.gets.Load() - gets; n > 20 {
		t.Fatalf("%d reads of the container in 500ms with probes every 100ms", n)
	}
	if a.count("/live") != 0 {
		t.Fatal("liveness probed before its initial delay")
	}
}

func TestProberExecAndTCP(t *testing.T) {
	a := newApp(t)
	rec, rt := probe(t, a, api.Probes{Readiness: &api.Probe{Exec: &api.ExecAction{Command: []string{"check"}}, Period: dur(20 * time.Millisecond)}}, "/", time.Now())
	rec.waitFor(t, "ready")
	rt.exitCode.Store(1)
	rec.waitFor(t, "unready: readiness probe failed: exec [check]: exit code 1")

	// Without a readiness probe, a TCP connection to the port.
	rec, _ = probe(t, a, api.Probes{}, "/", time.Now())
	rec.waitFor(t, "ready")
}

func TestProberContainerNotRunning(t *testing.T) {
	a := newApp(t)
	rec, rt := probe(t, a, api.Probes{Readiness: httpProbe("/ready", 20*time.Millisecond)}, "/ready", time.Now())
	rec.waitFor(t, "ready")
	rt.mu.Lock()
	rt.ctr.State.Status = api.StatusExited
	rt.mu.Unlock()
	rec.waitFor(t, "unready: container is exited")
}
