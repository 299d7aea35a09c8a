// Command signals reports the signals it gets, to test how containers
// are stopped.
//
//	signals [-delay 0s] [-code 0] [-ignore]
//
// It prints "ready" once its handlers are set, then "got SIGTERM" (or
// SIGINT, SIGHUP, SIGUSR1, SIGUSR2) for each signal. On SIGTERM or SIGINT
// it waits -delay, prints "exiting" and exits with -code: a graceful stop.
// With -ignore it prints "ignoring it" instead and keeps running, so only
// SIGKILL ends it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	delay  time.Duration
	code   int
	ignore bool
}

var names = map[os.Signal]string{
	syscall.SIGTERM: "SIGTERM",
	syscall.SIGINT:  "SIGINT",
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2",
}

func main() {
	var o options
	flag.DurationVar(&o.delay, "delay", 0, "how long to take to exit after SIGTERM")
	flag.IntVar(&o.code, "code", 0, "exit code after SIGTERM")
	flag.BoolVar(&o.ignore, "ignore", false, "ignore SIGTERM and SIGINT")
	flag.Parse()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Println("ready")
	os.Exit(handle(sigs, o, os.Stdout))
}

// handle reports each signal from sigs on w until one ends the program,
// and returns the exit code.
func handle(sigs <-chan os.Signal, o options, w io.Writer) int {
	for sig := range sigs {
		fmt.Fprintf(w, "got %s\n", names[sig])
		if sig != syscall.SIGTERM && sig != syscall.SIGINT {
			continue
		}
		if o.ignore {
			fmt.Fprintln(w, "ignoring it")
			continue
		}
		time.Sleep(o.delay)
		fmt.Fprintln(w, "exiting")
		return o.code
	}
	return o.code
}
