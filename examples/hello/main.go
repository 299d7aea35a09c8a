// Command hello is the example app of skiff's guides: a small static HTTP
// server, packed into a FROM scratch image.
//
// Served on $HOST:$PORT (default all addresses, port 8080):
//
//	GET /          "hello from skiff (<hostname>), version <$VERSION>\n"
//	               (VERSION defaults to "1"); ?sleep=<duration> (at most
//	               30s) delays the answer, to make requests last
//	GET /healthz   "ok\n"
//
// On SIGTERM or SIGINT it stops accepting connections, lets requests in
// flight finish (up to 30s) and exits 0.
//
// The same binary serves as a plain command, for tests and benchmarks:
//
//	hello -exit N      exit at once with code N
//	hello -print TEXT  print TEXT and a newline, exit 0
//	hello -get URL     GET URL and print the body; exit 1 unless 2xx
//	                   (connection refused is retried for 5s, so it
//	                   can be run right after the server's start)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	// drainTimeout bounds how long requests in flight may take to finish
	// after SIGTERM.
	drainTimeout = 30 * time.Second
	// maxSleep bounds ?sleep=.
	maxSleep = 30 * time.Second
	// getRetry is how long -get retries a refused connection.
	getRetry = 5 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exit := fs.Int("exit", 0, "exit at once with this `code`")
	text := fs.String("print", "", "print `text` and exit")
	get := fs.String("get", "", "GET `url`, print the body and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hello: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["exit"]:
		return *exit
	case set["print"]:
		fmt.Fprintln(stdout, *text)
		return 0
	case set["get"]:
		if err := fetch(context.Background(), *get, stdout); err != nil {
			fmt.Fprintf(stderr, "hello: %v\n", err)
			return 1
		}
		return 0
	}

	addr := net.JoinHostPort(os.Getenv("HOST"), envOr("PORT", "8080"))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "hello: listen on %s: %v (set PORT to a free port)\n", addr, err)
		return 1
	}
	host, _ := os.Hostname()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(stdout, "hello: listening on %s\n", ln.Addr())
	if err := serve(ctx, ln, newHandler(host, envOr("VERSION", "1")), drainTimeout); err != nil {
		fmt.Fprintf(stderr, "hello: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "hello: stopped")
	return 0
}

// newHandler returns the app's routes.
func newHandler(hostname, version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("sleep"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > maxSleep {
				http.Error(w, fmt.Sprintf("bad sleep %q: want a duration up to %v, like 100ms", s, maxSleep), http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from skiff (%s), version %s\n", hostname, version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return mux
}

// serve serves h on ln until ctx is done, then stops accepting and waits
// up to drain for requests in flight.
func serve(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain requests in flight: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// fetch GETs url and copies the body to w, retrying a refused connection
// for getRetry.
func fetch(ctx context.Context, url string, w io.Writer) error {
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(getRetry)
	for {
		resp, err := client.Get(url)
		if errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(deadline) {
			select {
			case <-time.After(20 * time.Millisecond):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("read body of %s: %w", url, err)
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
