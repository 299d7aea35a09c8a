package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIngressHandoverPassesHeldRequest: a request the daemon holds for an
// App at zero replicas when it hands over (SIGHUP) is answered by the
// replica through the new daemon, not 503: the old daemon, whose
// controllers stop early in the handover, can never release it itself.
// The replica's readiness is delayed so that the request is still held
// when the old daemon stops.
func TestIngressHandoverPassesHeldRequest(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skiff")
	copyFile(t, env.skiff, bin)
	d, err := startDaemonFrom("heldhandover", bin)
	extraDaemons = append(extraDaemons, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	const app = `apiVersion: skiff.dev/v1
kind: App
metadata: {name: held}
spec:
  image: hello
  probes:
    readiness: {http: /healthz, period: 200ms, initialDelay: 3s}
  scale: {min: 0, max: 1}
`
	if r := applyYAML(t, d, app); r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	addr := ingressAddr(t, d)
	eventually(t, 30*time.Second, "the App's first revision", func() bool {
		return strings.Contains(d.Run("", "get", "revisions", "held").Stdout, "held-00001")
	})

	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "held.localhost"
		res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	time.Sleep(500 * time.Millisecond) // held: the replica is not ready for 3 s
	old := d.pid(t)
	syscall.Kill(old, syscall.SIGHUP)
	d.followHandover(t, old)
	select {
	case g := <-got:
		if !strings.HasPrefix(g, "200 hello from skiff") {
			b, _ := os.ReadFile(d.Log)
			t.Fatalf("the request held across the handover got %q; want the replica's answer\ndaemon log tail:\n%s", g, lastLines(string(b), 30))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the request held across the handover got no answer")
	}
}
