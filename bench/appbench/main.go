// Command appbench measures skiff's App paths against their floors, in
// one run on one machine, and prints markdown tables:
//
//   - cold start through the ingress (App at zero replicas → response),
//     with and without a prewarmed container, next to raw `runc run` of
//     the same image until its port answers (the floor) and `podman run`
//     until its port answers;
//   - time from `skiff apply` of a new version to 100% of traffic on it;
//   - scale-out reaction: a step from 1 to 200 concurrent requests until
//     the added replicas receive traffic;
//   - with -only userns: cold start of an App with a user namespace (the
//     default) next to the same App with hostUsers: true.
//
// It needs a running daemon (-socket) that holds the image hello, root,
// runc, and podman unless -podman=false.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"skiff.dev/skiff/bench/latency"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/api"
)

var (
	skiffBin = flag.String("skiff", "bin/skiff", "skiff binary")
	socket   = flag.String("socket", "", "daemon socket")
	root     = flag.String("root", "", "daemon root (for the raw runc bundle)")
	runs     = flag.Int("n", 30, "cold starts per variant")
	podman   = flag.Bool("podman", true, "measure podman too")
	only     = flag.String("only", "", "run only: cold, apply, scale or userns (userns runs only when named)")
)

func sk(args ...string) (string, error) {
	out, err := exec.Command(*skiffBin, append([]string{"--socket", *socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("skiff %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "appbench:", err)
		os.Exit(1)
	}
}

var hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}}

func get(addr, host, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), nil
}

func ingress() string {
	out, err := sk("info", "-o", "json")
	must(err)
	var info api.Info
	must(json.Unmarshal([]byte(out), &info))
	return info.IngressAddr
}

func apply(doc string) {
	f, err := os.CreateTemp("", "appbench-*.yaml")
	must(err)
	f.WriteString(doc)
	f.Close()
	defer os.Remove(f.Name())
	_, err = sk("apply", "-f", f.Name())
	must(err)
}

func replicas(app string) []api.Replica {
	out, err := sk("get", "replicas", app, "-o", "json")
	must(err)
	var reps []api.Replica
	must(json.Unmarshal([]byte(out), &reps))
	return reps
}

// waitZero waits until the App has no running replica.
func waitZero(app string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		busy := false
		for _, r := range replicas(app) {
			if r.State != api.ReplicaPrewarmed {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(fmt.Errorf("%s did not scale to zero", app))
}

func waitPrewarmed(app string, n int) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c := 0
		for _, r := range replicas(app) {
			if r.State == api.ReplicaPrewarmed {
				c++
			}
		}
		if c >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(fmt.Errorf("%s has no prewarmed replica", app))
}

type series struct {
	name string
	ds   []time.Duration
}

func table(ss []*series, floor string) {
	var base time.Duration
	for _, s := range ss {
		if s.name == floor {
			base = latency.Percentile(s.ds, 0.5)
		}
	}
	fmt.Printf("| variant | runs | median | p90 | p99 | min | median vs floor |\n|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f×", float64(latency.Percentile(s.ds, 0.5))/float64(base))
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s |\n", s.name, len(s.ds), latency.MS(latency.Percentile(s.ds, 0.5)), latency.Cell(s.ds, 0.9), latency.Cell(s.ds, 0.99), latency.MS(latency.Percentile(s.ds, 0)), ratio)
	}
	fmt.Println()
}

func zeroApp(name string, prewarm int) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata:
  name: %s
  annotations: {autoscaling.skiff.dev/window: 2s}
spec:
  image: hello
  scale: {min: 0, max: 1, idleTimeout: 1s, prewarm: %d}
`, name, prewarm)
}

// pollPort GETs url until it answers 200.
func pollPort(url string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return fmt.Errorf("%s did not answer within %s", url, limit)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runcBundle makes a bundle of the hello image that shares the host's
// network (so its port is reachable without any network set-up).
func runcBundle(work string) string {
	out, err := sk("create", "--name", "appbench-ref", "--network", "host", "hello")
	must(err)
	id := strings.TrimSpace(out)
	defer sk("rm", "-f", "appbench-ref")
	dir := filepath.Join(*root, "containers", id)
	bundle := filepath.Join(work, "bundle")
	must(os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755))
	cp, err := exec.Command("cp", "-a", filepath.Join(dir, "rootfs")+"/.", filepath.Join(bundle, "rootfs")).CombinedOutput()
	if err != nil {
		must(fmt.Errorf("copy rootfs: %v %s", err, cp))
	}
	b, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	must(err)
	var spec map[string]any
	must(json.Unmarshal(b, &spec))
	spec["root"] = map[string]any{"path": "rootfs"}
	var mounts []any
	for _, m := range spec["mounts"].([]any) {
		if src, _ := m.(map[string]any)["source"].(string); !strings.HasPrefix(src, dir) {
			mounts = append(mounts, m)
		}
	}
	spec["mounts"] = mounts
	spec["linux"].(map[string]any)["cgroupsPath"] = "/appbench/runc"
	cfg, _ := json.Marshal(spec)
	must(os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644))
	return bundle
}

func setPortEnv(bundle string, port int) {
	path := filepath.Join(bundle, "config.json")
	b, _ := os.ReadFile(path)
	var spec map[string]any
	json.Unmarshal(b, &spec)
	proc := spec["process"].(map[string]any)
	var env []any
	for _, e := range proc["env"].([]any) {
		if !strings.HasPrefix(e.(string), "PORT=") && !strings.HasPrefix(e.(string), "HOST=") {
			env = append(env, e)
		}
	}
	proc["env"] = append(env, fmt.Sprintf("PORT=%d", port), "HOST=127.0.0.1")
	b, _ = json.Marshal(spec)
	os.WriteFile(path, b, 0o644)
}

func coldBench() {
	addr := ingress()
	work, _ := os.MkdirTemp("", "appbench-")
	defer os.RemoveAll(work)
	apply(zeroApp("bench-cold", 0))
	apply(zeroApp("bench-warm", 1))
	defer sk("delete", "app", "bench-cold")
	defer sk("delete", "app", "bench-warm")
	bundle := runcBundle(work)
	runcRoot := filepath.Join(work, "runc")

	var pm []string
	var pmEnv []string
	if *podman {
		conf := filepath.Join(work, "containers.conf")
		os.WriteFile(conf, []byte("[containers]\ndefault_ulimits=[\"nofile=20000:20000\",\"nproc=32768:32768\"]\n[engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\nevents_logger=\"file\"\n"), 0o644)
		pm = []string{"--root", filepath.Join(work, "podman-root"), "--runroot", filepath.Join(work, "podman-run"), "--storage-driver", "overlay"}
		pmEnv = append(os.Environ(), "CONTAINERS_CONF="+conf)
		archive := filepath.Join(work, "hello.tar")
		if out, err := exec.Command("skopeo", "copy", "oci:"+filepath.Join(*root, "images")+":localhost/hello:latest", "oci-archive:"+archive+":localhost/bench:latest").CombinedOutput(); err != nil {
			must(fmt.Errorf("export for podman: %v %s", err, out))
		}
		c := exec.Command("podman", append(pm, "load", "-i", archive)...)
		c.Env = pmEnv
		if out, err := c.CombinedOutput(); err != nil {
			must(fmt.Errorf("podman load: %v %s", err, out))
		}
	}

	cold := &series{name: "skiff: App at zero → response (ingress)"}
	warm := &series{name: "skiff with a prewarmed container"}
	floor := &series{name: "raw runc run until the port answers (floor)"}
	pod := &series{name: "podman run until the port answers"}
	variants := []func(i int){
		func(int) {
			waitZero("bench-cold")
			time.Sleep(200 * time.Millisecond)
			t := time.Now()
			code, _, err := get(addr, "bench-cold.localhost", "/")
			if err != nil || code != 200 {
				must(fmt.Errorf("cold request: %d %v", code, err))
			}
			cold.ds = append(cold.ds, time.Since(t))
		},
		func(int) {
			waitZero("bench-warm")
			waitPrewarmed("bench-warm", 1)
			time.Sleep(200 * time.Millisecond)
			t := time.Now()
			code, _, err := get(addr, "bench-warm.localhost", "/")
			if err != nil || code != 200 {
				must(fmt.Errorf("prewarmed request: %d %v", code, err))
			}
			warm.ds = append(warm.ds, time.Since(t))
		},
		func(i int) {
			port := freePort()
			setPortEnv(bundle, port)
			id := fmt.Sprintf("appbench-%d", i)
			t := time.Now()
			// The detached container keeps its stdio: give it /dev/null,
			// not pipes this process would wait on.
			c := exec.Command("runc", "--root", runcRoot, "run", "--detach", "--bundle", bundle, id)
			if err := c.Run(); err != nil {
				must(fmt.Errorf("runc run: %v", err))
			}
			must(pollPort(fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second))
			floor.ds = append(floor.ds, time.Since(t))
			exec.Command("runc", "--root", runcRoot, "delete", "--force", id).Run()
		},
	}
	if *podman {
		variants = append(variants, func(i int) {
			port := freePort()
			name := fmt.Sprintf("appbench-%d", i)
			t := time.Now()
			c := exec.Command("podman", append(pm, "run", "-d", "--name", name, "--network", "host", "-e", fmt.Sprintf("PORT=%d", port), "-e", "HOST=127.0.0.1", "localhost/bench:latest")...)
			c.Env = pmEnv
			if out, err := c.CombinedOutput(); err != nil {
				must(fmt.Errorf("podman run: %v %s", err, out))
			}
			must(pollPort(fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second))
			pod.ds = append(pod.ds, time.Since(t))
			c = exec.Command("podman", append(pm, "rm", "-f", "-t", "0", name)...)
			c.Env = pmEnv
			c.Run()
		})
	}
	for i := 0; i < *runs; i++ {
		for _, j := range rand.Perm(len(variants)) {
			variants[j](i)
		}
	}
	fmt.Printf("### Cold start of the example app (static Go HTTP server)\n\n")
	fmt.Printf("App settings that differ from the defaults: `scale: {min: 0, max: 1, idleTimeout: 1s}` (`prewarm: 1` for the prewarmed row) and a 2s stable window (`autoscaling.skiff.dev/window`), so each run reaches zero in seconds; they do not change the start path.\n\n")
	ss := []*series{cold, warm, floor}
	if *podman {
		ss = append(ss, pod)
	}
	table(ss, floor.name)
}

var versionRE = regexp.MustCompile(`version (\S+)`)

func applyBench() {
	addr := ingress()
	doc := func(v int) string {
		return fmt.Sprintf("apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: bench-apply}\nspec:\n  image: hello\n  env: [{name: VERSION, value: \"%d\"}]\n", v)
	}
	apply(doc(0))
	defer sk("delete", "app", "bench-apply")
	for {
		if code, _, _ := get(addr, "bench-apply.localhost", "/"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &series{name: "skiff apply of a new version → 100% of traffic on it"}
	for v := 1; v <= 10; v++ {
		time.Sleep(500 * time.Millisecond)
		t := time.Now()
		apply(doc(v))
		// 100%: twenty answers in a row from the new version.
		streak := 0
		for streak < 20 {
			_, body, err := get(addr, "bench-apply.localhost", "/")
			m := versionRE.FindStringSubmatch(body)
			if err == nil && m != nil && m[1] == fmt.Sprint(v) {
				streak++
			} else {
				streak = 0
			}
			if time.Since(t) > time.Minute {
				must(fmt.Errorf("version %d never took all traffic", v))
			}
		}
		s.ds = append(s.ds, time.Since(t))
	}
	fmt.Printf("### Rollout: apply to 100%% of traffic on the new revision\n\n")
	table([]*series{s}, "")
}

var hostRE = regexp.MustCompile(`\(([0-9a-f]+)\)`)

func scaleBench() {
	addr := ingress()
	doc := `apiVersion: skiff.dev/v1
kind: App
metadata: {name: bench-scale, annotations: {autoscaling.skiff.dev/window: 4s}}
spec:
  image: hello
  scale: {min: 1, max: 5, concurrency: 50}
`
	s := &series{name: "step 1 → 200 concurrent: added replicas receive traffic"}
	for round := 0; round < 5; round++ {
		apply(doc)
		for {
			if code, _, _ := get(addr, "bench-scale.localhost", "/"); code == 200 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		var mu sync.Mutex
		seen := map[string]bool{}
		var firstNew atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < 200; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, body, err := get(addr, "bench-scale.localhost", "/?sleep=100ms")
					if err != nil {
						continue
					}
					if m := hostRE.FindStringSubmatch(body); m != nil {
						mu.Lock()
						if !seen[m[1]] {
							seen[m[1]] = true
							if len(seen) > 1 && firstNew.Load() == 0 {
								firstNew.Store(int64(time.Since(start)))
							}
						}
						mu.Unlock()
					}
				}
			}()
		}
		deadline := time.Now().Add(30 * time.Second)
		for firstNew.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if firstNew.Load() == 0 {
			must(fmt.Errorf("no added replica received traffic within 30s"))
		}
		s.ds = append(s.ds, time.Duration(firstNew.Load()))
		sk("delete", "app", "bench-scale")
		time.Sleep(3 * time.Second)
	}
	fmt.Printf("### Scale-out reaction (target 50 in-flight per replica)\n\n")
	fmt.Printf("App settings that differ from the defaults: `scale: {min: 1, max: 5, concurrency: 50}` and a 4s stable window (`autoscaling.skiff.dev/window`); the panic window is the default 1s.\n\n")
	table([]*series{s}, "")
}

func main() {
	flag.Parse()
	if *only == "" || *only == "cold" {
		coldBench()
	}
	if *only == "" || *only == "apply" {
		applyBench()
	}
	if *only == "" || *only == "scale" {
		scaleBench()
	}
	if *only == "userns" {
		usernsBench()
	}
}
