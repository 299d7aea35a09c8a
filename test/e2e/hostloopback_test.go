package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// hostListener accepts TCP connections on addr and records the address
// of each peer.
type hostListener struct {
	addr  netip.AddrPort
	mu    sync.Mutex
	peers []string
}

func listenHost(t *testing.T, network, addr string) *hostListener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostListener{addr: netip.MustParseAddrPort(l.Addr().String())}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.peers = append(h.peers, c.RemoteAddr().String())
			h.mu.Unlock()
			c.Close()
		}
	}()
	return h
}

// accepted returns the peers of the connections accepted so far.
func (h *hostListener) accepted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.peers)
}

// TestHostLoopbackUnreachable is the regression test of CVE-2020-8558's
// class: a container that writes its own Ethernet frames to the gateway,
// addressed to 127.0.0.1, must not complete a TCP handshake with a host
// service that listens on loopback only — also while a port of its
// network is published on 127.0.0.1 (the bridge then routes 127.0.0.1,
// so the firewall's guard is what is proved). NET_RAW is added to the
// container, so the capability set is not what stops it.
func TestHostLoopbackUnreachable(t *testing.T) {
	d := env.daemon
	const netName = "e2e-loopback"
	must(t, d, "network", "create", netName)
	t.Cleanup(func() {
		d.Run("", "rm", "-f", "e2e-lo-web")
		d.Run("", "network", "rm", netName)
	})
	n := networkInspect(t, d, netName)
	gw := n.Gateway

	// A published port on 127.0.0.1 keeps working from the host.
	port := freePort(t)
	must(t, d, "run", "-d", "--name", "e2e-lo-web", "--network", netName, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "hello")
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "hello from skiff") {
		t.Fatalf("published port answered %q", body)
	}
	// So the bridge routes 127.0.0.1, and only the firewall stands
	// between a container and the host's loopback.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.Bridge + "/route_localnet"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("route_localnet of %s is %q (%v) with a port published on 127.0.0.1, want 1", n.Bridge, b, err)
	}

	probe := func(target string) Result {
		return d.Run("", "run", "--rm", "--network", netName, "--cap-add", "NET_RAW", "rawsock", "-timeout", "2500ms", "-data", "from "+target+"\n", target)
	}
	// The probe works: the host's address on the bridge answers it (the
	// container's kernel then resets the connection it does not know).
	ctl := listenHost(t, "tcp4", net.JoinHostPort(gw, "0"))
	if r := probe(ctl.addr.String()); r.Code != 0 || !strings.Contains(r.Stdout, "handshake completed with "+ctl.addr.String()) {
		t.Fatalf("raw handshake with the gateway address %s failed, so the probe proves nothing: %s", ctl.addr, r)
	}

	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := listenHost(t, tc.network, tc.addr)
			r := probe(h.addr.String())
			if r.Code != 1 || !strings.Contains(r.Stdout, "no SYN-ACK from "+h.addr.String()) {
				t.Errorf("a container reached the host's loopback listener %s: %s", h.addr, r)
			}
			time.Sleep(200 * time.Millisecond)
			if got := h.accepted(); len(got) != 0 {
				t.Errorf("the loopback listener %s accepted connections from a container: %q", h.addr, got)
			}
		})
	}

	// The published port still answers after the probes.
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "hello from skiff") {
		t.Fatalf("published port answered %q", body)
	}
}

// TestNetRawNotDefault checks the default capability set: without
// --cap-add NET_RAW a container cannot open packet or raw sockets (so
// ping fails), with it both work.
func TestNetRawNotDefault(t *testing.T) {
	d := env.daemon
	gw := networkInspect(t, d, api.DefaultNetwork).Gateway
	r := d.Run("", "run", "--rm", "rawsock", "-timeout", "1s", net.JoinHostPort(gw, "9"))
	if r.Code != 2 || !strings.Contains(r.Stderr, "CAP_NET_RAW is needed") || !strings.Contains(r.Stderr, "operation not permitted") {
		t.Errorf("a packet socket without NET_RAW: %s", r)
	}
	r = d.Run("", "run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", gw)
	if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") {
		t.Errorf("ping without NET_RAW: %s", r)
	}
	out := must(t, d, "run", "--rm", "--cap-add", "NET_RAW", "busybox", "ping", "-c", "1", "-W", "2", gw)
	if !strings.Contains(out, "1 packets received") {
		t.Errorf("ping with --cap-add NET_RAW: %s", out)
	}
}
