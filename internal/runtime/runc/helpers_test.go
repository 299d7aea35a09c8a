package runc

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// busyboxLayer is a read-only layer holding Debian's static busybox and
// its applets, made once for the package's tests.
var busyboxLayer string

var applets = []string{"sh", "echo", "cat", "sleep", "ls", "id", "hostname", "ps", "nc", "head", "tail",
	"dd", "grep", "seq", "wc", "true", "false", "kill", "env", "pwd", "yes", "tr", "printf", "test"}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	dir, err := os.MkdirTemp("", "skiff-runc-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	busyboxLayer, err = makeBusyboxLayer(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func makeBusyboxLayer(dir string) (string, error) {
	layer := filepath.Join(dir, "busybox")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(layer, d), 0o755); err != nil {
			return "", err
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static is needed (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(layer, "bin/busybox"), bb, 0o755); err != nil {
		return "", err
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(layer, "bin", a)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(layer, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return layer, nil
}

func newRuntime(t testing.TB, opts ...Option) *Runtime {
	t.Helper()
	r, err := New(context.Background(), append([]Option{WithStateDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func randomID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// testContainer is a created container with its files.
type testContainer struct {
	id, bundle, rootfs, log string
	pid                     int
}

// create mounts a busybox rootfs and creates a container running cmd.
func create(t testing.TB, r *Runtime, cfg api.ContainerConfig, logMax int64, cmd ...string) *testContainer {
	t.Helper()
	return createOpts(t, r, cfg, runtime.CreateOpts{LogMaxSize: logMax}, cmd...)
}

// createOpts is create with the runtime's options (Bundle and LogPath are
// filled in).
func createOpts(t testing.TB, r *Runtime, cfg api.ContainerConfig, opts runtime.CreateOpts, cmd ...string) *testContainer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	c := &testContainer{
		id:     randomID("t"),
		bundle: filepath.Join(dir, "bundle"),
		log:    filepath.Join(dir, "ctr.log"),
	}
	c.rootfs = filepath.Join(c.bundle, "rootfs")
	if err := rootfs.Mount([]string{busyboxLayer}, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), c.rootfs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rootfs.Unmount(c.rootfs) })
	cfg.Cmd = cmd
	spec, err := oci.Spec(oci.Input{
		ID: c.id, Rootfs: c.rootfs, Image: v1.Config{Cmd: []string{"sh"}}, Config: cfg,
		CgroupParent: "/skiff-test", HostRlimits: true, HostCapabilities: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Bundle, opts.LogPath = c.bundle, c.log
	c.pid, err = r.Create(ctx, c.id, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Delete(context.Background(), c.id); err != nil {
			t.Errorf("delete %s: %v", c.id, err)
		}
	})
	return c
}

// run creates and starts a container and waits for it to exit.
func run(t testing.TB, r *Runtime, cfg api.ContainerConfig, cmd ...string) (*testContainer, runtime.ExitStatus) {
	t.Helper()
	c := create(t, r, cfg, 0, cmd...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	st, err := r.Wait(ctx, c.id)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// logLine is one parsed k8s-file log line.
type logLine struct {
	stream, tag, text string
}

func readLog(t testing.TB, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 3 {
			t.Fatalf("malformed log line %q", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Fatalf("log line %q has no RFC 3339 timestamp: %v", sc.Text(), err)
		}
		l := logLine{stream: parts[1], tag: parts[2]}
		if len(parts) == 4 {
			l.text = parts[3]
		}
		out = append(out, l)
	}
	return out
}

func logText(t testing.TB, path, stream string) string {
	var b strings.Builder
	for _, l := range readLog(t, path) {
		if l.stream == stream {
			b.WriteString(l.text)
			if l.tag == "F" {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
