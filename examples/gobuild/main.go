// Command greet greets: the small program examples/gobuild compiles in a
// Debian stage with Debian's Go and ships alone in a scratch image.
//
//	greet [-upper] [NAME...]   prints "hello, NAME" for each NAME (default: world)
//	greet -version             prints the Go release that compiled it
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// greeting returns the greeting for name; an empty name is "world".
func greeting(name string, upper bool) string {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "world"
	}
	g := "hello, " + name
	if upper {
		g = strings.ToUpper(g)
	}
	return g
}

func main() {
	upper := flag.Bool("upper", false, "shout")
	version := flag.Bool("version", false, "print the Go release that compiled greet and exit")
	flag.Parse()
	if *version {
		fmt.Printf("greet built with %s for %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	}
	names := flag.Args()
	if len(names) == 0 {
		names = []string{os.Getenv("GREET_NAME")}
	}
	for _, n := range names {
		fmt.Println(greeting(n, *upper))
	}
}
