package runc

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

// statePaths returns the cgroup directories runc recorded for id.
func statePaths(t *testing.T, r *Runtime, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.stateDir, "runtime", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st runcState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.CgroupPaths) == 0 {
		t.Fatal("state.json names no cgroup")
	}
	var out []string
	for _, p := range st.CgroupPaths {
		out = append(out, p)
	}
	return out
}

func TestDeleteStoppedInProcess(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{}, 0, "sh", "-c", "sleep 60")
	paths := statePaths(t, r, c.id)
	runtimeDir := filepath.Join(r.stateDir, "runtime", c.id)

	// Created (init waiting on its fifo) and running: runc's job.
	if r.deleteStopped(c.id) {
		t.Fatal("deleteStopped took a created container")
	}
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	// A cgroup below the container's, as a program inside may make one.
	sub := filepath.Join(paths[0], "child")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if r.deleteStopped(c.id) {
		t.Fatal("deleteStopped took a running container")
	}
	if _, err := os.Stat(runtimeDir); err != nil {
		t.Fatalf("a refused deleteStopped changed the state: %v", err)
	}

	if err := r.Kill(ctx, c.id, 9, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if !r.deleteStopped(c.id) {
		t.Fatal("deleteStopped refused an exited container")
	}
	for _, p := range append(paths, sub) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s is left behind", p)
		}
	}
	if _, err := os.Stat(runtimeDir); err == nil {
		t.Error("runc's state directory is left behind")
	}
	if err := r.Delete(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	assertGone(t, r, c.id, "/skiff-test/"+c.id)
}

func TestRuncRunsSealed(t *testing.T) {
	r := newRuntime(t)
	if r.sealed == nil || !strings.HasPrefix(r.runtimePath, "/proc/") {
		t.Fatalf("runc runs from %s, not from a sealed copy", r.runtimePath)
	}
	seals, err := unix.FcntlInt(r.sealed.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals != runcSeals {
		t.Fatalf("seals %#x, %v; want %#x", seals, err, runcSeals)
	}
	if _, err := r.sealed.Write([]byte("x")); err == nil {
		t.Fatal("the sealed copy of runc is writable")
	}
	info, _ := os.Stat(r.binaryPath)
	st, _ := r.sealed.Stat()
	if st.Size() != info.Size() {
		t.Fatalf("sealed copy is %d bytes, runc %d", st.Size(), info.Size())
	}
}
