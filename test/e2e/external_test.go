package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestIngressExternal: with the ingress on every address, an App with
// ingress.external answers a client from another machine (here, a network
// namespace of the test's own behind a veth), and an App without it
// answers that client 404 while it still answers this machine.
func TestIngressExternal(t *testing.T) {
	port := freePort(t)
	d, err := startDaemonWith("external", "--ingress-addr", fmt.Sprintf("0.0.0.0:%d", port))
	extraDaemons = append(extraDaemons, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{helloApp("inside", "1", ""), helloApp("outside", "1", "  ingress: {external: true}\n")} {
		if r := applyYAML(t, d, doc); r.Code != 0 {
			t.Fatal(r)
		}
	}
	eventually(t, 30*time.Second, "both Apps to be ready", func() bool {
		return appReady(t, d, "inside")() && appReady(t, d, "outside")()
	})

	// The "other machine": a namespace with a veth to the host.
	ns := "skf-e2e-ext"
	hostIf, nsIf := "skfext0", "skfext1"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "link", "del", hostIf).Run()
	run("netns", "add", ns)
	defer exec.Command("ip", "netns", "del", ns).Run()
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	defer exec.Command("ip", "link", "del", hostIf).Run()
	run("link", "set", nsIf, "netns", ns)
	run("addr", "add", "169.254.213.1/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("-n", ns, "addr", "add", "169.254.213.2/30", "dev", nsIf)
	run("-n", ns, "link", "set", nsIf, "up")

	remote := fmt.Sprintf("169.254.213.1:%d", port)
	if code, body := getFromNetns(t, ns, remote, "outside.localhost"); code != 200 || !strings.Contains(body, "hello from skiff") {
		t.Fatalf("external App from another machine: %d %q", code, body)
	}
	if code, body := getFromNetns(t, ns, remote, "inside.localhost"); code != 404 {
		t.Fatalf("internal App from another machine: %d %q, want 404", code, body)
	}
	// This machine reaches both, on loopback and on its own addresses.
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), remote} {
		for _, host := range []string{"inside.localhost", "outside.localhost"} {
			if code, body := get(t, addr, host, "/"); code != 200 {
				t.Fatalf("%s through %s from this machine: %d %q", host, addr, code, body)
			}
		}
	}
}

// getFromNetns sends GET / for host to addr from a socket made in the
// network namespace ns, and returns the status and body.
func getFromNetns(t *testing.T, ns, addr, host string) (int, string) {
	t.Helper()
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine: never back in the pool in ns
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{nil, err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, ns, r.err)
	}
	defer r.conn.Close()
	r.conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(r.conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	raw, _ := io.ReadAll(r.conn)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("answer to %s from %s: %v\n%q", host, ns, err, raw)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
