package runc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// helperMain is the creator process of TestContainerSurvivesCreator: it
// creates and starts a container, says so, and waits to be killed.
func helperMain() int {
	ctx := context.Background()
	var spec specs.Spec
	b, err := os.ReadFile(os.Getenv("HELPER_SPEC"))
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := New(ctx, WithStateDir(os.Getenv("HELPER_STATE")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id := os.Getenv("HELPER_ID")
	if _, err := r.Create(ctx, id, &spec, runtime.CreateOpts{Bundle: os.Getenv("HELPER_BUNDLE"), LogPath: os.Getenv("HELPER_LOG")}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := r.Start(ctx, id); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started")
	time.Sleep(time.Minute)
	return 0
}

func TestContainerSurvivesCreator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	id := randomID("survivor")
	bundle := filepath.Join(dir, "bundle")
	root := filepath.Join(bundle, "rootfs")
	logPath := filepath.Join(dir, "ctr.log")
	if err := rootfs.Mount([]string{busyboxLayer}, filepath.Join(dir, "u"), filepath.Join(dir, "w"), root); err != nil {
		t.Fatal(err)
	}
	defer rootfs.Unmount(root)
	spec, err := oci.Spec(oci.Input{ID: id, Rootfs: root, Image: v1.Config{Cmd: []string{"sh"}},
		Config:       api.ContainerConfig{Cmd: []string{"sh", "-c", "for i in $(seq 1 20); do echo tick $i; sleep 0.1; done; exit 7"}},
		CgroupParent: "/skiff-test", HostRlimits: true, HostCapabilities: true})
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(dir, "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1", "HELPER_SPEC="+specFile, "HELPER_STATE="+state,
		"HELPER_ID="+id, "HELPER_BUNDLE="+bundle, "HELPER_LOG="+logPath)
	helper.Stderr = os.Stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "started\n" {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("creator said %q, %v", line, err)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	// A fresh Runtime on the same state directory takes over.
	r := newRuntimeAt(t, state)
	defer r.Delete(context.Background(), id)
	st, err := r.State(ctx, id)
	if err != nil || st.Status != runtime.StatusRunning {
		t.Fatalf("after the creator died: state %+v, %v; want running", st, err)
	}
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size()
	time.Sleep(300 * time.Millisecond)
	if after := size(); after <= before {
		t.Fatalf("log stopped growing after the creator died (%d → %d bytes)", before, after)
	}
	exit, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 7 {
		t.Fatalf("exit %+v, want 7", exit)
	}
	if got := strings.Count(logText(t, logPath, "stdout"), "tick "); got != 20 {
		t.Fatalf("log holds %d ticks, want 20", got)
	}
	if err := r.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	assertGone(t, r, id, "/skiff-test/"+id)
}

func newRuntimeAt(t *testing.T, state string) *Runtime {
	t.Helper()
	r, err := New(context.Background(), WithStateDir(state))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestLogRotation(t *testing.T) {
	r := newRuntime(t)
	const max = 4096
	// 400 numbered lines of about 60 bytes in the log: several rotations.
	// The pauses let the watcher relink between conmon's rotations.
	c := create(t, r, api.ContainerConfig{}, max, "sh", "-c",
		`for i in $(seq 1 400); do echo "line $i ......................"; [ $((i % 25)) = 0 ] && sleep 0.05; done; true`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{c.log, RotatedPath(c.log)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max || fi.Size() < max/4 {
			t.Fatalf("%s is %d bytes, want at most the cap %d and not nearly empty", p, fi.Size(), max)
		}
	}
	// The rotated file and the current one hold consecutive lines ending
	// with the last one.
	var nums []int
	for _, p := range []string{RotatedPath(c.log), c.log} {
		for _, l := range readLog(t, p) {
			f := strings.Fields(l.text)
			if len(f) < 2 {
				t.Fatalf("unexpected log line %+v", l)
			}
			n, _ := strconv.Atoi(f[1])
			nums = append(nums, n)
		}
	}
	if nums[len(nums)-1] != 400 {
		t.Fatalf("last line is %d, want 400", nums[len(nums)-1])
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Fatalf("lines jump from %d to %d across the rotated files", nums[i-1], nums[i])
		}
	}
	t.Logf("rotated file and log hold lines %d-%d", nums[0], nums[len(nums)-1])
}
