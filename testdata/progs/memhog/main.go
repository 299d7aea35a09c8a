// Command memhog allocates and touches memory, to trigger the OOM killer
// under a memory limit.
//
//	memhog -mb 200 [-step 8] [-hold 0s]
//
// It allocates -mb MiB in 1 MiB blocks, writing to every page so that the
// memory is really used (resident), prints "allocated N MiB" every -step
// MiB and "done N MiB" at the end, then keeps the memory for -hold before
// exiting 0. Under a limit below -mb the kernel kills it (exit 137).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"
)

const (
	mib      = 1 << 20
	pageSize = 4096
)

func main() {
	mb := flag.Int("mb", 64, "MiB to allocate and touch")
	step := flag.Int("step", 8, "print progress every `N` MiB")
	hold := flag.Duration("hold", 0, "keep the memory this long before exiting")
	flag.Parse()
	if *mb < 0 || *step <= 0 {
		fmt.Fprintln(os.Stderr, "memhog: -mb must be >= 0 and -step > 0")
		os.Exit(2)
	}
	// Everything allocated stays live: collecting would only cost time.
	debug.SetGCPercent(-1)
	blocks := hog(*mb, *step, os.Stdout)
	time.Sleep(*hold)
	fmt.Fprintf(os.Stdout, "done %d MiB\n", len(blocks))
}

// hog allocates n MiB in 1 MiB blocks, writes a byte to each page so the
// kernel has to back it, and reports progress to w every step MiB. It
// returns the blocks so they stay reachable.
func hog(n, step int, w io.Writer) [][]byte {
	blocks := make([][]byte, 0, n)
	for i := 1; i <= n; i++ {
		b := make([]byte, mib)
		for p := 0; p < len(b); p += pageSize {
			b[p] = byte(i)
		}
		blocks = append(blocks, b)
		if i%step == 0 || i == n {
			fmt.Fprintf(w, "allocated %d MiB\n", i)
		}
	}
	return blocks
}
