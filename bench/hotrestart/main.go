// Command hotrestart measures what a daemon restart costs the requests
// flowing through skiff's ingress: paced load (loopback only) against an
// App while the daemon is handed over on SIGHUP (same binary), upgraded to
// a newly built binary, and, for reference, stopped with SIGTERM and
// started again, with and without its sockets held across the gap (what
// contrib/systemd/skiff.socket does). It prints a markdown table.
//
//	hotrestart -skiff bin/skiff -next /tmp/skiff-next -hello-ctx DIR -work DIR
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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	skiffBin = flag.String("skiff", "bin/skiff", "skiff binary")
	nextBin  = flag.String("next", "", "a newer skiff build to upgrade to")
	nextVer  = flag.String("next-version", "bench-next", "the version -next reports")
	helloCtx = flag.String("hello-ctx", "", "build context of the hello image")
	work     = flag.String("work", "", "work directory (its own daemon root, socket and logs)")
	rate     = flag.Int("rate", 2000, "requests per second, in total")
	workers  = flag.Int("workers", 8, "concurrent clients")
	minReqs  = flag.Int("n", 12000, "requests per scenario, at least")
	before   = flag.Duration("before", 2*time.Second, "load before the switch")
	after    = flag.Duration("after", time.Second, "load after the switch ends, at least")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hotrestart:", err)
		os.Exit(1)
	}
}

// bench is the daemon under test.
type bench struct {
	bin, root, sock, log, ingress string
	args                          []string
	held                          []*os.File // sockets held across restarts (socket activation)
	proc                          *os.Process
}

func run() error {
	if *work == "" || *helloCtx == "" || *nextBin == "" {
		return errors.New("-work, -hello-ctx and -next are required")
	}
	b := &bench{bin: filepath.Join(*work, "skiff"), root: filepath.Join(*work, "root"),
		sock: filepath.Join(*work, "skiff.sock"), log: filepath.Join(*work, "daemon.log")}
	if err := copyFile(*skiffBin, b.bin); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	b.ingress = "127.0.0.1:" + strconv.Itoa(port)
	b.args = []string{"daemon", "--root", b.root, "--socket", b.sock, "--ingress-addr", b.ingress}
	if err := b.start(); err != nil {
		return err
	}
	defer b.cleanup()
	if out, err := b.cli("image", "build", "-q", "-t", "hello", *helloCtx); err != nil {
		return fmt.Errorf("build hello: %v: %s", err, out)
	}
	app := filepath.Join(*work, "app.yaml")
	os.WriteFile(app, []byte("apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: bench}\nspec:\n  image: hello\n  scale: {min: 2, max: 2}\n  probes:\n    readiness: {http: /healthz, period: 200ms}\n"), 0o644)
	if out, err := b.cli("apply", "-f", app); err != nil {
		return fmt.Errorf("apply: %v: %s", err, out)
	}
	if err := b.waitServing(60 * time.Second); err != nil {
		return err
	}
	scenarios := []struct {
		name string
		do   func() error
	}{
		{"none (steady load)", nil},
		{"`kill -HUP`, same binary", b.hup},
		{"`kill -HUP`, newly built binary", b.upgrade},
		{"SIGTERM + start", b.restart},
		{"SIGTERM + start, sockets held (skiff.socket)", b.restartHeld},
	}
	fmt.Printf("%d clients, %d requests/s in total, at least %d requests per row; latencies of answered requests; p99 before: the %s before the switch; during: requests sent from the signal until the new daemon serves (pid file written, API answering; for a plain start, the App answering).\n\n",
		*workers, *rate, *minReqs, *before)
	fmt.Println("| switch | requests | failed | p99 before | p99 during | added p99 | max during | switch took |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range scenarios {
		if sc.name == "SIGTERM + start, sockets held (skiff.socket)" {
			// From here the bench holds the sockets, as systemd would.
			if err := b.holdSockets(); err != nil {
				return err
			}
		}
		r, err := measure(b.ingress, sc.do)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		added := r.p99During - r.p99Before
		if sc.do == nil {
			added = 0
		}
		fmt.Printf("| %s | %d | %d | %s | %s | %s | %s | %s |\n", sc.name, r.total, r.failed,
			ms(r.p99Before), ms(r.p99During), ms(added), ms(r.maxDuring), ms(r.took))
		if r.failed > 0 {
			fmt.Fprintf(os.Stderr, "hotrestart: %s: first failure: %s\n", sc.name, r.firstErr)
		}
		if err := b.waitServing(30 * time.Second); err != nil {
			return err
		}
		if sc.do != nil && sc.name == "`kill -HUP`, newly built binary" {
			if out, _ := b.cli("version"); !strings.Contains(out, "Server:\n Version:     "+*nextVer) {
				return fmt.Errorf("after the upgrade the daemon reports:\n%s", out)
			}
		}
	}
	if out, _ := b.cli("version"); !strings.Contains(out, "Server:") {
		return fmt.Errorf("the daemon does not answer at the end: %s", out)
	}
	return nil
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

// result is one scenario's outcome.
type result struct {
	total, failed                   int
	p99Before, p99During, maxDuring time.Duration
	took                            time.Duration
	firstErr                        string
}

type sample struct {
	start time.Time
	d     time.Duration
	ok    bool
}

// measure runs paced load, calls sw after the warm-up, and keeps the load
// on until both enough requests were sent and sw has been done a while.
func measure(addr string, sw func() error) (result, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	var (
		mu      sync.Mutex
		samples []sample
		errs    []string
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	interval := time.Duration(int64(time.Second) * int64(*workers) / int64(*rate))
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				s, err := send(client, addr)
				mu.Lock()
				samples = append(samples, s)
				if err != nil && len(errs) < 1 {
					errs = append(errs, err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(*before)
	swStart := time.Now()
	var swErr error
	if sw != nil {
		swErr = sw()
	}
	swEnd := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(samples)
		mu.Unlock()
		if n >= *minReqs && time.Since(swEnd) >= *after {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if swErr != nil {
		return result{}, swErr
	}
	r := result{total: len(samples), took: swEnd.Sub(swStart)}
	if sw == nil {
		r.took = 0
	}
	var pre, during []time.Duration
	for _, s := range samples {
		if !s.ok {
			r.failed++
			continue // latencies are of answered requests
		}
		switch {
		case s.start.Before(swStart):
			pre = append(pre, s.d)
		case !s.start.After(swEnd):
			during = append(during, s.d)
		}
	}
	r.p99Before = pct(pre, 0.99)
	r.p99During = pct(during, 0.99)
	if len(during) > 0 {
		r.maxDuring = slices.Max(during)
	}
	if len(errs) > 0 {
		r.firstErr = errs[0]
	}
	return r, nil
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

func send(client *http.Client, addr string) (sample, error) {
	s := sample{start: time.Now()}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "bench.localhost"
	resp, err := client.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), "hello from skiff")) {
			err = fmt.Errorf("%d %q", resp.StatusCode, body)
		}
	}
	s.d = time.Since(s.start)
	s.ok = err == nil
	return s, err
}

// start starts the daemon and waits until it serves its API.
func (b *bench) start() error {
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var cmd *exec.Cmd
	if b.held != nil {
		// As systemd does: the sockets from fd 3, LISTEN_PID the daemon's.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" "$@"`, b.bin}, b.args...)...)
		cmd.ExtraFiles = b.held
	} else {
		cmd = exec.Command(b.bin, b.args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	b.proc = cmd.Process
	return b.waitAPI(30 * time.Second)
}

func (b *bench) waitAPI(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if out, err := b.cli("version"); err == nil && strings.Contains(out, "Server:") {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the daemon did not answer within %s (see %s)", limit, b.log)
}

func (b *bench) waitServing(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		if s, _ := send(client, b.ingress); s.ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the App was not served within %s", limit)
}

func (b *bench) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, *skiffBin, append([]string{"--socket", b.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (b *bench) pid() int {
	raw, _ := os.ReadFile(filepath.Join(b.root, "skiff.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// hup hands the daemon over to the binary at its path and waits until
// the new process serves and the old one exited.
func (b *bench) hup() error {
	old := b.pid()
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if pid := b.pid(); pid != old && pid > 0 && !alive(old) {
			b.proc, _ = os.FindProcess(pid)
			return b.waitAPI(10 * time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no new daemon took over from pid %d (see %s)", old, b.log)
}

// upgrade puts the newer build at the daemon's path, then hands over.
func (b *bench) upgrade() error {
	if err := copyFile(*nextBin, b.bin); err != nil {
		return err
	}
	return b.hup()
}

// restart stops the daemon with SIGTERM and starts it again.
func (b *bench) restart() error {
	pid := b.pid()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for i := 0; i < 3000 && alive(pid); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.start(); err != nil {
		return err
	}
	// Serving means the App answers again, not only the API.
	return b.waitServing(30 * time.Second)
}

// restartHeld is restart with the sockets held by the bench.
func (b *bench) restartHeld() error { return b.restart() }

// holdSockets restarts the daemon on sockets the bench made and keeps,
// as systemd's socket activation does.
func (b *bench) holdSockets() error {
	pid := b.pid()
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 3000 && alive(pid); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	os.Remove(b.sock)
	ul, err := net.Listen("unix", b.sock)
	if err != nil {
		return err
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	tl, err := net.Listen("tcp", b.ingress)
	if err != nil {
		return err
	}
	uf, _ := ul.(*net.UnixListener).File()
	tf, _ := tl.(*net.TCPListener).File()
	ul.Close()
	tl.Close()
	b.held = []*os.File{uf, tf}
	if err := b.start(); err != nil {
		return err
	}
	return b.waitServing(30 * time.Second)
}

func (b *bench) cleanup() {
	if out, err := b.cli("delete", "app", "bench"); err != nil {
		fmt.Fprintln(os.Stderr, "hotrestart: delete app:", err, out)
	}
	time.Sleep(time.Second)
	if pid := b.pid(); pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 2000 && alive(pid); i++ {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// alive reports whether pid runs: a zombie waiting for its parent (a
// daemon that handed over is no child of the bench) has exited.
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(raw), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(from, to string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(to+".tmp", raw, 0o755); err != nil {
		return err
	}
	return os.Rename(to+".tmp", to)
}
