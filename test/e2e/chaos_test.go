package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// chaosModel is what the test has had acknowledged for one App: the
// store must hold exactly this after any crash.
type chaosModel struct {
	name    string
	version int    // env VERSION
	min     int    // scale.min
	split   string // "" (latest takes all) or the traffic the test set
	prewarm int
}

func (m chaosModel) yaml() string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: hello
  env: [{name: VERSION, value: "%d"}]
  scale: {min: %d, max: 3, prewarm: %d}
  probes:
    readiness: {http: /healthz, period: 200ms}
`, m.name, m.version, m.min, m.prewarm)
}

// chaosLoad sends requests to hosts through addr until stopped, counting
// answers and failures.
type chaosLoad struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value // string: the last failure
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startChaosLoad(addr string, hosts []string) *chaosLoad {
	l := &chaosLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for i := 0; i < 4; i++ {
		host := hosts[i%len(hosts)]
		l.wg.Go(func() {
			for n := 0; n < 100000; n++ { // bounded; stopped long before
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					// A keep-alive connection the server closed as the
					// request crossed it: a client retries an idempotent
					// request once (RFC 9112 §9.3.1). An answer, even an
					// error status, is never retried.
					resp, err = client.Do(req)
				}
				if err == nil {
					resp.Body.Close()
				}
				switch {
				case err == nil && resp.StatusCode == 200:
					l.ok.Add(1)
				case err != nil:
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("%s: %v", host, err))
				default:
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("%s: %s", host, resp.Status))
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *chaosLoad) end() (ok, failed int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// TestChaos applies revisions, changes traffic and scales two Apps under
// load while the daemon is killed (SIGKILL), stopped (SIGTERM) or handed
// over to a new process (SIGHUP, with the same binary or a newly built
// one in place) at random moments; after each round every acknowledged
// write must be there, every App must converge on it, every container's
// record must match its processes, containers must still start, stop and
// go, and no request may fail across a handover.
func TestChaos(t *testing.T) {
	port := freePort(t)
	bin := filepath.Join(t.TempDir(), "skiff")
	copyFile(t, env.skiff, bin)
	const nextVersion = "0.0.0-chaos"
	next := filepath.Join(filepath.Dir(bin), "skiff.next")
	build := exec.Command("go", "build", "-trimpath", "-o", next,
		"-ldflags", "-X skiff.dev/skiff/internal/cli.Version="+nextVersion, "./cmd/skiff")
	build.Dir, build.Env = env.repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	d, err := startDaemonFrom("chaos", bin, "--ingress-addr", fmt.Sprintf("127.0.0.1:%d", port))
	extraDaemons = append(extraDaemons, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildSubset(d, "hello", "busybox"); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := countNetObjects(t, d)
	apps := []*chaosModel{{name: "chaos-a", version: 1, min: 1}, {name: "chaos-b", version: 1, min: 1, prewarm: 1}}
	for _, m := range apps {
		chaosApply(t, d, m)
	}
	for _, m := range apps {
		chaosConverged(t, d, addr, m)
	}
	load := startChaosLoad(addr, []string{"chaos-a.localhost", "chaos-b.localhost"})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	hows := []string{"SIGKILL", "HUP", "SIGKILL", "SIGTERM", "HUP", "SIGKILL", "HUP with a new build", "SIGKILL", "SIGTERM", "HUP", "SIGKILL", "SIGKILL"}
	rounds := len(hows)
	for round := 1; round <= rounds; round++ {
		m := apps[rng.IntN(len(apps))]
		op := []string{"apply", "apply", "traffic", "scale", "run"}[rng.IntN(5)]
		how := hows[round-1]
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		t.Logf("round %d: %s %s, %s after %v", round, op, m.name, how, delay)
		failedBefore := load.failed.Load()
		done := make(chan chaosOutcome, 1)
		go func() { done <- chaosOp(t, d, m, op, round) }()
		time.Sleep(delay)
		switch how {
		case "SIGKILL":
			d.Kill()
		case "SIGTERM":
			d.Stop()
		default:
			if how == "HUP with a new build" {
				if err := os.Rename(next, bin); err != nil { // replaces the running binary's file
					t.Fatal(err)
				}
			}
			old := d.pid(t)
			syscall.Kill(old, syscall.SIGHUP)
			d.followHandover(t, old)
		}
		out := <-done
		if strings.HasPrefix(how, "SIG") {
			// The daemon starts again from its own binary's path, which
			// the handover rounds replace.
			saved := env.skiff
			env.skiff = bin
			err := d.Start()
			env.skiff = saved
			if err != nil {
				t.Fatalf("round %d: restart: %v", round, err)
			}
		} else if !out.acked && out.op != "none" {
			t.Fatalf("round %d: %s during a handover failed: %s", round, out.op, out.res)
		}
		chaosReconcileModel(t, d, m, out)
		for _, m := range apps {
			chaosConverged(t, d, addr, m)
		}
		chaosRecordsMatch(t, d)
		if how == "HUP with a new build" {
			if v := must(t, d, "version"); !strings.Contains(v, nextVersion) {
				t.Fatalf("after the handover to a new build the daemon reports:\n%s", v)
			}
		}
		if failed := load.failed.Load() - failedBefore; strings.HasPrefix(how, "HUP") && failed > 0 {
			b, _ := os.ReadFile(d.Log)
			t.Fatalf("round %d: %d requests failed across a handover (%s), the last: %v\ndaemon log tail:\n%s", round, failed, how, load.lastErr.Load(), lastLines(string(b), 30))
		}
	}
	ok, failed := load.end()
	t.Logf("load during %d rounds of kills and stops: %d answered, %d failed", rounds, ok, failed)
	if ok == 0 {
		t.Fatal("no request was answered during the chaos")
	}
	// Everything goes, leaving nothing behind.
	for _, m := range apps {
		must(t, d, "delete", "app", m.name)
	}
	eventually(t, 60*time.Second, "the chaos Apps' replicas to go", func() bool {
		return strings.TrimSpace(must(t, d, "ps", "-aq")) == ""
	})
	if after := countNetObjects(t, d); after.Veths != base.Veths || after.NetNS != base.NetNS || after.Leases != base.Leases {
		t.Fatalf("network objects left behind: %+v, before %+v", after, base)
	}
	chaosNoOrphans(t, d)
}

// chaosOutcome is what the CLI said of an operation cut by a crash.
type chaosOutcome struct {
	op    string
	acked bool
	want  chaosModel // the model if the operation took effect
	res   Result
}

// chaosApply applies m; it may run outside the test's goroutine.
func chaosApply(t *testing.T, d *Daemon, m *chaosModel) Result {
	path := filepath.Join(t.TempDir(), m.name+".yaml")
	if err := os.WriteFile(path, []byte(m.yaml()), 0o644); err != nil {
		return Result{Code: -1, Stderr: err.Error()}
	}
	return d.Run("", "apply", "-f", path)
}

// chaosOp runs one operation on m; the daemon may die under it.
func chaosOp(t *testing.T, d *Daemon, m *chaosModel, op string, round int) chaosOutcome {
	want := *m
	var r Result
	switch op {
	case "apply":
		want.version, want.min, want.split = m.version+1, 1, ""
		r = chaosApply(t, d, &want)
	case "traffic":
		revs := chaosRevisions(d, m.name)
		if len(revs) < 2 {
			return chaosOutcome{op: "none"}
		}
		want.split = fmt.Sprintf("%s=50,%s=50", revs[len(revs)-2], revs[len(revs)-1])
		r = d.Run("", "traffic", m.name, revs[len(revs)-2]+"=50", revs[len(revs)-1]+"=50")
	case "scale":
		want.min = 3 - m.min // 1 ↔ 2
		r = d.Run("", "scale", m.name, "--min", fmt.Sprint(want.min))
	case "run":
		// A plain container made while the daemon dies: it must end up
		// usable or gone, never half made.
		r = d.Run("", "run", "-d", "--name", fmt.Sprintf("chaos-run-%d", round), "busybox", "sleep", "600")
	}
	return chaosOutcome{op: op, acked: r.Code == 0, want: want, res: r}
}

func chaosRevisions(d *Daemon, app string) []string {
	r := d.Run("", "get", "revisions", app, "-o", "json")
	var revs []api.Revision
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &revs) != nil {
		return nil
	}
	var names []string
	for _, rv := range revs {
		names = append(names, rv.Name)
	}
	return names
}

// chaosReconcileModel checks the store against what was acknowledged, and
// moves the model to what is stored when the operation was cut before
// its answer (either outcome is allowed then, nothing else).
func chaosReconcileModel(t *testing.T, d *Daemon, m *chaosModel, out chaosOutcome) {
	t.Helper()
	if out.op == "none" || out.op == "run" {
		return
	}
	a := getApp(t, d, m.name)
	got := *m
	got.version = chaosEnvVersion(t, a)
	got.min = 1
	if a.Spec.Scale.Min != nil {
		got.min = *a.Spec.Scale.Min
	}
	got.split = chaosSplit(a)
	switch {
	case out.acked && got != out.want:
		t.Fatalf("%s of %s was acknowledged, but the store holds %+v, want %+v\nCLI: %s", out.op, m.name, got, out.want, out.res)
	case !out.acked && got != out.want && got != *m:
		t.Fatalf("%s of %s was cut: the store holds %+v, neither the old %+v nor the new %+v", out.op, m.name, got, *m, out.want)
	}
	*m = got
}

func chaosEnvVersion(t *testing.T, a api.App) int {
	t.Helper()
	for _, e := range a.Spec.Env {
		if e.Name == "VERSION" {
			var v int
			fmt.Sscan(e.Value, &v)
			return v
		}
	}
	t.Fatalf("app %s lost its VERSION: %+v", a.Metadata.Name, a.Spec.Env)
	return 0
}

func chaosSplit(a api.App) string {
	if len(a.Spec.Traffic) == 1 && a.Spec.Traffic[0].Latest && a.Spec.Traffic[0].Percent == 100 {
		return "" // the default
	}
	var parts []string
	for _, tg := range a.Spec.Traffic {
		parts = append(parts, fmt.Sprintf("%s=%d", tg.Revision, tg.Percent))
	}
	return strings.Join(parts, ",")
}

// chaosConverged waits until m serves what its model says: Ready at its
// generation, its minimum of replicas ready, and the latest version
// answering when it takes all the traffic.
func chaosConverged(t *testing.T, d *Daemon, addr string, m *chaosModel) {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		a := getApp(t, d, m.name)
		last = fmt.Sprintf("generation %d observed %d, conditions %+v, replicas %+v", a.Metadata.Generation, a.Status.ObservedGeneration, a.Status.Conditions, a.Status.Replicas)
		ready := false
		for _, c := range a.Status.Conditions {
			if c.Type == api.ConditionReady && c.Status == api.ConditionTrue {
				ready = true
			}
		}
		if ready && a.Status.ObservedGeneration == a.Metadata.Generation && a.Status.Replicas.Ready >= m.min {
			if m.split != "" {
				return
			}
			code, body := get(t, addr, m.name+".localhost", "/")
			if code == 200 && strings.Contains(body, fmt.Sprintf("version %d\n", m.version)) {
				return
			}
			last += fmt.Sprintf("; answer %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(d.Log)
	t.Fatalf("%s did not converge on %+v within 60s: %s\ndaemon log tail:\n%s", m.name, *m, last, lastLines(string(b), 40))
}

func lastLines(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// chaosRecordsMatch checks each container's record against its processes,
// and that every plain container can still be stopped, started and
// removed.
func chaosRecordsMatch(t *testing.T, d *Daemon) {
	t.Helper()
	var cs []api.Container
	if err := json.Unmarshal([]byte(must(t, d, "ps", "-a", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		alive := c.State.Pid > 0 && syscall.Kill(c.State.Pid, 0) == nil
		switch c.State.Status {
		case api.StatusRunning:
			if !alive {
				t.Fatalf("%s is recorded running with pid %d, which is gone", c.Name, c.State.Pid)
			}
			if !conmonOf(c.ID) {
				t.Fatalf("%s is recorded running but has no conmon", c.Name)
			}
		case api.StatusExited, api.StatusCreated:
			if c.State.Status == api.StatusExited && alive {
				t.Fatalf("%s is recorded exited but its pid %d lives", c.Name, c.State.Pid)
			}
		}
		if !strings.HasPrefix(c.Name, "chaos-run-") {
			continue
		}
		for _, args := range [][]string{{"stop", "-t", "1", c.Name}, {"start", c.Name}, {"rm", "-f", c.Name}} {
			start := time.Now()
			if r := d.Run("", args...); r.Code != 0 {
				t.Fatalf("%s after a crash: %s", strings.Join(args, " "), r)
			} else if time.Since(start) > 20*time.Second {
				t.Fatalf("%s took %v", strings.Join(args, " "), time.Since(start))
			}
		}
	}
}

// conmonOf reports whether a conmon process monitors container id.
func conmonOf(id string) bool {
	out, _ := exec.Command("pgrep", "-f", "conmon .*-c "+id).Output()
	return strings.TrimSpace(string(out)) != ""
}

// chaosNoOrphans checks that nothing of the daemon's containers is left:
// no conmon, no mount under its root but the network namespaces' own.
func chaosNoOrphans(t *testing.T, d *Daemon) {
	t.Helper()
	out, _ := exec.Command("pgrep", "-af", "conmon .*"+d.Root).Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("conmon processes left behind:\n%s", s)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], d.Root+"/containers/") {
			t.Fatalf("a container mount is left behind: %s", l)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(d.Root, "containers"))
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("container directories left behind: %v", names)
	}
}
