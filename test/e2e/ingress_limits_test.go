package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallBody sends a POST with Content-Length 1000 and the first bytes of
// its body to the ingress, then, every trickle (0: never), one more
// byte; it returns the status the ingress answered and how long the
// answer took (status 0: none within 20s).
func stallBody(addr, host string, trickle time.Duration) (int, time.Duration) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, 0
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 1000\r\n\r\n0123456789")
	done := make(chan struct{})
	defer close(done)
	if trickle > 0 {
		go func() {
			for range 100 {
				select {
				case <-done:
					return
				case <-time.After(trickle):
				}
				if _, err := io.WriteString(conn, "x"); err != nil {
					return
				}
			}
		}()
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, time.Since(start)
	}
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// TestIngressStalledBodies: clients that stall or trickle their request
// bodies to an App with a 2s ingress timeout get 408 within it, stop
// counting as in flight, and the App then scales to zero (which a request
// in flight would prevent).
func TestIngressStalledBodies(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	doc := `apiVersion: skiff.dev/v1
kind: App
metadata:
  name: stall
  annotations: {autoscaling.skiff.dev/window: 3s}
spec:
  image: echoserver
  ingress: {timeout: 2s}
  scale: {min: 0, max: 2, concurrency: 100, idleTimeout: 2s}
`
	if r := applyYAML(t, d, doc); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "stall")
	eventually(t, 20*time.Second, "stall to be ready", appReady(t, d, "stall"))
	if code, body := get(t, addr, "stall.localhost", "/"); code != 200 {
		t.Fatalf("GET: %d %s", code, body)
	}

	const n = 50
	type answer struct {
		code int
		took time.Duration
	}
	answers := make(chan answer, n+1)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			code, took := stallBody(addr, "stall.localhost", 0)
			answers <- answer{code, took}
		})
	}
	wg.Go(func() {
		code, took := stallBody(addr, "stall.localhost", 200*time.Millisecond)
		answers <- answer{code, took}
	})
	// While the clients still wait (they give up after 20s), no request
	// of theirs counts as in flight any more.
	eventually(t, 5*time.Second, "the stalled requests to count as in flight", func() bool { return inFlight(t, "stall") > 0 })
	eventually(t, 8*time.Second, "the in-flight metric of stall to return to 0", func() bool { return inFlight(t, "stall") == 0 })
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.code != http.StatusRequestTimeout || a.took > 8*time.Second {
			t.Errorf("a stalled body got %d after %v, want 408 soon after the 2s timeout", a.code, a.took.Round(time.Millisecond))
		}
	}
	waitZero(t, d, "stall")
}

// inFlight returns the app's requests in flight, as the daemon's metrics
// report them.
func inFlight(t *testing.T, app string) int {
	t.Helper()
	_, metrics := rawAPI(t, "GET", "/metrics", "")
	found, n := false, 0
	for line := range strings.SplitSeq(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, `skiff_revision_requests_in_flight{app="`+app+`"`); ok {
			found = true
			v, err := strconv.Atoi(rest[strings.LastIndexByte(rest, ' ')+1:])
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			n += v
		}
	}
	if !found {
		t.Fatalf("no in-flight metric for %s:\n%s", app, truncateForLog(metrics))
	}
	return n
}
