package logs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/logs"
)

// TestConmon runs a busybox container under the real conmon and runc,
// follows its log while it writes, and checks every line arrives once, in
// order, with long lines cut into partial records that join up again.
func TestConmon(t *testing.T) {
	for _, bin := range []string{"conmon", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required (apt-get install %s): %v", bin, bin, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("TestConmon runs containers and must run as root")
	}
	const script = `echo out1; echo err1 >&2; printf part; sleep 0.05; echo ial
i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done
head -c 20000 /dev/zero | tr '\0' x; echo
printf 'no newline at exit'`
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	writeBusyboxBundle(t, bundle, "/bin/sh", "-c", script)
	root := filepath.Join(dir, "runc")
	id := fmt.Sprintf("skiff-logs-test-%d", os.Getpid())
	logPath := filepath.Join(dir, "ctr.log")
	exitDir := filepath.Join(dir, "exits")
	sockDir := filepath.Join(dir, "sock")
	for _, d := range []string{exitDir, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	runc := func(args ...string) error {
		out, err := exec.Command("runc", append([]string{"--root", root}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("runc %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() { runc("delete", "--force", id) })

	pidFile := filepath.Join(dir, "pid")
	cmd := exec.Command("conmon", "--api-version", "1",
		"-c", id, "-u", id, "-n", id, "-r", "/usr/bin/runc", "--runtime-arg", "--root="+root,
		"-b", bundle, "-p", pidFile, "--exit-dir", exitDir, "--socket-dir-path", sockDir,
		"-l", "k8s-file:"+logPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("conmon: %v: %s", err, out)
	}
	// Without a sync pipe conmon returns before "runc create" is done: the
	// container exists once its pid file does.
	if !waitFor(pidFile) {
		t.Fatal("conmon wrote no pid file within 10s")
	}

	f := startFollow(t, t.Context(), logPath, logs.Options{Tail: -1})
	var entries []api.LogEntry
	go func() {
		// conmon writes the exit file once the container's output is
		// drained and logged.
		waitFor(filepath.Join(exitDir, id))
		close(f.done)
	}()
	if err := runc("start", id); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-f.result:
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end within 10s of the container's start")
	}
	if err != nil {
		t.Fatal(err)
	}
	for len(f.entries) > 0 {
		entries = append(entries, <-f.entries)
	}
	if len(f.bad) != 0 {
		t.Errorf("skipped records: %v", f.bad)
	}

	// Join partial records per stream into lines.
	var stdout, stderr []string
	var pending = map[string]string{}
	partials := 0
	for _, e := range entries {
		if e.Time.IsZero() || time.Since(e.Time) > time.Minute {
			t.Errorf("entry time %v is not now", e.Time)
		}
		pending[e.Stream] += e.Line
		if e.Partial {
			partials++
			continue
		}
		line := pending[e.Stream]
		delete(pending, e.Stream)
		if e.Stream == logs.Stdout {
			stdout = append(stdout, line)
		} else {
			stderr = append(stderr, line)
		}
	}
	want := []string{"out1", "partial"}
	want = append(want, lines(0, 300)...)
	for i := range want[2:] {
		want[2+i] = strings.TrimPrefix(want[2+i], "line-")
		want[2+i] = "line" + want[2+i]
	}
	want = append(want, strings.Repeat("x", 20000))
	assertLines(t, stdout, want)
	assertLines(t, stderr, []string{"err1"})
	// conmon cuts at each 8 KiB read: the 20000-byte line takes at least
	// two partial records, "part" one more.
	if partials < 3 {
		t.Errorf("%d partial records, want at least 3", partials)
	}
	// conmon writes the unterminated last output as a partial record.
	if got := pending[logs.Stdout]; got != "no newline at exit" {
		t.Errorf("last partial output = %q", got)
	}
}

// writeBusyboxBundle writes an OCI bundle whose rootfs holds only the
// host's static busybox, running args.
func writeBusyboxBundle(t *testing.T, bundle string, args ...string) {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is required (apt-get install busybox-static): %v", err)
	}
	bin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "echo", "printf", "sleep", "head", "tr"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	raw, err = json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits up to 10s for a file to exist and reports whether it does.
func waitFor(path string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
