// Command echoserver echoes what it gets, over HTTP and raw TCP, to test
// networking, ingress and port mapping.
//
//	echoserver [-http :$PORT] [-tcp :9000]
//
// HTTP (default port $PORT, else 8080): every request is answered with a
// JSON object describing it (see request) and naming the host that served
// it. ?status=N answers with status N, ?sleep=D waits D (at most 30s)
// first. TCP (default :9000): every connection gets back the bytes it
// sends. An empty address turns a listener off. SIGTERM or SIGINT stop it
// cleanly (exit 0).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	maxBody  = 1 << 20
	maxSleep = 30 * time.Second
)

// request is the JSON an HTTP request is answered with.
type request struct {
	Hostname   string              `json:"hostname"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      string              `json:"query,omitempty"`
	Proto      string              `json:"proto"`
	Host       string              `json:"host"`
	RemoteAddr string              `json:"remoteAddr"`
	Headers    map[string][]string `json:"headers"`
	Body       string              `json:"body,omitempty"`
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	httpAddr := flag.String("http", ":"+port, "HTTP echo `address` (empty: off)")
	tcpAddr := flag.String("tcp", ":9000", "TCP echo `address` (empty: off)")
	flag.Parse()
	host, _ := os.Hostname()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("listening http on %s\n", ln.Addr())
		wg.Go(func() { errc <- serveHTTP(ctx, ln, newHandler(host)) })
	}
	if *tcpAddr != "" {
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("listening tcp on %s\n", ln.Addr())
		wg.Go(func() { errc <- serveTCP(ctx, ln) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			fatal(err)
		}
	}
	fmt.Println("stopped")
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
	os.Exit(1)
}

// newHandler answers every request with its description as JSON.
func newHandler(hostname string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 200 || n > 599 {
				http.Error(w, fmt.Sprintf("bad status %q: want 200-599", s), http.StatusBadRequest)
				return
			}
			status = n
		}
		if s := q.Get("sleep"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > maxSleep {
				http.Error(w, fmt.Sprintf("bad sleep %q: want a duration up to %v", s, maxSleep), http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(request{
			Hostname: hostname, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Proto: r.Proto, Host: r.Host, RemoteAddr: r.RemoteAddr, Headers: r.Header, Body: string(body),
		})
	})
}

// serveHTTP serves h on ln until ctx is done, then drains for up to 10s.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain http: %w", err)
	}
	<-errc
	return nil
}

// serveTCP echoes each connection on ln until ctx is done, then closes
// the listener and the open connections.
func serveTCP(ctx context.Context, ln net.Listener) error {
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	stopped := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stopped()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept tcp: %w", err)
		}
		mu.Lock()
		if ctx.Err() != nil { // stopping: the closer may have run already
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			io.Copy(c, c)
		})
	}
}
