// Command startbench measures start-to-exit latency of a tiny static
// program three ways, interleaved in one run: `skiff run --rm`, raw
// `runc run` of the same bundle skiff generates, and `podman run --rm`.
// It prints a markdown table (median, p90, p99 over -n runs each).
//
// It expects a running skiff daemon (-socket) holding -image, root
// privileges, runc and (unless -podman=false) podman.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"skiff.dev/skiff/bench/latency"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	skiff     = flag.String("skiff", "bin/skiff", "skiff binary")
	socket    = flag.String("socket", "", "skiff daemon socket")
	root      = flag.String("root", "", "skiff daemon root (to copy its generated spec)")
	image     = flag.String("image", "hello", "image to run")
	args      = flag.String("args", "-exit 0", "arguments to the image's entrypoint")
	n         = flag.Int("n", 30, "runs per tool")
	podman    = flag.Bool("podman", true, "also measure podman")
	extraSock = flag.String("crun-socket", "", "socket of a second skiff daemon using crun (optional)")
)

type tool struct {
	name string
	cmd  func(i int) *exec.Cmd
	runs []time.Duration
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "startbench: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("", "startbench-")
	must(err, "temp dir")
	defer os.RemoveAll(work)
	argv := strings.Fields(*args)

	tools := []*tool{{name: "skiff run --rm (bridge network)", cmd: func(int) *exec.Cmd {
		return exec.Command(*skiff, append([]string{"--socket", *socket, "run", "--rm", *image}, argv...)...)
	}}, {name: "skiff run --rm --network none", cmd: func(int) *exec.Cmd {
		return exec.Command(*skiff, append([]string{"--socket", *socket, "run", "--rm", "--network", "none", *image}, argv...)...)
	}}}
	if *extraSock != "" {
		tools = append(tools, &tool{name: "skiff run --rm --network none (crun)", cmd: func(int) *exec.Cmd {
			return exec.Command(*skiff, append([]string{"--socket", *extraSock, "run", "--rm", "--network", "none", *image}, argv...)...)
		}})
	}

	bundle := prepareBundle(work, argv)
	runcRoot := filepath.Join(work, "runc-state")
	tools = append(tools, &tool{name: "runc run (same bundle)", cmd: func(i int) *exec.Cmd {
		return exec.Command("runc", "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("bench-%d", i))
	}})
	if *podman {
		pm := preparePodman(work)
		tools = append(tools, &tool{name: "podman run --rm", cmd: func(int) *exec.Cmd {
			c := exec.Command("podman", append(append(pm.args, "run", "--rm", "--network", "none", "localhost/bench:latest"), argv...)...)
			c.Env = append(os.Environ(), "CONTAINERS_CONF="+pm.conf)
			return c
		}})
	}

	// Warm up each tool once, then interleave in a random order per round.
	for _, t := range tools {
		run(t, -1)
	}
	for i := 0; i < *n; i++ {
		order := rand.Perm(len(tools))
		for _, j := range order {
			run(tools[j], i)
		}
	}
	report(tools)
}

func run(t *tool, i int) {
	c := t.cmd(i + 1000)
	start := time.Now()
	out, err := c.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "startbench: %s failed: %v\n%s\n", t.name, err, out)
		os.Exit(1)
	}
	if i >= 0 {
		t.runs = append(t.runs, d)
	}
}

func report(tools []*tool) {
	var base time.Duration
	for _, t := range tools {
		if strings.HasPrefix(t.name, "runc run") {
			base = latency.Percentile(t.runs, 0.5)
		}
	}
	fmt.Printf("| tool | runs | median | p90 | p99 | min | median vs runc |\n|---|---|---|---|---|---|---|\n")
	for _, t := range tools {
		med := latency.Percentile(t.runs, 0.5)
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %.2f× |\n", t.name, len(t.runs), latency.MS(med), latency.Cell(t.runs, 0.9), latency.Cell(t.runs, 0.99), latency.MS(latency.Percentile(t.runs, 0)), float64(med)/float64(base))
	}
}

// prepareBundle makes a runc bundle from the spec skiff generates for the
// same image and command, with the image's files copied to a plain rootfs.
func prepareBundle(work string, argv []string) string {
	name := fmt.Sprintf("startbench-ref-%d", os.Getpid())
	out, err := exec.Command(*skiff, append([]string{"--socket", *socket, "create", "--network", "none", "--name", name, *image}, argv...)...).CombinedOutput()
	must(err, "create reference container: "+string(out))
	id := strings.TrimSpace(string(out))
	defer exec.Command(*skiff, "--socket", *socket, "rm", "-f", name).Run()
	dir := filepath.Join(*root, "containers", id)
	b, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	must(err, "read generated spec")
	var spec specs.Spec
	must(json.Unmarshal(b, &spec), "decode spec")
	bundle := filepath.Join(work, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	must(os.MkdirAll(rootfs, 0o755), "mkdir")
	cp, err := exec.Command("cp", "-a", filepath.Join(dir, "rootfs")+"/.", rootfs).CombinedOutput()
	must(err, "copy rootfs: "+string(cp))
	spec.Root.Path = "rootfs"
	spec.Linux.CgroupsPath = "/startbench/runc"
	// The hosts/resolv.conf mounts point into skiff's container dir, which
	// is gone after rm: drop mounts whose source is under it.
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if !strings.HasPrefix(m.Source, dir) {
			mounts = append(mounts, m)
		}
	}
	spec.Mounts = mounts
	// Join no existing network namespace: raw runc makes a fresh one.
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = ""
		}
	}
	cfg, _ := json.MarshalIndent(spec, "", "  ")
	must(os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644), "write config.json")
	return bundle
}

type podmanSetup struct {
	conf string
	args []string
}

// preparePodman loads the image into a private podman store.
func preparePodman(work string) podmanSetup {
	conf := filepath.Join(work, "containers.conf")
	must(os.WriteFile(conf, []byte(`[containers]
default_ulimits=["nofile=20000:20000","nproc=32768:32768"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
`), 0o644), "write containers.conf")
	p := podmanSetup{conf: conf, args: []string{"--root", filepath.Join(work, "podman-root"), "--runroot", filepath.Join(work, "podman-run"), "--storage-driver", "overlay"}}
	archive := filepath.Join(work, "image.tar")
	out, err := exec.Command("skopeo", "copy", "oci:"+filepath.Join(*root, "images")+":localhost/"+*image+":latest", "oci-archive:"+archive+":localhost/bench:latest").CombinedOutput()
	must(err, "export image for podman: "+string(out))
	c := exec.Command("podman", append(p.args, "load", "-i", archive)...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	out, err = c.CombinedOutput()
	must(err, "podman load: "+string(out))
	return p
}
