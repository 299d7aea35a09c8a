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
