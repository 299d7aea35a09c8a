package initproc

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// loopOn starts args and runs Loop on it, returning its exit code.
func loopOn(t *testing.T, sigs chan os.Signal, args ...string) int {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- Loop(cmd.Process.Pid, sigs) }()
	select {
	case code := <-done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return")
		return 0
	}
}

// TestLoopExitCode checks that Loop returns the child's exit code, and
// 128+signal when it was killed.
func TestLoopExitCode(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	if code := loopOn(t, sigs, "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit 7: Loop returned %d", code)
	}
	if code := loopOn(t, sigs, "sh", "-c", "kill -KILL $$"); code != 137 {
		t.Errorf("killed: Loop returned %d, want 137", code)
	}
}

// TestLoopForwards checks that a signal given to Loop reaches the child.
func TestLoopForwards(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- Loop(cmd.Process.Pid, sigs) }()
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("Loop returned %d, want %d", code, 128+int(syscall.SIGTERM))
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM was not forwarded: the child still runs")
	}
}

// TestWaitReady checks that WaitReady reports a process once it has a
// child, waits no longer than its limit for one that has none, and
// returns at once for a process that is gone.
func TestWaitReady(t *testing.T) {
	parent := exec.Command("sh", "-c", "sleep 0.3; sleep 100 & wait")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { parent.Process.Kill(); parent.Wait() }()
	// sh's first child is "sleep 0.3": wait for a process with no child.
	lone := exec.Command("sleep", "100")
	if err := lone.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { lone.Process.Kill(); lone.Wait() }()
	start := time.Now()
	if WaitReady(lone.Process.Pid, 200*time.Millisecond) {
		t.Error("a process without a child is reported ready")
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitReady of a childless process returned after %s, want its 200ms limit", d)
	}
	if !WaitReady(parent.Process.Pid, 5*time.Second) {
		t.Error("a process with a child is not reported ready")
	}
	lone.Process.Kill()
	lone.Wait()
	start = time.Now()
	if WaitReady(lone.Process.Pid, 5*time.Second) {
		t.Error("a process that is gone is reported ready")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("WaitReady of a gone process took %s", d)
	}
}
