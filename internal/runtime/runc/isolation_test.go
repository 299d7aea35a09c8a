package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

func TestIsolationAndLogs(t *testing.T) {
	r := newRuntime(t)
	c, st := run(t, r, api.ContainerConfig{Hostname: "boxy"}, "sh", "-c",
		`echo "pid=$$"; echo "host=$(hostname)"; echo "procs=$(ls -d /proc/[0-9]* | wc -l)"; echo "to-stderr" >&2; printf partial`)
	if st.Code != 0 {
		t.Fatalf("exit %d; log:\n%s", st.Code, logText(t, c.log, "stderr"))
	}
	out := logText(t, c.log, "stdout")
	for _, want := range []string{"pid=1\n", "host=boxy\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
	// sh, the subshell and ls: the host's processes are not visible.
	var procs int
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "procs="); ok {
			procs, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if procs < 1 || procs > 4 {
		t.Errorf("container sees %d processes, want only its own (stdout %q)", procs, out)
	}
	if got := logText(t, c.log, "stderr"); got != "to-stderr\n" {
		t.Errorf("stderr %q, want %q", got, "to-stderr\n")
	}
	// stdout and stderr are separate pipes: only order within a stream
	// is kept.
	var last logLine
	for _, l := range readLog(t, c.log) {
		if l.stream == "stdout" {
			last = l
		}
	}
	if last.tag != "P" || last.text != "partial" {
		t.Errorf("last stdout line %+v, want a partial line", last)
	}
}

func TestDefaultHostnameIsShortID(t *testing.T) {
	r := newRuntime(t)
	c, _ := run(t, r, api.ContainerConfig{}, "hostname")
	want := c.id
	if len(want) > 12 {
		want = want[:12]
	}
	if got := strings.TrimSpace(logText(t, c.log, "stdout")); got != want {
		t.Fatalf("hostname %q, want %q", got, want)
	}
}

func TestSecurityDefaults(t *testing.T) {
	r := newRuntime(t)
	c, st := run(t, r, api.ContainerConfig{}, "sh", "-c",
		`grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status; echo "kcore=$(head -c 16 /proc/kcore | wc -c)"; echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sysrw || echo sysro; id -u`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, logText(t, c.log, "stderr"))
	}
	out := logText(t, c.log, "stdout")
	// Docker's default set without NET_RAW: CHOWN DAC_OVERRIDE FOWNER
	// FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT MKNOD
	// AUDIT_WRITE SETFCAP.
	for _, want := range []string{"Seccomp:\t2", "NoNewPrivs:\t1", "CapBnd:\t00000000a80405fb", "CapEff:\t00000000a80405fb", "kcore=0", "sysro", "\n0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPrivilegedAndUser(t *testing.T) {
	r := newRuntime(t)
	c, st := run(t, r, api.ContainerConfig{Privileged: true}, "sh", "-c", `grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status`)
	out := logText(t, c.log, "stdout")
	if st.Code != 0 || !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "NoNewPrivs:\t0") {
		t.Fatalf("privileged: exit %d, status %q", st.Code, out)
	}
	c, st = run(t, r, api.ContainerConfig{User: "nobody", CapDrop: []string{"ALL"}}, "sh", "-c", `id -u; id -g; grep '^CapEff:' /proc/self/status`)
	out = logText(t, c.log, "stdout")
	if st.Code != 0 || !strings.Contains(out, "65534\n65534\n") || !strings.Contains(out, "CapEff:\t0000000000000000") {
		t.Fatalf("user nobody: exit %d, output %q", st.Code, out)
	}
}

func TestOOMKilled(t *testing.T) {
	r := newRuntime(t)
	// tail keeps the whole last "line" in memory; /dev/zero has no newline.
	c, st := run(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 32 << 20}},
		"sh", "-c", "head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null; echo survived")
	// Either the kernel killed the shell's child (the shell goes on) or the
	// shell itself; nothing else ends this.
	if st.Code != 137 && !strings.Contains(logText(t, c.log, "stdout"), "survived") {
		t.Fatalf("exit %d without the shell surviving: want an OOM kill", st.Code)
	}
	if !st.OOMKilled {
		t.Fatalf("exit %+v: OOMKilled is false (stdout %q, stderr %q)", st, logText(t, c.log, "stdout"), logText(t, c.log, "stderr"))
	}
	stats, err := r.Stats(context.Background(), c.id)
	if err != nil {
		t.Fatal(err)
	}
	if stats.OOMKills == 0 {
		t.Fatalf("stats %+v count no OOM kill", stats)
	}

	// The init process itself OOM-killed: exit 137.
	c, st = run(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 32 << 20}},
		"tail", "-c", "100000000", "/dev/zero")
	if st.Code != 137 || !st.OOMKilled {
		t.Fatalf("init over the limit: exit %+v, want 137 and OOMKilled (stderr %q)", st, logText(t, c.log, "stderr"))
	}
	// And a container within its limit is not OOMKilled.
	_, st = run(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 32 << 20}}, "true")
	if st.OOMKilled {
		t.Fatal("a container that stayed within its limit is reported OOMKilled")
	}
}

func TestPidsLimit(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{Resources: api.Resources{PidsLimit: 16}}, 0, "sleep", "60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	// A bounded fork bomb: try to start 40 sleeps under a limit of 16.
	var stderr strings.Builder
	code, err := r.Exec(ctx, c.id, &specs.Process{Args: []string{"sh", "-c", "for i in $(seq 1 40); do sleep 60 >/dev/null 2>&1 & done; wait"}},
		runtime.ExecIO{Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 || !strings.Contains(stderr.String(), "fork") {
		t.Fatalf("fork bomb exited %d with stderr %q, want a fork failure", code, stderr.String())
	}
	s, err := r.Stats(ctx, c.id)
	if err != nil {
		t.Fatal(err)
	}
	if s.PidsLimit != 16 || s.Pids > 16 || s.Pids < 10 {
		t.Fatalf("pids %d of %d, want the limit 16 reached but not passed", s.Pids, s.PidsLimit)
	}
}

func TestResourcesInCgroup(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 64 << 20, NanoCPUs: 5e8}}, 0,
		"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	cgroupsPath := "/skiff-test/" + c.id
	var quotaFile string
	if r.cg.Layout() == "v2" {
		quotaFile = filepath.Join("/sys/fs/cgroup", cgroupsPath, "cpu.max")
	} else {
		quotaFile = filepath.Join("/sys/fs/cgroup/cpu", cgroupsPath, "cpu.cfs_quota_us")
	}
	b, err := os.ReadFile(quotaFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b))[0]; got != "50000" {
		t.Fatalf("cpu quota %q, want 50000 (half of a 100000 µs period)", got)
	}
	time.Sleep(100 * time.Millisecond)
	s, err := r.Stats(ctx, c.id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", s)
	if s.MemoryLimitBytes != 64<<20 || s.Pids < 1 || s.Pids > 3 || s.PidsLimit != 0 || s.CPUUsageNanos == 0 ||
		s.MemoryUsageBytes == 0 || s.MemoryUsageBytes > 64<<20 || time.Since(s.Time) > time.Second {
		t.Fatalf("implausible stats %+v", s)
	}
}

func TestExec(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, r, api.ContainerConfig{Env: []string{"FROM_CONTAINER=yes"}}, 0, "sleep", "60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		p          specs.Process
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "output and code", p: specs.Process{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}}, wantCode: 5, wantStdout: "out\n", wantStderr: "err\n"},
		{name: "container env and cwd", p: specs.Process{Args: []string{"sh", "-c", "echo $FROM_CONTAINER; pwd"}}, wantStdout: "yes\n/\n"},
		{name: "own cwd and env", p: specs.Process{Args: []string{"sh", "-c", "echo $X; pwd"}, Env: []string{"X=1", "PATH=/bin"}, Cwd: "/tmp"}, wantStdout: "1\n/tmp\n"},
		{name: "stdin", p: specs.Process{Args: []string{"cat"}}, stdin: "hello\n", wantStdout: "hello\n"},
		{name: "same pid namespace", p: specs.Process{Args: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}}, wantStdout: "sleep 60 "},
		{name: "capabilities and seccomp inherited", p: specs.Process{Args: []string{"grep", "-E", "^(Seccomp|CapEff):", "/proc/self/status"}}, wantStdout: "CapEff:\t00000000a80405fb\nSeccomp:\t2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			io := runtime.ExecIO{Stdout: &stdout, Stderr: &stderr}
			if tt.stdin != "" {
				io.Stdin = strings.NewReader(tt.stdin)
			}
			code, err := r.Exec(ctx, c.id, &tt.p, io)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || stdout.String() != tt.wantStdout || stderr.String() != tt.wantStderr {
				t.Fatalf("got code %d stdout %q stderr %q; want %d %q %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	_, err := r.Exec(ctx, c.id, &specs.Process{Args: []string{"/no/such"}}, runtime.ExecIO{})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("exec of a missing binary: got %v, want ErrInvalid", err)
	}
	if err := r.Kill(ctx, c.id, 9, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	_, err = r.Exec(ctx, c.id, &specs.Process{Args: []string{"true"}}, runtime.ExecIO{})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("exec in an exited container: got %v, want ErrConflict", err)
	}
}

func TestDeleteCleansUp(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, state := range []string{"created", "running", "exited"} {
		t.Run(state, func(t *testing.T) {
			c := create(t, r, api.ContainerConfig{}, 1<<20, "sh", "-c", "echo hi; sleep 60")
			switch state {
			case "running":
				if err := r.Start(ctx, c.id); err != nil {
					t.Fatal(err)
				}
			case "exited":
				if err := r.Start(ctx, c.id); err != nil {
					t.Fatal(err)
				}
				if err := r.Kill(ctx, c.id, 9, true); err != nil {
					t.Fatal(err)
				}
				if _, err := r.Wait(ctx, c.id); err != nil {
					t.Fatal(err)
				}
			}
			conmonPid, err := readPid(filepath.Join(r.containerDir(c.id), "conmon.pid"))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Delete(ctx, c.id); err != nil {
				t.Fatal(err)
			}
			assertGone(t, r, c.id, "/skiff-test/"+c.id)
			if processRunning(conmonPid) {
				t.Errorf("conmon %d still runs", conmonPid)
			}
			for _, f := range []string{"attach", "ctl", "winsz"} {
				if _, err := os.Stat(filepath.Join(c.bundle, f)); err == nil {
					t.Errorf("monitor file %s left in the bundle", f)
				}
			}
			if _, err := os.Stat(filepath.Join(c.bundle, "config.json")); err != nil {
				t.Errorf("Delete removed the bundle's config.json: %v", err)
			}
			if _, err := os.Stat(c.log); err != nil {
				t.Errorf("Delete removed the log: %v", err)
			}
			if _, err := os.Stat(keepPath(c.log)); err == nil {
				t.Error("log rotation link left behind")
			}
			if err := r.Delete(ctx, c.id); err != nil {
				t.Fatalf("second Delete: %v", err)
			}
		})
	}
}

// processRunning reports whether pid exists and is not a zombie.
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}
