// Command setxattr sets an extended attribute on a file, for build tests
// whose base image has no attr tools: setxattr NAME VALUE FILE.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: setxattr NAME VALUE FILE")
		os.Exit(2)
	}
	if err := syscall.Setxattr(os.Args[3], os.Args[1], []byte(os.Args[2]), 0); err != nil {
		fmt.Fprintf(os.Stderr, "setxattr %s: %v\n", os.Args[3], err)
		os.Exit(1)
	}
}
