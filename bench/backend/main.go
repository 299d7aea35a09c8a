// Command backend is the replica the ingress benchmark proxies to when
// examples/hello is absent: it answers GET / with a short text body on
// 127.0.0.1:$PORT.
package main

import (
	"log"
	"net/http"
	"os"
)

var body = []byte("hello from skiff\n")

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
