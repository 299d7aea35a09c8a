package ingress_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"skiff.dev/skiff/internal/ingress"
)

// activator stands for the app controller: it starts a replica and
// installs the table that routes to it.
type activator struct {
	start func(revision string)
}

func (a activator) Activate(_ context.Context, app, revision string) { go a.start(revision) }

// Example routes an app scaled to zero: the first request is held until
// the activator's replica is in the table, then proxied.
func Example() {
	var p *ingress.Proxy
	replicas := make(chan *httptest.Server, 1)
	table := func(endpoints ...ingress.Endpoint) ingress.Table {
		return ingress.Table{Routes: []ingress.Route{{
			App:      "hello",
			Hosts:    []string{"hello.localhost"},
			Timeout:  10 * time.Second,
			Backends: []ingress.Backend{{Revision: "hello-00001", Percent: 100, Endpoints: endpoints}},
		}}}
	}
	act := activator{start: func(revision string) {
		replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s (X-Forwarded-Host %s)\n", revision, r.Header.Get("X-Forwarded-Host"))
		}))
		replicas <- replica
		addr := strings.TrimPrefix(replica.URL, "http://")
		if err := p.Update(table(ingress.Endpoint{ID: revision + "-a", Addr: addr})); err != nil {
			log.Fatal(err)
		}
	}}

	p, err := ingress.New(ingress.Config{Addr: "127.0.0.1:0", Activator: act})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Update(table()); err != nil { // no replica yet
		log.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	req, _ := http.NewRequest("GET", "http://"+p.Addr().String()+"/", nil)
	req.Host = "hello.localhost"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(res.Status, ": ", string(body))
	fmt.Println("requests:", p.RevisionStats("hello-00001").Requests)
	(<-replicas).Close()
	// Output:
	// 200 OK: hello from hello-00001 (X-Forwarded-Host hello.localhost)
	// requests: 1
}
