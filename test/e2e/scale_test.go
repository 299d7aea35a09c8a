package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func replicasOf(t *testing.T, d *Daemon, app string) []api.Replica {
	t.Helper()
	var reps []api.Replica
	if err := json.Unmarshal([]byte(must(t, d, "get", "replicas", app, "-o", "json")), &reps); err != nil {
		t.Fatal(err)
	}
	return reps
}

func countState(reps []api.Replica, states ...api.ReplicaState) int {
	n := 0
	for _, r := range reps {
		for _, s := range states {
			if r.State == s {
				n++
			}
		}
	}
	return n
}

func zeroApp(name, extra string) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata:
  name: %s
  annotations: {autoscaling.skiff.dev/window: 3s}
spec:
  image: hello
  scale: {min: 0, max: 4, concurrency: 5, idleTimeout: 2s%s}
`, name, extra)
}

// waitZero waits until name has no running replica.
func waitZero(t *testing.T, d *Daemon, name string) {
	t.Helper()
	eventually(t, 30*time.Second, name+" to scale to zero", func() bool {
		return countState(replicasOf(t, d, name), api.ReplicaRunning, api.ReplicaStarting, api.ReplicaTerminating) == 0
	})
}

func TestScaleToZeroAndColdStart(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	if r := applyYAML(t, d, zeroApp("idle", "")); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "idle")
	eventually(t, 20*time.Second, "idle to be ready once", appReady(t, d, "idle"))
	waitZero(t, d, "idle")
	if out := must(t, d, "events", "idle"); !strings.Contains(out, "ScaledToZero") {
		t.Fatalf("no ScaledToZero event:\n%s", out)
	}
	// The first request wakes it.
	start := time.Now()
	if code, body := get(t, addr, "idle.localhost", "/"); code != 200 || !strings.Contains(body, "hello from skiff") {
		t.Fatalf("cold request: %d %s", code, body)
	}
	t.Logf("cold start through the ingress: %s", time.Since(start))
	waitZero(t, d, "idle")

	// A burst of concurrent requests at zero starts one replica, and every
	// request is answered.
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := get(t, addr, "idle.localhost", "/"); code == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 30 {
		t.Fatalf("%d of 30 burst requests answered", ok.Load())
	}
	if n := len(replicasOf(t, d, "idle")); n != 1 {
		t.Fatalf("a burst at zero made %d replicas, want 1", n)
	}
	if out := must(t, d, "events", "idle"); strings.Count(out, "Activated") < 1 {
		t.Fatalf("no Activated event:\n%s", out)
	}
}

func TestScaleOutAndBackDown(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	applyYAML(t, d, zeroApp("elastic", ""))
	defer d.Run("", "delete", "app", "elastic")
	eventually(t, 20*time.Second, "elastic ready", appReady(t, d, "elastic"))

	// 20 concurrent slow requests for a target of 5 per replica: 4 replicas.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	// slowLoad runs n clients of 50 ms requests until stop is closed.
	slowLoad := func(n int, stop <-chan struct{}) {
		for w := 0; w < n; w++ {
			wg.Go(func() {
				for i := 0; i < 2000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if code, body := get(t, addr, "elastic.localhost", "/?sleep=50ms"); code == 200 {
						ok.Add(1)
					} else {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
					}
				}
			})
		}
	}
	stop := make(chan struct{})
	slowLoad(20, stop)
	start := time.Now()
	eventually(t, 20*time.Second, "scale out to 4 ready replicas", func() bool {
		return countState(replicasOf(t, d, "elastic"), api.ReplicaRunning) >= 4
	})
	t.Logf("scaled out to 4 ready replicas in %s", time.Since(start))
	close(stop)
	wg.Wait()
	// A light load (2 in flight for a target of 5) scales down to one
	// replica; when it ends, the idle timeout takes the App to zero, with
	// no request lost on the way.
	light := make(chan struct{})
	slowLoad(2, light)
	eventually(t, 30*time.Second, "a scale-down to one replica under the light load", func() bool {
		return strings.Contains(must(t, d, "events", "elastic"), "ScaledDown")
	})
	close(light)
	wg.Wait()
	waitZero(t, d, "elastic")
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed while scaling; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	evs := must(t, d, "events", "elastic")
	for _, want := range []string{"ScaledUp", "ScaledDown", "ScaledToZero"} {
		if !strings.Contains(evs, want) {
			t.Fatalf("no %s event:\n%s", want, evs)
		}
	}
}

func TestActivatorLimits(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	// A revision whose replica runs but never gets ready: requests wait,
	// then get 503. (One that cannot run at all is answered at once with
	// the reason: TestNewAppRoutedAtOnce.)
	doc := `apiVersion: skiff.dev/v1
kind: App
metadata:
  name: never
  annotations: {ingress.skiff.dev/activator-timeout: 1s, ingress.skiff.dev/activator-queue: "3"}
spec:
  image: hello
  scale: {min: 0, max: 1}
  probes:
    readiness: {http: /never-ready, period: 200ms}
`
	if r := applyYAML(t, d, doc); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "never")
	eventually(t, 10*time.Second, "never to be reconciled", func() bool {
		return getApp(t, d, "never").Status.LatestCreatedRevision != ""
	})
	start := time.Now()
	code, body := get(t, addr, "never.localhost", "/")
	if code != 503 || !strings.Contains(body, "never") || !strings.Contains(body, "1s") {
		t.Fatalf("held request: %d %s", code, body)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("a 1s activator timeout answered after %s", el)
	}
	// Over the queue bound: 503 at once for the extra requests.
	var wg sync.WaitGroup
	var full atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := get(t, addr, "never.localhost", "/"); code == 503 && strings.Contains(body, "too many") {
				full.Add(1)
			}
		}()
	}
	wg.Wait()
	if full.Load() < 5 {
		t.Fatalf("%d of 8 requests were refused for a full queue of 3, want at least 5", full.Load())
	}
}

func TestPrewarmPool(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	applyYAML(t, d, zeroApp("warm", ", prewarm: 1"))
	defer d.Run("", "delete", "app", "warm")
	eventually(t, 20*time.Second, "warm ready", appReady(t, d, "warm"))
	waitZero(t, d, "warm")
	eventually(t, 20*time.Second, "a prewarmed replica", func() bool {
		return countState(replicasOf(t, d, "warm"), api.ReplicaPrewarmed) == 1
	})
	pre := replicasOf(t, d, "warm")[0].ContainerID
	if code, _ := get(t, addr, "warm.localhost", "/"); code != 200 {
		t.Fatalf("cold request with a prewarmed replica: %d", code)
	}
	reps := replicasOf(t, d, "warm")
	used := false
	for _, r := range reps {
		if r.ContainerID == pre && r.State == api.ReplicaRunning {
			used = true
		}
	}
	if !used {
		t.Fatalf("the prewarmed container did not serve: %+v", reps)
	}
	// The pool refills.
	eventually(t, 20*time.Second, "the pool to refill", func() bool {
		return countState(replicasOf(t, d, "warm"), api.ReplicaPrewarmed) == 1
	})
}
