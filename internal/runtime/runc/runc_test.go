package runc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

const helperEnv = "SKIFF_RUNC_TEST_HELPER"

func TestExitCode(t *testing.T) {
	r := newRuntime(t)
	tests := []struct {
		name string
		cmd  []string
		want int
	}{
		{"zero", []string{"true"}, 0},
		{"three", []string{"sh", "-c", "exit 3"}, 3},
		{"false", []string{"false"}, 1},
		// PID 1 ignores signals sent from inside its namespace; SIGKILL
		// from outside is in TestKillWait.
		{"signal to self ignored", []string{"sh", "-c", "kill -9 $$; exit 4"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st := run(t, r, api.ContainerConfig{}, tt.cmd...)
			if st.Code != tt.want || st.OOMKilled {
				t.Fatalf("exit %+v, want code %d", st, tt.want)
			}
		})
	}
}

func TestKillWait(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{}, 0, "sleep", "60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Exited(ctx, c.id); ok || err != nil {
		t.Fatalf("Exited on a running container: ok=%v err=%v", ok, err)
	}
	st, err := r.State(ctx, c.id)
	if err != nil || st.Status != runtime.StatusRunning || st.Pid != c.pid {
		t.Fatalf("state %+v, %v; want running with pid %d", st, err, c.pid)
	}
	if err := r.Start(ctx, c.id); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second Start: got %v, want ErrConflict", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := r.Wait(wctx, c.id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running container returned %v", err)
	}
	wcancel()

	done := make(chan runtime.ExitStatus, 1)
	go func() {
		st, err := r.Wait(ctx, c.id)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	time.Sleep(20 * time.Millisecond) // let Wait block first
	killed := time.Now()
	if err := r.Kill(ctx, c.id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	exit := <-done
	returned := time.Now()
	if exit.Code != 137 || exit.OOMKilled {
		t.Fatalf("exit %+v, want 137", exit)
	}
	t.Logf("Wait returned %v after Kill, %v after conmon wrote the exit file", returned.Sub(killed), returned.Sub(exit.At))
	if exit.At.Before(killed.Add(-time.Second)) {
		t.Fatalf("exit time %v is before the kill at %v", exit.At, killed)
	}
	// Wait and Exited on an exited container return at once.
	again, err := r.Wait(ctx, c.id)
	if err != nil || again.Code != 137 {
		t.Fatalf("second Wait: %+v, %v", again, err)
	}
	if st, ok, err := r.Exited(ctx, c.id); !ok || err != nil || st.Code != 137 {
		t.Fatalf("Exited: %+v %v %v", st, ok, err)
	}
	if st, err := r.State(ctx, c.id); err != nil || st.Status != runtime.StatusStopped {
		t.Fatalf("state after exit: %+v, %v", st, err)
	}
	if err := r.Kill(ctx, c.id, syscall.SIGKILL, false); err == nil {
		t.Fatal("Kill of an exited container succeeded")
	}
}

func TestUnknownAndDuplicate(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"Start": r.Start(ctx, "nope"),
		"Kill":  r.Kill(ctx, "nope", syscall.SIGTERM, false),
	} {
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s of an unknown id: got %v, want ErrNotFound", name, err)
		}
	}
	if _, err := r.Wait(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Wait of an unknown id: %v", err)
	}
	if _, err := r.State(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State of an unknown id: %v", err)
	}
	if err := r.Delete(ctx, "nope"); err != nil {
		t.Errorf("Delete of an unknown id: %v", err)
	}
	if _, err := r.Stats(ctx, "../etc"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Stats of a bad id: %v", err)
	}
	c := create(t, r, api.ContainerConfig{}, 0, "true")
	_, err := r.Create(ctx, c.id, &specs.Spec{Process: &specs.Process{Args: []string{"true"}}, Root: &specs.Root{Path: c.rootfs}},
		runtime.CreateOpts{Bundle: c.bundle, LogPath: c.log})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate Create: got %v, want ErrConflict", err)
	}
	// The failed duplicate must not have harmed the first container.
	if st, err := r.State(ctx, c.id); err != nil || st.Status != runtime.StatusCreated {
		t.Fatalf("state after duplicate Create: %+v, %v", st, err)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	root := filepath.Join(bundle, "rootfs")
	if err := rootfs.Mount([]string{busyboxLayer}, filepath.Join(dir, "u"), filepath.Join(dir, "w"), root); err != nil {
		t.Fatal(err)
	}
	defer rootfs.Unmount(root)
	spec, err := oci.Spec(oci.Input{ID: "bad", Rootfs: root, Image: v1.Config{Cmd: []string{"/no/such/binary"}}, HostRlimits: true, HostCapabilities: true, CgroupParent: "/skiff-test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Create(ctx, "bad", spec, runtime.CreateOpts{Bundle: bundle, LogPath: filepath.Join(dir, "log")})
	if err == nil {
		t.Fatal("Create of a missing binary succeeded")
	}
	t.Logf("create error: %v", err)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("got %v, want ErrInvalid", err)
	}
	assertGone(t, r, "bad", "/skiff-test/bad")
}

// assertGone checks that nothing of id is left.
func assertGone(t *testing.T, r *Runtime, id, cgroupsPath string) {
	t.Helper()
	for _, p := range []string{
		filepath.Join(r.stateDir, "runtime", id),
		filepath.Join(r.stateDir, "containers", id),
		filepath.Join(r.stateDir, "exits", id),
		filepath.Join(r.stateDir, "sock", id),
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left behind", p)
		}
	}
	if r.cg.Exists(cgroupsPath) {
		t.Errorf("cgroup %s is left behind", cgroupsPath)
	}
	out, _ := exec.Command("pgrep", "-f", "conmon.*-c "+id+" ").Output()
	if len(out) > 0 {
		t.Errorf("conmon for %s still runs: pids %s", id, out)
	}
}

func TestInfo(t *testing.T) {
	r := newRuntime(t)
	info, err := r.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "runc" || !filepath.IsAbs(info.Path) || info.Version == "" || info.Monitor != "conmon" ||
		info.MonitorVersion == "" || !filepath.IsAbs(info.MonitorPath) {
		t.Fatalf("info %+v", info)
	}
	switch info.CgroupLayout {
	case "v1", "v2", "hybrid":
	default:
		t.Fatalf("cgroup layout %q", info.CgroupLayout)
	}
	t.Logf("%+v", info)
	if _, err := New(context.Background(), WithStateDir(t.TempDir()), WithRuntime("no-such-runtime")); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("missing runtime: got %v, want ErrNotImplemented", err)
	}
	if _, err := New(context.Background(), WithStateDir("relative")); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("relative state dir: got %v, want ErrInvalid", err)
	}
}

func TestMonitorKilled(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{}, 0, "sleep", "60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	pid, err := readPid(filepath.Join(r.containerDir(c.id), "conmon.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.State(ctx, c.id); err != nil || st.Status != runtime.StatusRunning || !st.Monitor {
		t.Fatalf("State before conmon died: %+v, %v; want running with its monitor", st, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Wait(ctx, c.id)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("Wait after conmon died: got %v, want ErrUnavailable", err)
		}
		if st, err := r.State(ctx, c.id); err != nil || st.Status != runtime.StatusRunning || st.Monitor {
			t.Fatalf("State after conmon died: %+v, %v; want running without a monitor", st, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not notice that conmon died")
	}
	start := time.Now()
	if err := r.Delete(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Delete without a monitor took %v", d)
	}
	assertGone(t, r, c.id, "/skiff-test/"+c.id)
}
