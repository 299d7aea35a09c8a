// Package initproc is the tiny init a container started with --init runs
// as PID 1: it starts the container's command as its child, forwards
// signals to it, reaps every orphan that is reparented to it, and exits
// with the child's exit code (128+signal when the child was killed).
// It is part of skiff's own static binary, bind-mounted into the
// container at Path.
package initproc

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Path is where the init is mounted in a container (on the /dev tmpfs
// every container gets, so the image needs no directory for it).
const Path = "/dev/init"

// Subcommand is the hidden first argument that runs the init instead of
// the CLI: the process args are Path, Subcommand, "--", command....
const Subcommand = "init-process"

// forwarded are the signals passed on to the child.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
}

// Main runs the init with args (after Subcommand; a leading "--" is
// dropped) and returns the exit code for os.Exit.
func Main(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "skiff init: no command given")
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "skiff init: %v\n", err)
		return 127
	}
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Fprintf(stderr, "skiff init: %v\n", err)
		return 126
	}
	return Loop(p.Pid, sigs)
}

// Loop forwards the signals arriving on sigs to the process child, reaps
// every exited child on SIGCHLD, and returns child's exit code once it
// has exited.
func Loop(child int, sigs <-chan os.Signal) int {
	for {
		if code, done := reap(child); done {
			return code
		}
		s := <-sigs
		if s != syscall.SIGCHLD {
			_ = syscall.Kill(child, s.(syscall.Signal))
		}
	}
}

// reap waits for every exited child without blocking and reports
// child's exit code once it is among them.
func reap(child int) (int, bool) {
	code, done := 0, false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == child {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// WaitReady waits, at most limit, until the init running as host process
// pid has started the container's command, and so has its signal
// handlers in place: a signal sent before then would be dropped (PID 1
// with no handler yet) or end the init with the Go runtime's exit code
// 2 instead of being forwarded. It returns at once when pid is gone.
// Any of the init's threads may be the command's parent, so the children
// of every thread are read.
func WaitReady(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		if err != nil || len(tasks) == 0 {
			return false
		}
		for _, t := range tasks {
			if b, err := os.ReadFile(t); err == nil && strings.TrimSpace(string(b)) != "" {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}
