// Command buildbench times image builds of the same Dockerfiles and
// contexts (testdata/goapp: a two-stage Go build; testdata/runsteps:
// twenty small RUN steps) with skiff, podman build and, when given,
// BuildKit's buildctl against a buildkitd with its runc worker. For each
// Dockerfile and tool it measures a cold build (no cache), a no-op
// rebuild and a rebuild after one source file changed, interleaved per
// round in a random order, and the peak RSS of the process that builds
// (the skiff daemon, the podman process, buildkitd) during the cold
// builds. It prints markdown tables.
//
// The base images (localhost/debian-golang:bookworm,
// localhost/busybox:latest) must already be in skiff's and podman's
// stores, and in the OCI layout -buildkit-layout as tags golang and
// busybox; bench/build.sh prepares all of it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/bench/latency"
)

var (
	skiff      = flag.String("skiff", "bin/skiff", "skiff binary")
	socket     = flag.String("socket", "", "skiff daemon socket")
	daemonPID  = flag.Int("daemon-pid", 0, "skiff daemon's process ID (for its memory)")
	skiffCache = flag.Bool("skiff-no-cache", false, "skiff image build has --no-cache (a layer cache)")
	podmanRoot = flag.String("podman-dir", "", "directory of podman's private store and containers.conf (empty: no podman)")
	buildctl   = flag.String("buildctl", "", "buildctl binary (empty: no BuildKit)")
	bkAddr     = flag.String("buildkit-addr", "", "buildkitd address")
	bkPID      = flag.Int("buildkitd-pid", 0, "buildkitd's process ID (for its memory)")
	bkLayout   = flag.String("buildkit-layout", "", "OCI layout holding the base images for BuildKit (tags golang, busybox)")
	work       = flag.String("work", "", "scratch directory for the contexts")
	n          = flag.Int("n", 3, "rounds (each: cold, no-op, one file changed, per tool and Dockerfile)")
	only       = flag.String("dockerfiles", "goapp,runsteps", "Dockerfiles to build, by testdata directory")
)

// dockerfile is one benchmarked Dockerfile and its context.
type dockerfile struct {
	name, title string
	dir         string // context, copied under -work
	changed     string // the file a one-file rebuild rewrites
	content     func(rev string) string
}

var dockerfiles = []*dockerfile{
	{name: "goapp", title: "Go, two stages", changed: "revision.go", content: func(rev string) string {
		return "package main\n\n// revision is rewritten by the benchmark's one-file-changed rebuild.\nconst revision = \"" + rev + "\"\n"
	}},
	{name: "runsteps", title: "20 RUN steps", changed: "input.txt", content: func(rev string) string { return rev + "\n" }},
}

// kind is what a timed build starts from.
type kind int

const (
	cold kind = iota
	noop
	oneFile
	kinds
)

var kindNames = [kinds]string{"cold", "no-op rebuild", "one file changed"}

// tool builds a context and names the process whose memory counts.
type tool struct {
	name  string
	build func(df *dockerfile, noCache bool) *exec.Cmd
	// pid is the long-lived builder process whose peak RSS is reset
	// before a cold build and read after it; 0: the command's own.
	pid  int
	runs map[string]*[kinds][]time.Duration
	peak map[string]int64 // kB, over cold builds
	// optional tools are left out of the report when they fail, with why.
	optional bool
	why      string
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "buildbench: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	flag.Parse()
	if *work == "" || *socket == "" {
		fail("-work and -socket are required")
	}
	var dfs []*dockerfile
	for _, df := range dockerfiles {
		if strings.Contains(","+*only+",", ","+df.name+",") {
			df.dir = filepath.Join(*work, df.name)
			if err := os.CopyFS(df.dir, os.DirFS(filepath.Join("bench/buildbench/testdata", df.name))); err != nil {
				fail("copy context %s: %v", df.name, err)
			}
			dfs = append(dfs, df)
		}
	}
	tools := makeTools()

	// Warm-up: one cold build each of the smallest Dockerfile, not counted
	// (first use of a store, page cache).
	for _, t := range tools {
		if _, _, err := timeBuild(t, dfs[len(dfs)-1], true); err != nil {
			t.failed(err)
		}
	}
	for round := 0; round < *n; round++ {
		for _, df := range dfs {
			for _, j := range rand.Perm(len(tools)) {
				if t := tools[j]; t.why == "" {
					if err := t.measure(df, round); err != nil {
						t.failed(err)
					}
				}
			}
		}
	}
	report(tools, dfs)
}

// measure times one cold build, a no-op rebuild and a rebuild after one
// file changed.
func (t *tool) measure(df *dockerfile, round int) error {
	r := t.results(df)
	d, kb, err := timeBuild(t, df, true)
	if err != nil {
		return err
	}
	r[cold] = append(r[cold], d)
	t.peak[df.name] = max(t.peak[df.name], kb)
	if d, _, err = timeBuild(t, df, false); err != nil {
		return err
	}
	r[noop] = append(r[noop], d)
	rev := fmt.Sprintf("r%d-%s", round+1, strings.Fields(t.name)[0])
	if err := os.WriteFile(filepath.Join(df.dir, df.changed), []byte(df.content(rev)), 0o644); err != nil {
		fail("%v", err)
	}
	if d, _, err = timeBuild(t, df, false); err != nil {
		return err
	}
	r[oneFile] = append(r[oneFile], d)
	return nil
}

// failed stops measuring an optional tool (BuildKit) and keeps why for the
// report; skiff or podman failing ends the benchmark.
func (t *tool) failed(err error) {
	if !t.optional {
		fail("%v", err)
	}
	t.why = err.Error()
	fmt.Fprintf(os.Stderr, "buildbench: %s left out: %v\n", t.name, err)
}

func (t *tool) results(df *dockerfile) *[kinds][]time.Duration {
	if t.runs[df.name] == nil {
		t.runs[df.name] = &[kinds][]time.Duration{}
	}
	return t.runs[df.name]
}

func makeTools() []*tool {
	tag := func(df *dockerfile) string { return "localhost/bench-" + df.name + ":latest" }
	tools := []*tool{{name: "skiff", pid: *daemonPID, build: func(df *dockerfile, noCache bool) *exec.Cmd {
		args := []string{"--socket", *socket, "image", "build", "-q", "-t", tag(df)}
		if noCache && *skiffCache {
			args = append(args, "--no-cache")
		}
		return exec.Command(*skiff, append(args, df.dir)...)
	}}}
	if *podmanRoot != "" {
		tools = append(tools, &tool{name: "podman build", build: func(df *dockerfile, noCache bool) *exec.Cmd {
			args := append(podmanArgs(), "build", "-q", "--layers", "--network", "none", "-t", tag(df))
			if noCache {
				args = append(args, "--no-cache")
			}
			c := exec.Command("podman", append(args, df.dir)...)
			c.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(*podmanRoot, "containers.conf"))
			return c
		}})
	}
	if *buildctl != "" {
		golang, busybox := layoutDigest("golang"), layoutDigest("busybox")
		tools = append(tools, &tool{name: "BuildKit", pid: *bkPID, optional: true, build: func(df *dockerfile, noCache bool) *exec.Cmd {
			// A named context is keyed by the FROM reference in its
			// familiar form, without ":latest".
			args := []string{"--addr", *bkAddr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
				"--local", "context=" + df.dir, "--local", "dockerfile=" + df.dir,
				"--oci-layout", "base=" + *bkLayout,
				"--opt", "context:localhost/debian-golang:bookworm=oci-layout://base@" + golang,
				"--opt", "context:localhost/busybox=oci-layout://base@" + busybox,
				"--output", "type=image,name=" + tag(df)}
			if noCache {
				args = append(args, "--no-cache")
			}
			return exec.Command(*buildctl, args...)
		}})
	}
	for _, t := range tools {
		t.runs = map[string]*[kinds][]time.Duration{}
		t.peak = map[string]int64{}
	}
	return tools
}

// layoutDigest returns the manifest digest of the image tagged tag in the
// OCI layout -buildkit-layout (buildctl takes named contexts by digest).
func layoutDigest(tag string) string {
	b, err := os.ReadFile(filepath.Join(*bkLayout, "index.json"))
	if err != nil {
		fail("%v", err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		fail("%s: %v", *bkLayout, err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest
		}
	}
	fail("no image tagged %s in %s", tag, *bkLayout)
	return ""
}

// podmanArgs are the global flags of the private podman store.
func podmanArgs() []string {
	return []string{"--root", filepath.Join(*podmanRoot, "root"), "--runroot", filepath.Join(*podmanRoot, "run"), "--storage-driver", "overlay"}
}

// timeBuild runs one build and returns its wall time and the builder's
// peak RSS in kB while it ran.
func timeBuild(t *tool, df *dockerfile, noCache bool) (time.Duration, int64, error) {
	c := t.build(df, noCache)
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	pid := t.pid
	if pid != 0 {
		// Reset the high-water mark to the current RSS (proc(5),
		// clear_refs value 5), so VmHWM afterwards is this build's peak.
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
	start := time.Now()
	if err := c.Start(); err != nil {
		return 0, 0, err
	}
	if pid == 0 {
		pid = c.Process.Pid
	}
	var peak int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, hwm(pid))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := c.Wait()
	d := time.Since(start)
	close(done)
	wg.Wait()
	if t.pid != 0 {
		peak = max(peak, hwm(t.pid))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s build of %s failed: %v: %s", t.name, df.name, err, lastLines(out.String(), 3))
	}
	return d, peak, nil
}

// lastLines returns the last n non-empty lines of s, joined by " / ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// hwm reads a process's peak resident set size (VmHWM) in kB; 0 once it
// has exited.
func hwm(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// targets are the goals for skiff, by kind: a ratio to podman's
// median, or an absolute time.
var targets = [kinds]string{"≤ 1.0× podman", "≤ 0.3 s", "≤ 0.8× podman"}

func report(tools []*tool, dfs []*dockerfile) {
	var podman *tool
	for _, t := range tools {
		if t.name == "podman build" {
			podman = t
		}
	}
	for _, t := range tools {
		if t.why != "" {
			fmt.Printf("%s: not measured: %s\n\n", t.name, t.why)
		}
	}
	fmt.Printf("Median and p90 of %d builds each; p90 of fewer than 10 runs is the slowest, marked (max).\n\n", *n)
	fmt.Print("| Dockerfile | build |")
	for _, t := range tools {
		fmt.Printf(" %s |", t.name)
	}
	fmt.Print(" skiff vs podman | target |\n|---|---|")
	for range tools {
		fmt.Print("---|")
	}
	fmt.Print("---|---|\n")
	for _, df := range dfs {
		for k := kind(0); k < kinds; k++ {
			fmt.Printf("| %s | %s |", df.title, kindNames[k])
			for _, t := range tools {
				r := t.results(df)[k]
				if len(r) == 0 {
					fmt.Print(" – |")
					continue
				}
				fmt.Printf(" %s / %s |", seconds(latency.Percentile(r, 0.5)), latency.CellFunc(r, 0.9, seconds))
			}
			ratio := "–"
			if podman != nil {
				s, p := latency.Percentile(tools[0].results(df)[k], 0.5), latency.Percentile(podman.results(df)[k], 0.5)
				ratio = fmt.Sprintf("%.2f×", float64(s)/float64(p))
			}
			fmt.Printf(" %s | %s |\n", ratio, targets[k])
		}
	}
	fmt.Print("\nPeak RSS of the process that builds, during the cold builds (the largest over the runs):\n\n| Dockerfile |")
	for _, t := range tools {
		fmt.Printf(" %s |", memName(t))
	}
	fmt.Print("\n|---|")
	for range tools {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, df := range dfs {
		fmt.Printf("| %s |", df.title)
		for _, t := range tools {
			if t.peak[df.name] == 0 {
				fmt.Print(" – |")
				continue
			}
			fmt.Printf(" %.1f MiB |", float64(t.peak[df.name])/1024)
		}
		fmt.Println()
	}
}

func memName(t *tool) string {
	switch t.name {
	case "skiff":
		return "skiff daemon"
	case "BuildKit":
		return "buildkitd"
	}
	return "podman process"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
