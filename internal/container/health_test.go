package container

import (
	"context"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/store"
)

// checkRuntime is a fake runtime whose execs (health checks) answer
// code, or block until their context ends while block is set.
type checkRuntime struct {
	mu            sync.Mutex
	code          int
	block         bool
	calls, active int
}

func (r *checkRuntime) run(ctx context.Context, id string, p *specs.Process, stdio runtime.ExecIO) (int, error) {
	r.mu.Lock()
	r.calls++
	r.active++
	code, block := r.code, r.block
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.active--; r.mu.Unlock() }()
	stdio.Stdout.Write([]byte("checked\n"))
	if block {
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return code, nil
}

func (r *checkRuntime) counts() (calls, active int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.active
}

func healthStatus(t *testing.T, m *Manager, name string) string {
	t.Helper()
	if h := status(t, m, name).Health; h != nil {
		return h.Status
	}
	return ""
}

// TestHealthMonitor: the manager's monitor turns check results into the
// container's health, stops with the container's run (cancelling the
// check under way), and resumes for a container adopted after a
// restart of the manager.
func TestHealthMonitor(t *testing.T) {
	rt := &checkRuntime{}
	frt := newFakeRuntime()
	frt.exec = rt.run
	dir := t.TempDir()
	m := newTestManager(t, frt, dir)
	ctx := context.Background()
	c, err := m.Create(ctx, api.ContainerCreateRequest{Name: "web", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"serve"},
		Healthcheck: &api.HealthConfig{Test: []string{"CMD", "check"}, Interval: 10 * time.Millisecond, Retries: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := healthStatus(t, m, "web"); got != api.HealthStarting && got != api.HealthHealthy {
		t.Fatalf("health after the start = %q", got)
	}
	waitFor(t, "healthy", func() bool { return healthStatus(t, m, "web") == api.HealthHealthy })
	if h := status(t, m, "web").Health; h.Log[len(h.Log)-1].Output != "checked\n" || len(h.Log) > api.HealthLogKept {
		t.Fatalf("health log = %+v", h.Log)
	}
	rt.mu.Lock()
	rt.code = 1
	rt.mu.Unlock()
	waitFor(t, "unhealthy", func() bool { return healthStatus(t, m, "web") == api.HealthUnhealthy })
	evs, err := m.cfg.Store.ListEvents(ctx, store.EventFilter{Kind: api.EventKindContainer, Name: "web"})
	if err != nil || len(evs) != 2 || evs[0].Reason != "Healthy" || evs[1].Reason != "Unhealthy" ||
		evs[1].Message != "health_status: unhealthy: the health check failed 2 times in a row: checked" {
		t.Fatalf("events = %+v, %v; want Healthy then Unhealthy", evs, err)
	}

	// A check under way when the container exits is cancelled, and no
	// other starts.
	rt.mu.Lock()
	rt.block = true
	rt.mu.Unlock()
	waitFor(t, "a blocked check", func() bool { _, a := rt.counts(); return a == 1 })
	frt.exit(c.ID, 0)
	waitFor(t, "the check to end", func() bool { _, a := rt.counts(); return a == 0 })
	calls, _ := rt.counts()
	time.Sleep(100 * time.Millisecond)
	if after, _ := rt.counts(); after != calls {
		t.Fatalf("%d checks ran after the container exited", after-calls)
	}
	if st := status(t, m, "web"); st.Status != api.StatusExited || st.Health.Status != api.HealthUnhealthy {
		t.Fatalf("state after the exit = %s, health %+v", st.Status, st.Health)
	}

	// A new run starts afresh; the health is kept by the store, and the
	// monitor of an adopted container runs again.
	rt.mu.Lock()
	rt.block, rt.code = false, 0
	rt.mu.Unlock()
	if err := m.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy again", func() bool { return healthStatus(t, m, "web") == api.HealthHealthy })
	m.Close()
	calls, active := rt.counts()
	time.Sleep(50 * time.Millisecond)
	if after, _ := rt.counts(); after != calls || active != 0 {
		t.Fatalf("checks went on after Close: %d more, %d under way", after-calls, active)
	}
	rt.mu.Lock()
	rt.code = 1
	rt.mu.Unlock()
	m2 := newTestManager(t, frt, dir)
	if got := healthStatus(t, m2, "web"); got != api.HealthHealthy {
		t.Fatalf("health after the manager's restart = %q, want the recorded healthy", got)
	}
	waitFor(t, "the adopted container's checks", func() bool { return healthStatus(t, m2, "web") == api.HealthUnhealthy })
}
