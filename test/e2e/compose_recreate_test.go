package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// composeRecreate is a service with a healthcheck that passes a second
// after start; CHANGE_ME is what the tests change between two ups.
const composeRecreate = `name: crec
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo CHANGE_ME > /tmp/v; sleep 1; touch /tmp/ok; exec sleep 1000"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 200ms
      retries: 3
      start_period: 3s
`

// runningWeb counts the running containers of crec's web service.
func runningWeb(t *testing.T) int {
	t.Helper()
	r := skiff("ps")
	if r.Code != 0 {
		t.Errorf("ps: %s", r)
		return -1
	}
	return strings.Count(r.Stdout, "crec-web-")
}

// TestComposeRollingRecreate changes a service with a healthcheck
// between two `up -d --wait`: while the second up runs, every poll sees
// a running container of the service, the new one is healthy before the
// old one stops, and one container is left. A change whose new container
// never becomes healthy fails naming the service and leaves the old one
// running alone.
func TestComposeRollingRecreate(t *testing.T) {
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeRecreate})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	composeRun(t, base, "up", "-d", "--wait")
	if n := runningWeb(t); n != 1 {
		t.Fatalf("after the first up %d web containers run, want 1", n)
	}

	write(strings.Replace(composeRecreate, "CHANGE_ME", "changed", 1))
	var done atomic.Bool
	polls, empty := 0, 0
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; i < 400 && !done.Load(); i++ { // bounded: the up takes a few seconds
			polls++
			if runningWeb(t) < 1 {
				empty++
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	out := composeRun(t, base, "up", "-d", "--wait")
	done.Store(true)
	<-finished
	if polls < 5 || empty > 0 {
		t.Errorf("%d of %d polls during the recreate saw no running web container", empty, polls)
	}
	healthy := strings.Index(out, "Container crec-web-2  Healthy")
	stopped := strings.Index(out, "Container crec-web-1  Stopped")
	if healthy < 0 || stopped < healthy || !strings.Contains(out, "Container crec-web-1  Recreated as crec-web-2") {
		t.Errorf("the new replica was not healthy before the old one stopped:\n%s", out)
	}
	if n := runningWeb(t); n != 1 {
		t.Errorf("after the recreate %d web containers run, want 1", n)
	}
	if ps := composeRun(t, base, "ps"); !strings.Contains(ps, "crec-web-2") || strings.Contains(ps, "crec-web-1") {
		t.Errorf("compose ps does not list the new replica alone:\n%s", ps)
	}
	// exec's default replica 1 finds the one there is, the changed one.
	if out := composeRun(t, base, "exec", "web", "cat", "/tmp/v"); !strings.Contains(out, "changed") {
		t.Errorf("exec web did not run in the new replica: %q", out)
	}
	// An unchanged up keeps it.
	if out := composeRun(t, base, "up", "-d"); !strings.Contains(out, "Container crec-web-2  Running") || strings.Contains(out, "Recreated") {
		t.Errorf("an unchanged up recreated web:\n%s", out)
	}

	// A change whose new container never gets healthy: up fails naming
	// web, the new container is gone, the old one runs on.
	sick := strings.Replace(composeRecreate, "touch /tmp/ok", "echo sick", 1)
	write(strings.Replace(sick, "start_period: 3s", "start_period: 0s", 1))
	fails(t, env.daemon, []string{"service web", "unhealthy", "crec-web-2 keeps running"}, append(base, "up", "-d", "--wait")...)
	if out := must(t, env.daemon, "ps", "-a"); strings.Count(out, "crec-web-") != 1 || !strings.Contains(out, "crec-web-2") {
		t.Errorf("a failed recreate did not leave the old container alone:\n%s", out)
	}
	if n := runningWeb(t); n != 1 {
		t.Errorf("after a failed recreate %d web containers run, want 1", n)
	}
}
