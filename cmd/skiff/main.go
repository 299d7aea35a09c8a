// Command skiff is the skiff container platform: `skiff daemon` runs it,
// every other subcommand is a client of its API.
package main

import (
	"os"

	"skiff.dev/skiff/internal/cli"
	"skiff.dev/skiff/internal/initproc"
)

func main() {
	// A container started with --init runs this binary as its PID 1;
	// that skips the CLI's setup.
	if len(os.Args) > 1 && os.Args[1] == initproc.Subcommand {
		os.Exit(initproc.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(cli.Main(os.Args[1:]))
}
