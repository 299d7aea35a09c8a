// Command registry measures pushing and pulling a multi-layer image over
// loopback to skiff's built-in registry and to Debian's docker-registry
// (distribution 2.8), side by side in one run with the same client
// (go-containerregistry's remote package, as crane uses it), and shows
// that pulling an image skiff already holds copies nothing.
//
// Each round makes a new image of random (incompressible) layers, so no
// blob is already present at either registry, and pushes then pulls it
// to each registry in turn, in an order that alternates by round.
package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	skiff := flag.String("skiff", "bin/skiff", "the skiff binary")
	work := flag.String("work", "", "a scratch directory (default: a new one under /tmp)")
	sizeMB := flag.Int("size", 200, "image size in MB (sum of the layers)")
	layers := flag.Int("layers", 8, "number of layers")
	rounds := flag.Int("rounds", 3, "rounds (a new image each)")
	flag.Parse()
	if *work == "" {
		d, err := os.MkdirTemp("", "skiff-regbench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(d)
		*work = d
	}
	b := &bench{work: *work}
	stopAll = b.stop
	defer b.stop()
	if err := b.start(*skiff); err != nil {
		fatalf("%v", err)
	}
	b.run(*sizeMB, *layers, *rounds)
}

// stopAll stops what the bench started; fatalf runs it before exiting.
var stopAll = func() {}

func fatalf(format string, args ...any) {
	stopAll()
	log.Fatalf(format, args...)
}

type target struct {
	name string
	addr string
	auth authn.Authenticator
}

type bench struct {
	work     string
	procs    []*exec.Cmd
	skiffPID int
	root     string
	targets  []target
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitTCP(addr string) error {
	for range 400 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func (b *bench) start(skiff string) error {
	const user, pass = "bench", "bench-password"
	b.root = filepath.Join(b.work, "root")
	add := exec.Command(skiff, "registry", "user", "add", user, "--root", b.root)
	add.Stdin = strings.NewReader(pass + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return fmt.Errorf("skiff registry user add: %v %s", err, out)
	}
	skAddr := freeAddr()
	logf, _ := os.Create(filepath.Join(b.work, "skiff.log"))
	d := exec.Command(skiff, "daemon", "--root", b.root, "--socket", filepath.Join(b.work, "skiff.sock"),
		"--ingress-addr", "127.0.0.1:0", "--registry-addr", skAddr)
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		return err
	}
	b.procs = append(b.procs, d)
	b.skiffPID = d.Process.Pid
	drAddr := freeAddr()
	dir := filepath.Join(b.work, "docker-registry")
	os.MkdirAll(dir, 0o755)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", dir, drAddr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	r := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	rlog, _ := os.Create(filepath.Join(b.work, "docker-registry.log"))
	r.Stdout, r.Stderr = rlog, rlog
	if err := r.Start(); err != nil {
		return fmt.Errorf("start docker-registry: %w", err)
	}
	b.procs = append(b.procs, r)
	for _, a := range []string{skAddr, drAddr} {
		if err := waitTCP(a); err != nil {
			return err
		}
	}
	b.targets = []target{
		{"skiff", skAddr, &authn.Basic{Username: user, Password: pass}},
		{"docker-registry", drAddr, authn.Anonymous},
	}
	return nil
}

func (b *bench) stop() {
	for _, p := range b.procs {
		p.Process.Kill()
		p.Wait()
	}
	// The daemon's network namespace mounts outlive it: unmount them so
	// the scratch directory can go.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], b.work+"/") {
			syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}

// makeImage returns an image of n random layers totalling size bytes,
// with OCI media types.
func makeImage(size, n int) v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for range n {
		buf := make([]byte, size/n)
		rand.Read(buf)
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(buf, types.OCIUncompressedLayer), MediaType: types.OCIUncompressedLayer})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		fatalf("%v", err)
	}
	return img
}

// pull fetches every layer of ref (4 at a time, as remote.Write pushes)
// and discards it; go-containerregistry checks each digest.
func pull(ref name.Reference, auth authn.Authenticator) (int64, error) {
	img, err := remote.Image(ref, remote.WithAuth(auth))
	if err != nil {
		return 0, err
	}
	ls, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var total int64
	var firstErr error
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rc, err := l.Compressed()
			if err == nil {
				var n int64
				n, err = io.Copy(io.Discard, rc)
				rc.Close()
				mu.Lock()
				total += n
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total, firstErr
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (b *bench) run(sizeMB, layers, rounds int) {
	size := sizeMB * 1000 * 1000
	push := map[string][]float64{}
	pullT := map[string][]float64{}
	var last v1.Image
	for round := range rounds {
		img := makeImage(size, layers)
		last = img
		order := slices.Clone(b.targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			ref, err := name.ParseReference(fmt.Sprintf("%s/bench/img:r%d", t.addr, round), name.Insecure)
			if err != nil {
				fatalf("%v", err)
			}
			start := time.Now()
			if err := remote.Write(ref, img, remote.WithAuth(t.auth)); err != nil {
				fatalf("push to %s: %v", t.name, err)
			}
			push[t.name] = append(push[t.name], float64(size)/1e6/time.Since(start).Seconds())
			start = time.Now()
			n, err := pull(ref, t.auth)
			if err != nil || n != int64(size/layers*layers) {
				fatalf("pull from %s: %v (%d bytes)", t.name, err, n)
			}
			pullT[t.name] = append(pullT[t.name], float64(size)/1e6/time.Since(start).Seconds())
		}
	}
	fmt.Printf("Push and pull of a %d MB image of %d random layers over loopback, go-containerregistry's remote package as the client (4 layers at a time), median of %d rounds, MB/s:\n\n", sizeMB, layers, rounds)
	fmt.Println("| operation | skiff | docker-registry 2.8 | skiff / docker-registry |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	for _, row := range []struct {
		op string
		m  map[string][]float64
	}{{"push", push}, {"pull", pullT}} {
		s, d := median(row.m["skiff"]), median(row.m["docker-registry"])
		fmt.Printf("| %s | %.0f | %.0f | %.2f× |\n", row.op, s, d, s/d)
	}
	b.noCopy(last, sizeMB)
}

// noCopy pulls the last image from skiff again and reports what that
// wrote: the daemon's write_bytes (/proc/PID/io) and the store's size,
// before and after; skiff serves the blobs from its store's own files.
func (b *bench) noCopy(img v1.Image, sizeMB int) {
	t := b.targets[0]
	ref, _ := name.ParseReference(t.addr+"/bench/img:r0", name.Insecure)
	storeBefore := dirBytes(filepath.Join(b.root, "images"))
	wBefore := ioField(b.skiffPID, "write_bytes")
	if _, err := pull(ref, t.auth); err != nil {
		fatalf("%v", err)
	}
	wAfter := ioField(b.skiffPID, "write_bytes")
	storeAfter := dirBytes(filepath.Join(b.root, "images"))
	fmt.Printf("\nPull of an image skiff already holds (%d MB): the daemon wrote %d bytes to disk (/proc/PID/io write_bytes); its store held %d bytes before and %d after. The blobs are the store's own files, sent with sendfile.\n",
		sizeMB, wAfter-wBefore, storeBefore, storeAfter)
	// The same image pushed again sends no layer: every blob is there.
	counter := &countingTransport{rt: http.DefaultTransport}
	if err := remote.Write(ref, img, remote.WithAuth(t.auth), remote.WithTransport(counter)); err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("Push of the same image again: %d bytes of request bodies sent (blobs present are skipped).\n", counter.sent)
}

type countingTransport struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	sent int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ContentLength > 0 {
		c.mu.Lock()
		c.sent += r.ContentLength
		c.mu.Unlock()
	}
	return c.rt.RoundTrip(r)
}

func ioField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := strings.Cut(string(line), ": "); ok && k == field {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
