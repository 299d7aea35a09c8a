// Command pause is the sandbox ("pause") container of the single-node
// test's pods: it holds the pod's namespaces, reaps the zombies a shared
// PID namespace leaves it, and exits 0 on SIGTERM or SIGINT. No image can
// be pulled on the test machine, so the test builds this one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
