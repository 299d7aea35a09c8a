package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// TestIdleTimeoutCountsFromTheLastRequest: with a 3s idle timeout and the
// default 60s stable window, an App reaches zero a few seconds after its
// last (long) request ended, not a stable window later.
func TestIdleTimeoutCountsFromTheLastRequest(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	doc := `apiVersion: skiff.dev/v1
kind: App
metadata: {name: shortidle}
spec:
  image: hello
  scale: {min: 0, max: 2, concurrency: 5, idleTimeout: 3s}
`
	if r := applyYAML(t, d, doc); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "shortidle")
	eventually(t, 20*time.Second, "shortidle to be ready once", appReady(t, d, "shortidle"))
	if code, body := get(t, addr, "shortidle.localhost", "/?sleep=6s"); code != 200 || !strings.Contains(body, "hello from skiff") {
		t.Fatalf("long request: %d %s", code, body)
	}
	ended := time.Now()
	eventually(t, 40*time.Second, "shortidle to scale to zero", func() bool {
		return countState(replicasOf(t, d, "shortidle"), api.ReplicaRunning, api.ReplicaStarting, api.ReplicaTerminating) == 0
	})
	if took := time.Since(ended); took > 15*time.Second {
		t.Fatalf("reached zero %s after the last request ended, with idleTimeout 3s", took.Round(time.Second))
	}
	if out := must(t, d, "events", "shortidle"); !strings.Contains(out, "no requests for 3s") {
		t.Fatalf("no scale-to-zero event naming the idle timeout:\n%s", out)
	}
}

// TestDrainTimeoutStopsAReplicaWithARequestInFlight: a replica taken out
// of service with a request that outlasts --drain-timeout is stopped
// (SIGTERM, then SIGKILL after the grace period) and removed.
func TestDrainTimeoutStopsAReplicaWithARequestInFlight(t *testing.T) {
	d, err := startDaemonWith("drain", "--drain-timeout", "2s")
	extraDaemons = append(extraDaemons, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	addr := ingressAddr(t, d)
	if r := applyYAML(t, d, helloApp("drainy", "1", "")); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "drainy")
	eventually(t, 30*time.Second, "drainy to be ready", appReady(t, d, "drainy"))
	first := replicasOf(t, d, "drainy")
	if len(first) != 1 {
		t.Fatalf("replicas: %+v", first)
	}
	// A request that would outlast the drain (hello serves it for 28s and
	// waits up to 30s for it on SIGTERM).
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/?sleep=28s", nil)
		req.Host = "drainy.localhost"
		resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond)
	if r := applyYAML(t, d, helloApp("drainy", "2", "")); r.Code != 0 {
		t.Fatal(r)
	}
	start := time.Now()
	eventually(t, 25*time.Second, "the first revision's replica to be removed", func() bool {
		for _, r := range replicasOf(t, d, "drainy") {
			if r.Name == first[0].Name {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	if took > 18*time.Second {
		t.Fatalf("removed %s after the new revision: want the 2s drain plus at most the 10s grace", took.Round(time.Second))
	}
	if code := <-held; code == http.StatusOK {
		t.Fatalf("the request held past the drain was answered 200: the replica was not stopped")
	}
	fmt.Println("drain ended by the limit after", took.Round(100*time.Millisecond))
}

// startDaemonWith starts another daemon with extra flags.
func startDaemonWith(name string, args ...string) (*Daemon, error) {
	d := &Daemon{
		Name:   name,
		Root:   env.tmp + "/root-" + name,
		Socket: env.tmp + "/" + name + ".sock",
		Log:    env.tmp + "/" + name + ".log",
		Args:   args,
	}
	return d, d.Start()
}
