// Command spawn starts child processes until it has n or one fails, to
// test pids limits deterministically.
//
//	spawn -n 40 [-hold 0s] [-ready-timeout 5s]
//
// Each child is this binary run again with -child: it tells the parent it
// is up through a pipe, then sleeps until the parent kills it. spawn
// prints "spawned K of N" (and the error that stopped it, if any), keeps
// the children for -hold, kills them and exits 0 when all N started, 1
// otherwise.
//
// Each child is a Go program with its own threads (about three with
// GOMAXPROCS=1, which spawn sets for them), and a pids limit counts
// threads: under pids.max P, K is about (P - the parent's threads) / 3.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 10, "children to start")
	hold := flag.Duration("hold", 0, "keep the children this long before exiting")
	readyTimeout := flag.Duration("ready-timeout", 5*time.Second, "how long a child may take to report it is up")
	child := flag.Bool("child", false, "run as a child (internal)")
	flag.Parse()
	if *child {
		runChild()
		return
	}
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	children, err := spawn(self, *n, *readyTimeout)
	fmt.Printf("spawned %d of %d\n", len(children), *n)
	if err != nil {
		fmt.Printf("child %d failed: %v\n", len(children)+1, err)
	}
	time.Sleep(*hold)
	for _, c := range children {
		c.Process.Kill()
		c.Wait()
	}
	if len(children) < *n {
		os.Exit(1)
	}
}

// runChild reports on fd 3 that the child is up and sleeps until killed.
func runChild() {
	ready := os.NewFile(3, "ready")
	ready.Write([]byte{1})
	ready.Close()
	time.Sleep(math.MaxInt64)
}

// spawn starts up to n children of the program at path, one at a time,
// each counted once it has reported it is up. It stops at the first that
// fails to start or to report, and returns the ones running and that
// failure.
func spawn(path string, n int, readyTimeout time.Duration) ([]*exec.Cmd, error) {
	var children []*exec.Cmd
	for range n {
		c, err := startChild(path, readyTimeout)
		if err != nil {
			return children, err
		}
		children = append(children, c)
	}
	return children, nil
}

func startChild(path string, readyTimeout time.Duration) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer r.Close()
	c := exec.Command(path, "-child")
	c.Env = append(os.Environ(), "GOMAXPROCS=1")
	c.ExtraFiles = []*os.File{w}
	// A child that cannot make its threads crashes with a long trace:
	// "exited before it was up" says enough.
	c.Stdout, c.Stderr = nil, nil
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = c.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	r.SetReadDeadline(time.Now().Add(readyTimeout))
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		c.Process.Kill()
		werr := c.Wait()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("not up within %v", readyTimeout)
		}
		return nil, fmt.Errorf("exited before it was up: %v", werr)
	}
	return c, nil
}
