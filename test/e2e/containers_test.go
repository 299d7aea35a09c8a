package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

func inspect(t *testing.T, d *Daemon, name string) api.Container {
	t.Helper()
	out := must(t, d, "inspect", "--type", "container", name)
	var cs []api.Container
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("inspect %s: %v\n%s", name, err, out)
	}
	return cs[0]
}

func TestRunExitCodes(t *testing.T) {
	d := env.daemon
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{"success", []string{"run", "--rm", "busybox", "true"}, 0, "", ""},
		{"exit code passes through", []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3, "", ""},
		{"output", []string{"run", "--rm", "busybox", "echo", "hi there"}, 0, "hi there\n", ""},
		{"stderr kept apart", []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"}, 0, "out\n", "err"},
		{"command not found", []string{"run", "--rm", "busybox", "/no/such/binary"}, 127, "", "/no/such/binary"},
		{"image default command", []string{"run", "--rm", "hello", "-print", "from hello"}, 0, "from hello\n", ""},
		{"env and workdir", []string{"run", "--rm", "-e", "A=1", "-w", "/tmp", "busybox", "sh", "-c", "echo $A $(pwd)"}, 0, "1 /tmp\n", ""},
		{"user by name", []string{"run", "--rm", "-u", "app", "busybox", "id"}, 0, "uid=1000(app) gid=1000(app) groups=50(staff)\n", ""}, // names: a non-root user reads /etc/passwd
		{"user by uid:gid", []string{"run", "--rm", "-u", "1234:5678", "busybox", "id", "-u"}, 0, "1234\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Run("", tc.args...)
			if r.Code != tc.code {
				t.Fatalf("exit code %d, want %d: %s", r.Code, tc.code, r)
			}
			if r.Stdout != tc.stdout {
				t.Fatalf("stdout %q, want %q", r.Stdout, tc.stdout)
			}
			if tc.stderrIn != "" && !strings.Contains(r.Stderr, tc.stderrIn) {
				t.Fatalf("stderr %q does not contain %q", r.Stderr, tc.stderrIn)
			}
		})
	}
	// --rm leaves nothing behind.
	if out := must(t, d, "ps", "-aq"); strings.TrimSpace(out) != "" {
		for _, id := range strings.Fields(out) {
			c := inspect(t, d, id)
			if c.Config.AutoRemove {
				t.Errorf("auto-removed container still listed: %s %v", c.Name, c.State)
			}
		}
	}
}

func TestIsolation(t *testing.T) {
	d := env.daemon
	out := must(t, d, "run", "--rm", "--network", "none", "--hostname", "box1", "busybox", "sh", "-c",
		"echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'; grep Seccomp: /proc/self/status; grep NoNewPrivs /proc/self/status; grep CapBnd /proc/self/status; cat /proc/kcore | wc -c; ip link 2>/dev/null | grep -c ': <' || cat /proc/net/dev | grep -c :")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 8 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	if lines[0] != "pid=1" {
		t.Errorf("shell is not PID 1: %s", lines[0])
	}
	if lines[1] != "box1" {
		t.Errorf("hostname %q, want box1", lines[1])
	}
	if n, _ := strconv.Atoi(lines[2]); n > 4 || n == 0 {
		t.Errorf("container sees %d processes; the host's must be hidden", n)
	}
	if !strings.HasSuffix(lines[3], "2") {
		t.Errorf("seccomp not in filter mode: %s", lines[3])
	}
	if !strings.HasSuffix(lines[4], "1") {
		t.Errorf("no_new_privs not set: %s", lines[4])
	}
	if caps := strings.Fields(lines[5]); len(caps) != 2 || caps[1] != "00000000a80405fb" {
		t.Errorf("capability bounding set %s is not docker's default without NET_RAW (00000000a80405fb)", lines[5])
	}
	if lines[6] != "0" {
		t.Errorf("/proc/kcore readable (%s bytes); it must be masked", lines[6])
	}
	if lines[7] != "1" {
		t.Errorf("container sees %s network interfaces, want only loopback", lines[7])
	}
	// Privileged is explicit and gives everything.
	out = must(t, d, "run", "--rm", "--privileged", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status")
	if !strings.HasSuffix(strings.TrimSpace(out), "0") {
		t.Errorf("privileged container has seccomp: %s", out)
	}
	out = must(t, d, "run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "busybox", "grep", "CapBnd", "/proc/self/status")
	if !strings.Contains(out, "0000000000000400") {
		t.Errorf("cap-drop ALL + cap-add NET_BIND_SERVICE gave %s", out)
	}
}

func TestMemoryLimitOOMKills(t *testing.T) {
	d := env.daemon
	r := d.Run("", "run", "--name", "oom", "--memory", "32m", "memhog", "-mb", "200")
	if r.Code != 137 {
		t.Fatalf("exit code %d, want 137 (OOM kill): %s", r.Code, r)
	}
	c := inspect(t, d, "oom")
	if !c.State.OOMKilled || c.State.ExitCode != 137 {
		t.Fatalf("state %+v, want OOMKilled with 137", c.State)
	}
	if ps := must(t, d, "ps", "-a"); !strings.Contains(ps, "OOMKilled") {
		t.Fatalf("ps -a does not say OOMKilled:\n%s", ps)
	}
	must(t, d, "rm", "oom")
	// Under the limit it runs fine.
	if r := d.Run("", "run", "--rm", "--memory", "64m", "memhog", "-mb", "16"); r.Code != 0 {
		t.Fatalf("16 MiB under a 64 MiB limit failed: %s", r)
	}
}

func TestPidsLimit(t *testing.T) {
	d := env.daemon
	r := d.Run("", "run", "--rm", "--pids-limit", "10", "spawn", "-n", "40")
	out := r.Stdout + r.Stderr
	n := parseSpawned(t, out)
	if n >= 40 || n == 0 {
		t.Fatalf("spawned %d of 40 children under a pids limit of 10:\n%s", n, r)
	}
	r = d.Run("", "run", "--rm", "spawn", "-n", "40")
	if n := parseSpawned(t, r.Stdout+r.Stderr); n != 40 {
		t.Fatalf("without a limit spawned %d of 40:\n%s", n, r)
	}
}

// parseSpawned finds the "spawned N" count the spawn program reports.
func parseSpawned(t *testing.T, out string) int {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "spawned" {
				if n, err := strconv.Atoi(f[i+1]); err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no \"spawned N\" in output:\n%s", out)
	return 0
}

func TestCPUQuota(t *testing.T) {
	d := env.daemon
	id := strings.TrimSpace(must(t, d, "run", "-d", "--cpus", "0.5", "busybox", "sleep", "60"))
	defer d.Run("", "rm", "-f", id)
	b, err := os.ReadFile("/sys/fs/cgroup/cpu/skiff/" + id + "/cpu.cfs_quota_us")
	if err != nil {
		// cgroup v2 layout
		b, err = os.ReadFile("/sys/fs/cgroup/skiff/" + id + "/cpu.max")
	}
	if err != nil {
		t.Fatalf("cannot find the container's cpu cgroup: %v", err)
	}
	if s := strings.Fields(string(b)); s[0] != "50000" {
		t.Fatalf("cpu quota %q, want 50000 per 100000", b)
	}
}

func TestLifecycle(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "life", "signals")
	defer d.Run("", "rm", "-f", "life")
	eventually(t, 5*time.Second, "signals to be ready", func() bool {
		return strings.Contains(d.Run("", "logs", "life").Stdout, "ready")
	})
	if c := inspect(t, d, "life"); c.State.Status != api.StatusRunning || c.State.Pid == 0 {
		t.Fatalf("state %+v", c.State)
	}
	fails(t, d, []string{"is running", "rm -f"}, "rm", "life")
	// Graceful stop: SIGTERM is handled, exit 0, well before the timeout.
	start := time.Now()
	must(t, d, "stop", "-t", "20", "life")
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("stop took %s; the program exits on SIGTERM", el)
	}
	c := inspect(t, d, "life")
	if c.State.Status != api.StatusExited || c.State.ExitCode != 0 {
		t.Fatalf("after stop: %+v", c.State)
	}
	if !strings.Contains(d.Run("", "logs", "life").Stdout, "got SIGTERM") {
		t.Fatalf("the program did not see SIGTERM")
	}
	// Start again, then restart.
	must(t, d, "start", "life")
	pid1 := inspect(t, d, "life").State.Pid
	must(t, d, "restart", "-t", "5", "life")
	c = inspect(t, d, "life")
	if c.State.Status != api.StatusRunning || c.State.Pid == pid1 {
		t.Fatalf("restart did not make a new process: %+v (old pid %d)", c.State, pid1)
	}
	// kill -s sends the signal; the program exits on SIGTERM.
	must(t, d, "kill", "-s", "TERM", "life")
	eventually(t, 5*time.Second, "exit after kill -s TERM", func() bool {
		return inspect(t, d, "life").State.Status == api.StatusExited
	})
	fails(t, d, []string{"not running"}, "kill", "life")
	must(t, d, "rm", "life")
	fails(t, d, []string{"no such container"}, "inspect", "--type", "container", "life")
}

func TestStopTimeoutKills(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "stubborn", "signals", "-ignore")
	defer d.Run("", "rm", "-f", "stubborn")
	eventually(t, 5*time.Second, "ready", func() bool {
		return strings.Contains(d.Run("", "logs", "stubborn").Stdout, "ready")
	})
	start := time.Now()
	must(t, d, "stop", "-t", "1", "stubborn")
	el := time.Since(start)
	if el < time.Second || el > 8*time.Second {
		t.Fatalf("stop -t 1 of a program ignoring SIGTERM took %s", el)
	}
	if c := inspect(t, d, "stubborn"); c.State.ExitCode != 137 {
		t.Fatalf("exit code %d, want 137 (SIGKILL)", c.State.ExitCode)
	}
}

func TestRestartPolicy(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox", "sh", "-c", "echo run; exit 2")
	defer d.Run("", "rm", "-f", "flaky")
	eventually(t, 15*time.Second, "3 restarts then giving up", func() bool {
		c := inspect(t, d, "flaky")
		return c.State.Status == api.StatusExited && c.State.RestartCount == 3
	})
	time.Sleep(1500 * time.Millisecond) // it must not restart a fourth time
	c := inspect(t, d, "flaky")
	if c.State.RestartCount != 3 || c.State.Status != api.StatusExited || c.State.ExitCode != 2 {
		t.Fatalf("after giving up: %+v", c.State)
	}
	if n := strings.Count(d.Run("", "logs", "flaky").Stdout, "run"); n != 4 {
		t.Fatalf("ran %d times, want 4 (1 + 3 restarts)", n)
	}
	// on-failure leaves a clean exit alone.
	must(t, d, "run", "-d", "--name", "clean", "--restart", "on-failure", "busybox", "true")
	defer d.Run("", "rm", "-f", "clean")
	eventually(t, 5*time.Second, "clean exit", func() bool { return inspect(t, d, "clean").State.Status == api.StatusExited })
	time.Sleep(500 * time.Millisecond)
	if c := inspect(t, d, "clean"); c.State.RestartCount != 0 {
		t.Fatalf("clean exit restarted: %+v", c.State)
	}
	// always restarts with growing delays; stop ends it.
	must(t, d, "run", "-d", "--name", "always", "--restart", "always", "busybox", "true")
	defer d.Run("", "rm", "-f", "always")
	eventually(t, 10*time.Second, "several restarts", func() bool { return inspect(t, d, "always").State.RestartCount >= 3 })
	must(t, d, "stop", "always")
	n := inspect(t, d, "always").State.RestartCount
	time.Sleep(1500 * time.Millisecond)
	if c := inspect(t, d, "always"); c.State.RestartCount != n || c.State.Status != api.StatusExited {
		t.Fatalf("restarted after stop: %+v", c.State)
	}
}

func TestLogs(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "--name", "talker", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done")
	defer d.Run("", "rm", "-f", "talker")
	r := d.Run("", "logs", "talker")
	if r.Stdout != "out1\nout2\nout3\nout4\nout5\n" || r.Stderr != "err1\nerr2\nerr3\nerr4\nerr5\n" {
		t.Fatalf("logs: %s", r)
	}
	// --tail counts records of both streams, in the order conmon logged them.
	if r := d.Run("", "logs", "--tail", "2", "talker"); strings.Count(r.Stdout+r.Stderr, "\n") != 2 || !strings.Contains(r.Stdout+r.Stderr, "5\n") {
		t.Fatalf("logs --tail 2: %s", r)
	}
	if r := d.Run("", "logs", "-t", "talker"); !strings.Contains(r.Stdout, "Z out1") && !strings.Contains(r.Stdout, " out1") {
		t.Fatalf("logs -t has no timestamps: %s", r)
	}
	if r := d.Run("", "logs", "--since", "1h", "talker"); !strings.Contains(r.Stdout, "out1") {
		t.Fatalf("logs --since 1h lost lines: %s", r)
	}
	if r := d.Run("", "logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "talker"); r.Stdout != "" {
		t.Fatalf("logs --since the future printed: %s", r)
	}
	// -f follows a running container until it exits.
	must(t, d, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.2; done")
	defer d.Run("", "rm", "-f", "ticker")
	r = d.Run("", "logs", "-f", "ticker")
	if r.Code != 0 || r.Stdout != "tick1\ntick2\ntick3\n" {
		t.Fatalf("logs -f: %s", r)
	}
}

func TestExec(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "exectarget", "-e", "FROM_RUN=yes", "busybox", "sleep", "300")
	defer d.Run("", "rm", "-f", "exectarget")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
	}{
		{"output", "", []string{"exec", "exectarget", "echo", "hello"}, 0, "hello\n"},
		{"exit code", "", []string{"exec", "exectarget", "sh", "-c", "exit 7"}, 7, ""},
		{"env inherited and added", "", []string{"exec", "-e", "X=1", "exectarget", "sh", "-c", "echo $FROM_RUN$X"}, 0, "yes1\n"},
		{"workdir", "", []string{"exec", "-w", "/tmp", "exectarget", "pwd"}, 0, "/tmp\n"},
		{"user", "", []string{"exec", "-u", "app", "exectarget", "id", "-u"}, 0, "1000\n"},
		{"stdin", "line1\nline2\n", []string{"exec", "-i", "exectarget", "wc", "-l"}, 0, "2\n"},
		{"same pid namespace", "", []string{"exec", "exectarget", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, 0, "sleep 300 "},
		{"missing command", "", []string{"exec", "exectarget", "/nope"}, 127, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Run(tc.stdin, tc.args...)
			if r.Code != tc.code || r.Stdout != tc.stdout {
				t.Fatalf("got %s\nwant exit %d stdout %q", r, tc.code, tc.stdout)
			}
		})
	}
	must(t, d, "stop", "-t", "0", "exectarget")
	fails(t, d, []string{"not running"}, "exec", "exectarget", "true")
}

// TestRunStdin: run -i and start -ai pipe stdin into the container
// through conmon, whole and in order, and its end closes the process's
// stdin; without -i the process reads nothing.
func TestRunStdin(t *testing.T) {
	d := env.daemon
	big := make([]byte, 3<<20+17) // several conmon messages, not a multiple
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		stdout      string
	}{
		{"lines", "a\nb\nc\n", []string{"run", "--rm", "-i", "busybox", "wc", "-l"}, 0, "3\n"},
		{"3 MiB", string(big), []string{"run", "--rm", "-i", "busybox", "md5sum"}, 0, fmt.Sprintf("%x  -\n", md5.Sum(big))},
		{"exit code", "exit 4\n", []string{"run", "--rm", "-i", "busybox", "sh"}, 4, ""},
		{"without -i", "ignored\n", []string{"run", "--rm", "busybox", "wc", "-c"}, 0, "0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Run(tc.stdin, tc.args...)
			if r.Code != tc.code || r.Stdout != tc.stdout {
				t.Fatalf("got %s\nwant exit %d stdout %q", truncateForLog(r.String()), tc.code, tc.stdout)
			}
		})
	}
	must(t, d, "create", "-i", "--name", "stdin-later", "busybox", "wc", "-c")
	defer d.Run("", "rm", "-f", "stdin-later")
	for i := range 2 { // the second run gets a stdin of its own
		if r := d.Run("hello\n", "start", "-ai", "stdin-later"); r.Code != 0 || r.Stdout != "6\n" {
			t.Fatalf("start -ai, run %d: %s", i+1, r)
		}
	}
	must(t, d, "create", "--name", "no-stdin", "busybox", "cat")
	defer d.Run("", "rm", "-f", "no-stdin")
	fails(t, d, []string{"created without -i"}, "start", "-ai", "no-stdin")
}

// TestAttach: attach streams a running container's output from then on
// and, for one created with -i, feeds its stdin; it ends with the exit
// code, and refuses a container that is not running.
func TestAttach(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "-i", "--name", "attach-in", "busybox", "sh", "-c", "read l; echo got $l; exit 5")
	defer d.Run("", "rm", "-f", "attach-in")
	if r := d.Run("x\n", "attach", "attach-in"); r.Code != 5 || r.Stdout != "got x\n" {
		t.Fatalf("attach with stdin: %s", r)
	}
	fails(t, d, []string{"attach needs a running container", "start -a"}, "attach", "attach-in")

	must(t, d, "run", "-d", "--name", "attach-out", "busybox", "sh", "-c", "echo before; sleep 2; echo after")
	defer d.Run("", "rm", "-f", "attach-out")
	eventually(t, 10*time.Second, "the first line", func() bool { return must(t, d, "logs", "attach-out") == "before\n" })
	if r := d.Run("", "attach", "attach-out"); r.Code != 0 || r.Stdout != "after\n" {
		t.Fatalf("attach: %s, want only the output after it began", r)
	}
}

// TestExecTerminal: exec -t gives the process a terminal; -it from a
// terminal types keys into it, sized like the caller's and resized with
// it, with the exit code kept; -it from a pipe is refused.
func TestExecTerminal(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "ttytarget", "busybox", "sleep", "300")
	defer d.Run("", "rm", "-f", "ttytarget")
	if out := must(t, d, "exec", "-t", "ttytarget", "sh", "-c", "tty; echo $TERM"); !regexp.MustCompile(`^/dev/pts/\d+\r\nxterm\r\n$`).MatchString(out) {
		t.Fatalf("exec -t: %q, want a /dev/pts terminal, TERM=xterm and terminal line endings", out)
	}
	if r := d.Run("", "exec", "ttytarget", "tty"); r.Code == 0 || !strings.Contains(r.Stdout, "not a tty") {
		t.Fatalf("exec without -t has a terminal: %s", r)
	}
	fails(t, d, []string{"not one", "drop -t"}, "exec", "-it", "ttytarget", "sh")

	shellOnTerminal(t, d, "exec", "-it", "ttytarget", "sh")
}

// TestRunTerminal: run -t gives the container's process a terminal
// (through conmon); run -it from a terminal is an interactive shell,
// sized and resized like the caller's, with its exit code.
func TestRunTerminal(t *testing.T) {
	d := env.daemon
	if out := must(t, d, "run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo $TERM"); !regexp.MustCompile(`^/dev/pts/\d+\r\nxterm\r\n$`).MatchString(out) {
		t.Fatalf("run -t: %q, want a /dev/pts terminal, TERM=xterm and terminal line endings", out)
	}
	fails(t, d, []string{"not one", "drop -t"}, "run", "--rm", "-it", "busybox", "sh")
	shellOnTerminal(t, d, "run", "--rm", "-it", "busybox", "sh")

	// ^P ^Q detaches and leaves the shell running; attach comes back to it.
	run := startOnTerminal(t, d, 24, 80, "run", "-it", "--name", "detachme", "busybox", "sh")
	defer d.Run("", "rm", "-f", "detachme")
	run.typeKeys("echo one$((1+1))\r")
	run.waitFor("one2\r\n")
	run.typeKeys("\x10\x11")
	if code := run.wait(); code != 0 || !run.seen("detached from detachme") {
		t.Fatalf("run -it after ^P ^Q: exit %d, output %q", code, run.out.String())
	}
	if st := inspect(t, d, "detachme").State.Status; st != api.StatusRunning {
		t.Fatalf("after detaching the container is %s, want running", st)
	}
	back := startOnTerminal(t, d, 24, 80, "attach", "detachme")
	back.typeKeys("echo two$((1+1))\r")
	back.waitFor("two2\r\n")
	back.typeKeys("exit 7\r")
	if code := back.wait(); code != 7 {
		t.Fatalf("attach after a detach: exit %d, want 7; output %q", code, back.out.String())
	}

	must(t, d, "run", "-d", "--name", "no-tty", "busybox", "sleep", "60")
	defer d.Run("", "rm", "-f", "no-tty")
	if status, body := rawAPI(t, "POST", "/v1/containers/no-tty/resize", `{"height":10,"width":10}`); status != 409 || !strings.Contains(body, "has no terminal") {
		t.Fatalf("resize without a terminal: %d %s", status, body)
	}
}

// shellOnTerminal runs the CLI with args (an interactive sh) on a
// pseudo-terminal of 33×101, types into it, resizes it to 40×120, and
// checks the shell saw both sizes and exits with the code typed.
func shellOnTerminal(t *testing.T, d *Daemon, args ...string) {
	t.Helper()
	s := startOnTerminal(t, d, 33, 101, args...)
	// The answers carry a marker that the echo of the typed line lacks.
	s.typeKeys("stty size; echo ans$((6*7))\r")
	s.waitFor("33 101\r\n", "ans42\r\n")
	// The window changes: the CLI gets SIGWINCH and resizes the process's terminal.
	if err := unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new terminal size", func() bool {
		s.typeKeys("stty size\r")
		time.Sleep(100 * time.Millisecond)
		return s.seen("40 120\r\n")
	})
	s.typeKeys("exit 3\r")
	if code := s.wait(); code != 3 {
		t.Errorf("%s: exit %d, want 3", strings.Join(args, " "), code)
	}
}

// termSession is the CLI running on a pseudo-terminal, as a user's.
type termSession struct {
	t      *testing.T
	args   []string
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	read   chan struct{}
}

// startOnTerminal runs the CLI with args on a new rows×cols terminal.
func startOnTerminal(t *testing.T, d *Daemon, rows, cols uint16, args ...string) *termSession {
	t.Helper()
	master, slave := openTerminal(t, rows, cols)
	t.Cleanup(func() { master.Close() })
	s := &termSession{t: t, args: args, master: master, read: make(chan struct{})}
	s.cmd = exec.Command(env.skiff, append([]string{"--socket", d.Socket}, args...)...)
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = slave, slave, slave
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill() })
	slave.Close()
	go func() { // until EIO, once the CLI exits
		defer close(s.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *termSession) typeKeys(keys string) { io.WriteString(s.master, keys) }

func (s *termSession) seen(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.out.String(), text)
}

// waitFor waits until every one of texts was shown.
func (s *termSession) waitFor(texts ...string) {
	s.t.Helper()
	eventually(s.t, 10*time.Second, fmt.Sprintf("%q on the terminal", texts), func() bool {
		for _, x := range texts {
			if !s.seen(x) {
				return false
			}
		}
		return true
	})
}

// wait waits for the CLI to exit and returns its exit code.
func (s *termSession) wait() int {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		<-s.read
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			s.t.Fatalf("%s: %v", strings.Join(s.args, " "), err)
		}
		return 0
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("%s did not end", strings.Join(s.args, " "))
		return -1
	}
}

// openTerminal opens a pseudo-terminal of rows×cols for a CLI to run on.
func openTerminal(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}

func TestStatsAndInfo(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "statme", "--memory", "64m", "busybox", "sleep", "60")
	defer d.Run("", "rm", "-f", "statme")
	out := must(t, d, "stats", "--no-stream", "-o", "json")
	var st []api.ContainerStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats json: %v\n%s", err, out)
	}
	found := false
	for _, s := range st {
		if s.Name == "statme" {
			found = true
			if s.MemoryLimitBytes != 64<<20 || s.MemoryUsageBytes == 0 || s.Pids < 1 {
				t.Fatalf("implausible stats %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("statme missing from stats: %s", out)
	}
	if out := must(t, d, "stats", "--no-stream"); !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, "statme") {
		t.Fatalf("stats table:\n%s", out)
	}
	info := must(t, d, "info")
	for _, want := range []string{"Runtime:", "runc", "Cgroups:", "Root:", d.Root, "Containers:", "Images:"} {
		if !strings.Contains(info, want) {
			t.Fatalf("info lacks %q:\n%s", want, info)
		}
	}
	if out := must(t, d, "version"); !strings.Contains(out, "Server:") {
		t.Fatalf("version: %s", out)
	}
}

func TestPsFormats(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "listed", "busybox", "sleep", "60")
	defer d.Run("", "rm", "-f", "listed")
	if out := must(t, d, "ps"); !strings.Contains(out, "listed") || !strings.Contains(out, "Up ") {
		t.Fatalf("ps:\n%s", out)
	}
	var cs []api.Container
	if err := json.Unmarshal([]byte(must(t, d, "ps", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cs {
		if c.Name == "listed" {
			found = true
			if c.State.Status != api.StatusRunning || c.State.Pid <= 0 || c.Config.Image != "busybox" || c.ImageRef != "localhost/busybox:latest" || len(c.ID) != 64 {
				t.Fatalf("ps -o json describes the container wrongly: %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("ps -o json does not list the running container: %+v", cs)
	}
	if out := must(t, d, "ps", "-o", "yaml"); !strings.Contains(out, "name: listed") {
		t.Fatalf("ps -o yaml:\n%s", out)
	}
	if out := must(t, d, "ps", "-o", "wide"); !strings.Contains(out, "PID") {
		t.Fatalf("ps -o wide:\n%s", out)
	}
	fails(t, d, []string{"unknown output format"}, "ps", "-o", "xml")
}

// TestDaemonRestartAdoptsContainers kills a daemon with SIGKILL while its
// containers run and checks a new daemon adopts them, and records exits
// that happened while it was down.
func TestDaemonRestartAdoptsContainers(t *testing.T) {
	d, err := startDaemon("adopt")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	must(t, d, "run", "-d", "--name", "survivor", "busybox", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	must(t, d, "run", "-d", "--name", "shortlived", "busybox", "sh", "-c", "sleep 1; exit 5")
	survivor := inspect(t, d, "survivor")
	pid := survivor.State.Pid
	d.Kill()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container process %d died with the daemon: %v", pid, err)
	}
	atKill, err := os.Stat(survivor.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // shortlived exits while no daemon runs
	b, err := os.ReadFile(survivor.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	// The log kept growing while the daemon was away (a tick every 100 ms).
	if int64(len(b)) < atKill.Size()+5*int64(len("tick 0")) {
		t.Fatalf("the log grew from %d to %d bytes in 1.5s without the daemon", atKill.Size(), len(b))
	}
	logBefore := len(strings.Split(string(b), "\n"))
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	c := inspect(t, d, "survivor")
	if c.State.Status != api.StatusRunning || c.State.Pid != pid {
		t.Fatalf("survivor not adopted: %+v (pid was %d)", c.State, pid)
	}
	eventually(t, 5*time.Second, "the exit during downtime to be recorded", func() bool {
		s := inspect(t, d, "shortlived").State
		return s.Status == api.StatusExited && s.ExitCode == 5
	})
	// skiff logs shows what was written while the daemon was away.
	if n := len(strings.Split(d.Run("", "logs", "survivor").Stdout, "\n")); n < logBefore {
		t.Fatalf("logs shows %d lines, fewer than the %d on disk", n, logBefore)
	}
	// The adopted container is fully managed: stop records its exit.
	must(t, d, "stop", "-t", "1", "survivor")
	if s := inspect(t, d, "survivor").State; s.Status != api.StatusExited {
		t.Fatalf("adopted container did not stop: %+v", s)
	}
	// Same after a graceful daemon stop.
	must(t, d, "start", "survivor")
	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if s := inspect(t, d, "survivor").State; s.Status != api.StatusRunning {
		t.Fatalf("not running after graceful daemon restart: %+v", s)
	}
	must(t, d, "rm", "-f", "survivor", "shortlived")
}

// buildSubset builds some of the test images into another daemon.
func buildSubset(d *Daemon, names ...string) error {
	for _, n := range names {
		if r := d.Run("", "image", "build", "-q", "-t", n, env.tmp+"/contexts/"+n); r.Code != 0 {
			return &buildError{n, r}
		}
	}
	return nil
}

type buildError struct {
	name string
	r    Result
}

func (e *buildError) Error() string { return "build " + e.name + ": " + e.r.String() }

func TestSecondDaemonOnSameRootRefused(t *testing.T) {
	tests := []struct {
		name, root, socket, want string
	}{
		{"same root", env.daemon.Root, env.tmp + "/dup.sock", "another skiff daemon"},
		{"same socket", env.tmp + "/root-dupsock", env.daemon.Socket, "another daemon is listening"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, env.skiff, "daemon", "--root", tc.root, "--socket", tc.socket, "--ingress-addr", "127.0.0.1:0").CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("second daemon was not refused: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("refusal does not say %q:\n%s", tc.want, out)
			}
		})
	}
	// The first daemon is unharmed.
	must(t, env.daemon, "version")
}

func TestVolumes(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "--rm", "-v", "data1:/data", "busybox", "sh", "-c", "echo kept > /data/file")
	if out := must(t, d, "run", "--rm", "-v", "data1:/data:ro", "busybox", "cat", "/data/file"); out != "kept\n" {
		t.Fatalf("named volume did not keep its data: %q", out)
	}
	if r := d.Run("", "run", "--rm", "-v", "data1:/data:ro", "busybox", "sh", "-c", "echo x > /data/other"); r.Code == 0 {
		t.Fatalf("write to a read-only volume succeeded")
	}
	host := t.TempDir()
	os.WriteFile(host+"/in", []byte("from host\n"), 0o644)
	if out := must(t, d, "run", "--rm", "-v", host+":/mnt", "busybox", "cat", "/mnt/in"); out != "from host\n" {
		t.Fatalf("bind mount: %q", out)
	}
	fails(t, d, []string{"-v"}, "run", "--rm", "-v", "justaname", "busybox", "true")
	fails(t, d, []string{"absolute"}, "run", "--rm", "-v", "vol:relative", "busybox", "true")
	fails(t, d, []string{"/no/such/dir"}, "run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true")
}
