package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRunInitPID1 checks that --init runs skiff's init as PID 1 with the
// command as its child.
func TestRunInitPID1(t *testing.T) {
	out := must(t, env.daemon, "run", "--rm", "--init", "busybox", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline`)
	if !strings.HasPrefix(out, "/dev/init init-process -- sh -c") {
		t.Errorf("PID 1 is not the init:\n%s", out)
	}
}

// TestRunInitReaps checks that an orphan reparented to PID 1 is reaped:
// the command (exec'd sleep, which never waits) leaves one behind, and
// without an init it would stay a zombie.
func TestRunInitReaps(t *testing.T) {
	must(t, env.daemon, "run", "-d", "--init", "--name", "init-reap", "busybox", "sh", "-c", "(sleep 0.1 &); exec sleep 100")
	defer skiff("rm", "-f", "init-reap")
	time.Sleep(time.Second)
	out := must(t, env.daemon, "exec", "init-reap", "ps", "-o", "pid,stat,comm")
	if !strings.Contains(out, "sleep") {
		t.Fatalf("no sleep in ps output:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "Z") {
			t.Errorf("a zombie is left:\n%s", out)
		}
	}
}

// TestRunInitExitCode checks that the init exits with the command's exit
// code, 128+signal when the command was killed.
func TestRunInitExitCode(t *testing.T) {
	if r := skiff("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exit 7 under --init: %s", r)
	}
	if r := skiff("run", "--rm", "--init", "busybox", "sh", "-c", "kill -KILL $$"); r.Code != 137 {
		t.Errorf("a killed command under --init: %s, want exit 137", r)
	}
}

// TestRunInitStop checks that skiff stop's SIGTERM reaches a command
// that, as PID 1, would ignore it: the container stops at once, not
// after the stop timeout.
func TestRunInitStop(t *testing.T) {
	must(t, env.daemon, "run", "-d", "--init", "--name", "init-stop", "busybox", "sleep", "100")
	defer skiff("rm", "-f", "init-stop")
	start := time.Now()
	must(t, env.daemon, "stop", "init-stop")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s: SIGTERM was not forwarded", d)
	}
	out := must(t, env.daemon, "inspect", "init-stop")
	if !strings.Contains(out, `"exitCode": 143`) {
		t.Errorf("exit code after stop is not 143 (SIGTERM):\n%s", out)
	}
}
