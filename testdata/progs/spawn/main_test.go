package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for spawn's children.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		if os.Getenv("SPAWN_TEST_SILENT") == "1" {
			time.Sleep(time.Minute) // never reports
		}
		runChild()
		return
	}
	os.Exit(m.Run())
}

func TestSpawn(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		env     string
		n       int
		started int
		err     string
	}{
		{name: "all", path: self, n: 5, started: 5},
		{name: "none asked", path: self, n: 0, started: 0},
		{name: "missing program", path: "/no/such/spawn", n: 3, err: "start:"},
		{name: "child exits without reporting", path: "/bin/true", n: 3, err: "exited before it was up"},
		{name: "child never reports", path: self, env: "SPAWN_TEST_SILENT=1", n: 3, err: "not up within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			children, err := spawn(tt.path, tt.n, 300*time.Millisecond)
			defer func() {
				for _, c := range children {
					c.Process.Kill()
					c.Wait()
				}
			}()
			if len(children) != tt.started {
				t.Errorf("started %d, want %d", len(children), tt.started)
			}
			for _, c := range children {
				if err := c.Process.Signal(syscall.Signal(0)); err != nil {
					t.Errorf("child %d is not running: %v", c.Process.Pid, err)
				}
			}
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

// TestPidsLimit runs the command in a pids cgroup with a limit of 10 and
// checks it reports that it stopped short, and that it exits cleanly.
func TestPidsLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestPidsLimit makes a cgroup and must run as root")
	}
	// The program as the image holds it: a test binary, more so with
	// -race, has more threads than the command.
	bin := filepath.Join(t.TempDir(), "spawn")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cg := pidsCgroup(t, 10)
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" -n 40`, "sh", cg, bin)
	out, err := cmd.CombinedOutput()
	var n, of int
	if _, serr := fmt.Sscanf(string(out), "spawned %d of %d", &n, &of); serr != nil {
		t.Fatalf("output %q (%v): no \"spawned N of M\"", out, err)
	}
	if n == 0 || n >= 40 || of != 40 {
		t.Errorf("spawned %d of %d under pids.max 10:\n%s", n, of, out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit %v, want code 1 for a short count", err)
	}
}

// pidsCgroup makes a pids cgroup limited to max tasks, removed at the end.
func pidsCgroup(t *testing.T, max int) string {
	t.Helper()
	root := "/sys/fs/cgroup/pids" // cgroup v1 and hybrid layouts
	if _, err := os.Stat(root); err != nil {
		root = "/sys/fs/cgroup" // cgroup v2, pids enabled for children
	}
	dir := filepath.Join(root, fmt.Sprintf("skiff-spawn-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make a pids cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The tasks are gone once the command has exited.
		for range 50 {
			if err := os.Remove(dir); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(fmt.Sprint(max)), 0o644); err != nil {
		t.Fatalf("set pids.max: %v", err)
	}
	return dir
}
