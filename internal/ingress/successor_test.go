package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"skiff.dev/skiff/internal/pki"
)

// dupListener returns a second descriptor of ln's socket, as a daemon
// taking over receives it: both accept on the same queue.
func dupListener(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dup, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return dup
}

// TestHandOverPassesHeldRequests: a request held for a replica when the
// proxy shuts down after HandOver is answered by the process the
// listeners were handed to (over TLS if it came over TLS), not 503; a
// request held on a proxy shutting down without HandOver still gets 503.
func TestHandOverPassesHeldRequests(t *testing.T) {
	rp := newReplica(t, "r1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s path=%s", r.Header.Get("X-Forwarded-Proto"), r.URL.Path)
	})
	for _, tc := range []struct {
		name              string
		overTLS, handOver bool
		want              string
	}{
		{"plain", false, true, "200 proto=http path=/x"},
		{"tls", true, true, "200 proto=https path=/x"},
		{"no handover", false, false, "503 app shop: the ingress is shutting down\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, base := testProxy(t, Config{})
			mustUpdate(t, old, route1("shop", "shop-1", []string{"shop.localhost"})) // no replica yet
			client, url := testClient, base+"/x"
			if tc.overTLS {
				ca, addr := startTLS(t, old)
				client, url = http1TLSClient(ca, addr), "https://shop.localhost/x"
			}
			got := make(chan string, 1)
			go func() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = "shop.localhost"
				res, err := client.Do(req)
				if err != nil {
					got <- err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				got <- fmt.Sprintf("%d %s", res.StatusCode, b)
			}()
			eventually(t, "the request to be held", func() bool { return old.RevisionStats("shop-1").Queued == 1 })

			// The new process gets the listeners and has the replica.
			next, err := New(Config{Addr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { next.Close() })
			mustUpdate(t, next, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
			if err := next.Serve(dupListener(t, old.ln)); err != nil {
				t.Fatal(err)
			}
			if tc.overTLS {
				ca, err := pki.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				conf := &tls.Config{GetCertificate: ca.GetCertificate(func(string) bool { return true })}
				if err := next.ServeTLS(dupListener(t, old.tlsLn), conf); err != nil {
					t.Fatal(err)
				}
			}
			if tc.handOver {
				old.HandOver()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := old.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			select {
			case g := <-got:
				if g != tc.want {
					t.Fatalf("held request got %q; want %q", g, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the held request got no answer")
			}
		})
	}
}
