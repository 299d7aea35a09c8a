// Command app answers HTTP requests with a small inventory; the build
// benchmark compiles it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(revision)
		os.Exit(0)
	}
	inv := newInventory()
	http.HandleFunc("/items", inv.serveItems)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	log.Fatal(http.ListenAndServe(*addr, nil))
}
