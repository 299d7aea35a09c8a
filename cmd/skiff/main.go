// Command skiff is the skiff container platform: `skiff daemon` runs it,
// every other subcommand is a client of its API.
package main

import (
	"os"

	"skiff.dev/skiff/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
