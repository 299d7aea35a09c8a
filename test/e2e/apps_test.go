package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// ingressAddr returns where d's ingress listens.
func ingressAddr(t *testing.T, d *Daemon) string {
	t.Helper()
	var info api.Info
	if err := json.Unmarshal([]byte(must(t, d, "info", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	return info.IngressAddr
}

var ingressClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// get sends GET / for host through the ingress and returns status and body.
func get(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := ingressClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// applyYAML writes doc to a file and applies it.
func applyYAML(t *testing.T, d *Daemon, doc string) Result {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return d.Run("", "apply", "-f", path)
}

func getApp(t *testing.T, d *Daemon, name string) api.App {
	t.Helper()
	var a api.App
	if err := json.Unmarshal([]byte(must(t, d, "get", "apps", name, "-o", "json")), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func appReady(t *testing.T, d *Daemon, name string) func() bool {
	return func() bool {
		a := getApp(t, d, name)
		for _, c := range a.Status.Conditions {
			if c.Type == api.ConditionReady && c.Status == api.ConditionTrue {
				return a.Status.ObservedGeneration == a.Metadata.Generation && a.Status.LatestReadyRevision == a.Status.LatestCreatedRevision
			}
		}
		return false
	}
}

func helloApp(name, version string, extra string) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: hello
  env: [{name: VERSION, value: "%s"}]
  probes:
    readiness: {http: /healthz, period: 200ms}
%s`, name, version, extra)
}

func TestAppLifecycle(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	host := "shop.localhost"
	if r := applyYAML(t, d, helloApp("shop", "1", "")); r.Code != 0 || !strings.Contains(r.Stdout, "app/shop created") {
		t.Fatalf("apply: %s", r)
	}
	defer d.Run("", "delete", "app", "shop")
	eventually(t, 20*time.Second, "shop to be ready", appReady(t, d, "shop"))
	if code, body := get(t, addr, host, "/"); code != 200 || !strings.Contains(body, "version 1") {
		t.Fatalf("GET through the ingress: %d %s", code, body)
	}
	if code, body := get(t, addr, "nobody.localhost", "/"); code != 404 || !strings.Contains(body, "nobody.localhost") {
		t.Fatalf("unknown host: %d %s", code, body)
	}
	// Re-applying the same document changes nothing.
	if r := applyYAML(t, d, helloApp("shop", "1", "")); !strings.Contains(r.Stdout, "unchanged") {
		t.Fatalf("re-apply: %s", r)
	}
	// A label change is not a new revision.
	applyYAML(t, d, strings.Replace(helloApp("shop", "1", ""), "metadata: {name: shop}", "metadata: {name: shop, labels: {team: web}}", 1))
	// A new version is a new revision; traffic moves to it.
	start := time.Now()
	if r := applyYAML(t, d, helloApp("shop", "2", "")); !strings.Contains(r.Stdout, "configured") {
		t.Fatalf("apply v2: %s", r)
	}
	eventually(t, 20*time.Second, "version 2 to serve", func() bool {
		_, body := get(t, addr, host, "/")
		return strings.Contains(body, "version 2")
	})
	t.Logf("apply to version 2 serving: %s", time.Since(start))
	eventually(t, 20*time.Second, "rollout to finish", appReady(t, d, "shop"))
	a := getApp(t, d, "shop")
	if a.Status.LatestReadyRevision != "shop-00002" || len(a.Status.Traffic) != 1 || a.Status.Traffic[0].Revision != "shop-00002" {
		t.Fatalf("after rollout: %+v", a.Status)
	}
	out := must(t, d, "get", "revisions", "shop")
	if !strings.Contains(out, "shop-00001") || !strings.Contains(out, "shop-00002") || strings.Contains(out, "shop-00003") {
		t.Fatalf("revisions:\n%s", out)
	}
	// The old revision's replicas are drained and removed.
	eventually(t, 30*time.Second, "old replicas to go", func() bool {
		return !strings.Contains(must(t, d, "get", "replicas", "shop"), "shop-00001")
	})

	// Rollback moves traffic back without a new revision.
	must(t, d, "rollback", "shop")
	eventually(t, 20*time.Second, "version 1 after rollback", func() bool {
		_, body := get(t, addr, host, "/")
		return strings.Contains(body, "version 1")
	})
	if a := getApp(t, d, "shop"); a.Status.LatestCreatedRevision != "shop-00002" {
		t.Fatalf("rollback created a revision: %+v", a.Status)
	}
	// A 90/10 split lands near 90/10.
	must(t, d, "traffic", "shop", "shop-00001=90", "shop-00002=10")
	eventually(t, 20*time.Second, "both revisions ready", func() bool {
		return strings.Count(must(t, d, "get", "replicas", "shop"), "True") >= 2
	})
	time.Sleep(300 * time.Millisecond)
	v1, v2 := 0, 0
	const n = 1000
	for i := 0; i < n; i++ {
		code, body := get(t, addr, host, "/")
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
		switch {
		case strings.Contains(body, "version 1"):
			v1++
		case strings.Contains(body, "version 2"):
			v2++
		}
	}
	if v1 < 850 || v1 > 950 || v1+v2 != n {
		t.Fatalf("90/10 split gave %d/%d", v1, v2)
	}
	t.Logf("90/10 split over %d requests: %d/%d", n, v1, v2)
	// The ingress's counts are Prometheus metrics.
	if code, body := rawAPI(t, "GET", "/metrics", ""); code != 200 ||
		!strings.Contains(body, `skiff_revision_requests_total{app="shop",revision="shop-00001"}`) ||
		!strings.Contains(body, `skiff_revision_traffic_percent{app="shop",revision="shop-00002"} 10`) {
		t.Fatalf("metrics: %d\n%s", code, truncateForLog(body))
	}
	must(t, d, "traffic", "shop", "latest=100")
	// describe shows it all.
	desc := must(t, d, "describe", "app", "shop")
	for _, want := range []string{"Conditions:", "Revisions:", "Replicas:", "Events:", "RevisionCreated"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe lacks %q:\n%s", want, desc)
		}
	}
	// logs of an App prefix each replica's lines.
	if out := must(t, d, "logs", "shop"); !strings.Contains(out, "[shop-0000") {
		t.Fatalf("app logs:\n%s", out)
	}
	must(t, d, "delete", "app", "shop")
	eventually(t, 30*time.Second, "replicas to go after delete", func() bool {
		return !strings.Contains(must(t, d, "ps", "-a"), "shop-0000")
	})
	if code, _ := get(t, addr, host, "/"); code != 404 {
		t.Fatalf("deleted app still routed: %d", code)
	}
}

// TestRolloutZeroDowntime sends requests without pause while a new
// revision rolls out and the old one drains: none may fail.
func TestRolloutZeroDowntime(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	applyYAML(t, d, helloApp("steady", "1", "  scale: {min: 2, max: 2}\n"))
	defer d.Run("", "delete", "app", "steady")
	eventually(t, 30*time.Second, "steady to be ready", appReady(t, d, "steady"))

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Slow requests are in flight while replicas drain.
				code, body := get(t, addr, "steady.localhost", "/?sleep=20ms")
				if code == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	for v := 2; v <= 3; v++ {
		applyYAML(t, d, helloApp("steady", fmt.Sprint(v), "  scale: {min: 2, max: 2}\n"))
		eventually(t, 30*time.Second, "rollout", func() bool {
			_, body := get(t, addr, "steady.localhost", "/")
			return strings.Contains(body, fmt.Sprintf("version %d", v))
		})
		eventually(t, 30*time.Second, "old replicas drained", func() bool {
			var reps []api.Replica
			json.Unmarshal([]byte(must(t, d, "get", "replicas", "steady", "-o", "json")), &reps)
			return len(reps) == 2
		})
	}
	time.Sleep(time.Second) // and the drained replicas' SIGTERM
	close(stop)
	wg.Wait()
	t.Logf("%d requests during two rollouts, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during rollouts; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests were sent", ok.Load())
	}
}

func TestAppSelfHealing(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	applyYAML(t, d, helloApp("heal", "1", ""))
	defer d.Run("", "delete", "app", "heal")
	eventually(t, 20*time.Second, "heal to be ready", appReady(t, d, "heal"))
	var reps []api.Replica
	json.Unmarshal([]byte(must(t, d, "get", "replicas", "heal", "-o", "json")), &reps)
	if len(reps) != 1 {
		t.Fatalf("replicas: %+v", reps)
	}
	pid := inspect(t, d, reps[0].ContainerID).State.Pid
	syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, 20*time.Second, "the killed replica to serve again", func() bool {
		code, _ := get(t, addr, "heal.localhost", "/")
		c := inspect(t, d, reps[0].ContainerID)
		return code == 200 && c.State.Pid != pid && c.State.RestartCount >= 1
	})
	// A removed replica container is replaced by a new one.
	must(t, d, "rm", "-f", reps[0].ContainerID)
	eventually(t, 20*time.Second, "a new replica", func() bool {
		var now []api.Replica
		json.Unmarshal([]byte(must(t, d, "get", "replicas", "heal", "-o", "json")), &now)
		return len(now) == 1 && now[0].ContainerID != reps[0].ContainerID && now[0].Ready
	})
}

func TestAppHealthProbes(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	echo := func(name, extra string) string {
		return fmt.Sprintf("apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: %s}\nspec:\n  image: echoserver\n%s", name, extra)
	}
	// Readiness gates traffic: a revision that never gets ready takes
	// none, the old one keeps serving, and the App says ProbeFailed.
	applyYAML(t, d, echo("gate", "  env: [{name: V, value: '1'}]\n  probes:\n    readiness: {http: /ready, period: 200ms}\n"))
	defer d.Run("", "delete", "app", "gate")
	eventually(t, 20*time.Second, "gate ready", appReady(t, d, "gate"))
	applyYAML(t, d, echo("gate", "  env: [{name: V, value: '2'}]\n  probes:\n    readiness: {http: '/ready?status=503', period: 200ms, failureThreshold: 2}\n"))
	eventually(t, 30*time.Second, "ProbeFailed to be reported", func() bool {
		a := getApp(t, d, "gate")
		for _, c := range a.Status.Conditions {
			if c.Type == api.ConditionDegraded && c.Status == api.ConditionTrue && c.Reason == api.ReasonProbeFailed {
				return true
			}
		}
		return false
	})
	a := getApp(t, d, "gate")
	if a.Status.Traffic[0].Revision != "gate-00001" {
		t.Fatalf("traffic moved to a revision that is not ready: %+v", a.Status.Traffic)
	}
	for i := 0; i < 20; i++ {
		if code, body := get(t, addr, "gate.localhost", "/"); code != 200 {
			t.Fatalf("old revision stopped serving: %d %s", code, body)
		}
	}

	// A failing liveness probe restarts the replica.
	applyYAML(t, d, echo("live", "  probes:\n    liveness: {http: '/alive?status=500', period: 200ms, failureThreshold: 2}\n"))
	defer d.Run("", "delete", "app", "live")
	eventually(t, 30*time.Second, "a liveness restart", func() bool {
		var reps []api.Replica
		json.Unmarshal([]byte(must(t, d, "get", "replicas", "live", "-o", "json")), &reps)
		return len(reps) > 0 && reps[0].Restarts >= 1
	})

	// A crashing revision backs off and is reported, never spinning.
	applyYAML(t, d, "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: crashy}\nspec:\n  image: busybox\n  command: [sh, -c, 'echo crashing; exit 3']\n")
	defer d.Run("", "delete", "app", "crashy")
	eventually(t, 30*time.Second, "CrashLoopBackOff", func() bool {
		a := getApp(t, d, "crashy")
		for _, c := range a.Status.Conditions {
			if c.Type == api.ConditionDegraded && c.Reason == api.ReasonCrashLoopBackOff {
				return true
			}
		}
		return false
	})
	var reps []api.Replica
	json.Unmarshal([]byte(must(t, d, "get", "replicas", "crashy", "-o", "json")), &reps)
	if len(reps) != 1 {
		t.Fatalf("a crash loop made %d replicas", len(reps))
	}
	r1 := reps[0].Restarts
	time.Sleep(2 * time.Second)
	json.Unmarshal([]byte(must(t, d, "get", "replicas", "crashy", "-o", "json")), &reps)
	if len(reps) != 1 || reps[0].Restarts-r1 > 4 {
		t.Fatalf("crash loop is not backing off: %d restarts in 2s", reps[0].Restarts-r1)
	}
}

func TestAppValidation(t *testing.T) {
	d := env.daemon
	base := "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: valid}\nspec:\n  image: hello\n"
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown field", base + "  replicas: 3\n", []string{"spec.replicas", "unknown field"}},
		{"bad name", strings.Replace(base, "valid", "Bad_Name", 1), []string{"metadata.name"}},
		{"missing image", "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: noimage}\nspec: {port: 8080}\n", []string{"spec.image"}},
		{"bad quantity", base + "  resources: {memory: lots}\n", []string{"spec.resources.memory"}},
		{"traffic sum", base + "  traffic: [{latest: true, percent: 50}]\n", []string{"spec.traffic", "100"}},
		{"traffic percent range", base + "  traffic: [{latest: true, percent: 100}, {revision: valid-00001, percent: 120}]\n", []string{"spec.traffic[1].percent"}},
		{"scale max below min", base + "  scale: {min: 3, max: 1}\n", []string{"spec.scale"}},
		{"negative scale", base + "  scale: {min: -1}\n", []string{"spec.scale.min"}},
		{"bad port", base + "  port: 70000\n", []string{"spec.port"}},
		{"wrong kind", strings.Replace(base, "kind: App", "kind: Deployment", 1), []string{"kind"}},
		{"bad yaml", "apiVersion: skiff.dev/v1\nkind: App\n  metadata: [\n", []string{"line"}},
		{"unknown revision in traffic", base + "  traffic: [{revision: valid-00042, percent: 100}]\n", []string{"valid-00042"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := applyYAML(t, d, tc.doc)
			if r.Code == 0 {
				t.Fatalf("invalid app applied: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Fatalf("error does not mention %q: %s", w, r)
				}
			}
			if out := must(t, d, "get", "apps"); strings.Contains(out, "valid ") || strings.Contains(out, "noimage") {
				t.Fatalf("an invalid app was stored:\n%s", out)
			}
		})
	}
	// Two documents, one bad: nothing is applied.
	r := applyYAML(t, d, helloApp("first-ok", "1", "")+"---\n"+base+"  bogus: 1\n")
	if r.Code == 0 || !strings.Contains(r.Stderr, "document 2") {
		t.Fatalf("multi-document with a bad one: %s", r)
	}
	if out := must(t, d, "get", "apps"); strings.Contains(out, "first-ok") {
		t.Fatalf("the good document of a bad file was applied:\n%s", out)
	}
}

func TestAppDiff(t *testing.T) {
	d := env.daemon
	dir := t.TempDir()
	path := dir + "/app.yaml"
	os.WriteFile(path, []byte(helloApp("differ", "1", "")), 0o644)
	// Before the first apply the whole App is new.
	if r := d.Run("", "diff", "-f", path); r.Code != 1 || !strings.Contains(r.Stdout, "+") {
		t.Fatalf("diff of a new app: %s", r)
	}
	must(t, d, "apply", "-f", path)
	defer d.Run("", "delete", "app", "differ")
	if r := d.Run("", "diff", "-f", path); r.Code != 0 || r.Stdout != "" {
		t.Fatalf("diff of an applied app: %s", r)
	}
	os.WriteFile(path, []byte(helloApp("differ", "2", "")), 0o644)
	r := d.Run("", "diff", "-f", path)
	if r.Code != 1 || !strings.Contains(r.Stdout, `-`) || !strings.Contains(r.Stdout, `"2"`) {
		t.Fatalf("diff of a changed app: %s", r)
	}
	// diff changes nothing.
	if a := getApp(t, d, "differ"); a.Metadata.Generation != 1 {
		t.Fatalf("diff changed the app: generation %d", a.Metadata.Generation)
	}
}

// TestAppSurvivesDaemonRestart kills the daemon while an App serves: the
// replicas keep running, and the new daemon adopts them without
// restarting any and routes to them again.
func TestAppSurvivesDaemonRestart(t *testing.T) {
	d, err := startDaemon("apprestart")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, d, helloApp("durable", "1", "  scale: {min: 2, max: 2}\n"))
	eventually(t, 30*time.Second, "durable ready", appReady(t, d, "durable"))
	before := replicasOf(t, d, "durable")
	pids := map[string]int{}
	for _, r := range before {
		pids[r.ContainerID] = inspect(t, d, r.ContainerID).State.Pid
	}
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	addr := ingressAddr(t, d)
	eventually(t, 10*time.Second, "durable to serve again", func() bool {
		code, _ := get(t, addr, "durable.localhost", "/")
		return code == 200
	})
	after := replicasOf(t, d, "durable")
	if len(after) != 2 {
		t.Fatalf("replicas after restart: %+v", after)
	}
	for _, r := range after {
		pid, ok := pids[r.ContainerID]
		if !ok {
			t.Fatalf("replica %s is new: the daemon replaced a healthy replica", r.Name)
		}
		if c := inspect(t, d, r.ContainerID); c.State.Pid != pid || c.State.RestartCount != 0 {
			t.Fatalf("replica %s was restarted: pid %d → %d", r.Name, pid, c.State.Pid)
		}
	}
	must(t, d, "delete", "app", "durable")
}
