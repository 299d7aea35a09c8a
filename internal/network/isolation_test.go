package network

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"skiff.dev/skiff/api"
)

// whoServer answers each connection with the address it came from.
func whoServer(t testing.TB, path, addr string) {
	t.Helper()
	var l net.Listener
	listen := func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	}
	var err error
	if path == "" {
		err = listen()
	} else {
		err = inNS(path, listen)
	}
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			io.WriteString(c, host+"\n")
			c.Close()
		}
	}()
}

// who connects from path to addr and returns the address the server saw.
func who(path, addr string) (string, error) {
	c, err := dialFrom(path, "tcp4", addr, 700*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// outside makes a namespace standing for a host beyond this one, reached
// through a veth with a /30 of 198.51.100.0/24. It returns the host's
// address on that link (a host address that is not skiff's; a server
// answers on port 7001) and the outside's (a server answers on 7000).
func outside(t testing.TB, m *Manager) (hostIP, outIP netip.Addr) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outside")
	if err := createNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(path) })
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	base := netip.AddrFrom4([4]byte{198, 51, 100, byte(4 * (1 + time.Now().UnixNano()%60))})
	hostIP, outIP = base.Next(), base.Next().Next()
	name := "sxo" + m.Instance()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Flags: net.FlagUp}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(name) })
	l, _ := netlink.LinkByName(name)
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: hostIP.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, _ := h.LinkByName("eth0")
	h.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: outIP.AsSlice(), Mask: net.CIDRMask(30, 32)}})
	h.LinkSetUp(eth0)
	h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}})
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: hostIP.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	waitOperUp(h.LinkByIndex, eth0.Attrs().Index, time.Second)
	waitOperUp(netlink.LinkByIndex, l.Attrs().Index, time.Second)
	whoServer(t, path, net.JoinHostPort(outIP.String(), "7000"))
	whoServer(t, "", net.JoinHostPort(hostIP.String(), "7001"))
	return hostIP, outIP
}

// addDefaultRoute gives a container a default route, as one with
// NET_ADMIN could.
func addDefaultRoute(t testing.TB, path, gw string) {
	t.Helper()
	ns, _ := netns.GetFromPath(path)
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, _ := h.LinkByName("eth0")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatal(err)
	}
}

func TestIsolationAndInternal(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	other, err := m.Create(ctx, api.NetworkCreateRequest{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	internal, err := m.Create(ctx, api.NetworkCreateRequest{Name: "private", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	setup := func(name, network string) (*api.NetworkSettings, string) {
		id, files := container(t, name)
		s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: name, Network: network, FilesDir: files})
		if err != nil {
			t.Fatal(err)
		}
		echoServer(t, s.NetNS, ":8080", name)
		return s, files
	}
	a, _ := setup("a", "")
	b, _ := setup("b", "")
	c, cFiles := setup("c", "other")
	p1, p1Files := setup("p1", "private")
	p2, _ := setup("p2", "private")
	local, out := outside(t, m)

	t.Run("same network connects", func(t *testing.T) {
		mustAsk(t, a.NetNS, net.JoinHostPort(b.IP, "8080"), "b")
		mustAsk(t, p1.NetNS, net.JoinHostPort(p2.IP, "8080"), "p2")
	})
	t.Run("other networks are unreachable", func(t *testing.T) {
		mustNotReach(t, c.NetNS, net.JoinHostPort(a.IP, "8080"))
		mustNotReach(t, a.NetNS, net.JoinHostPort(c.IP, "8080"))
		mustNotReach(t, p1.NetNS, net.JoinHostPort(a.IP, "8080"))
		mustNotReach(t, a.NetNS, net.JoinHostPort(p1.IP, "8080"))
	})
	t.Run("names of other networks do not resolve", func(t *testing.T) {
		if addrs, _ := lookup(t, c.NetNS, cFiles, "a"); len(addrs) != 0 {
			t.Fatalf("a resolves from network other: %v", addrs)
		}
	})
	t.Run("outbound is masqueraded", func(t *testing.T) {
		for _, s := range []*api.NetworkSettings{a, c} {
			seen, err := who(s.NetNS, net.JoinHostPort(out.String(), "7000"))
			if err != nil {
				t.Fatalf("from %s: %v", s.IP, err)
			}
			if seen == s.IP || !strings.HasPrefix(seen, "198.51.100.") {
				t.Fatalf("outside saw %s from %s: want the host's address", seen, s.IP)
			}
		}
		if seen, err := who(a.NetNS, net.JoinHostPort(local.String(), "7001")); err != nil || seen != a.IP {
			t.Fatalf("host address from a: %q, %v", seen, err)
		}
	})
	t.Run("internal network has no way out", func(t *testing.T) {
		if gw := inspectNS(t, p1.NetNS).Gateway; gw != "" {
			t.Fatalf("internal container has a default route via %s", gw)
		}
		if _, err := who(p1.NetNS, net.JoinHostPort(out.String(), "7000")); err == nil {
			t.Fatal("internal container reached the outside without a route")
		}
		// Even with a route of its own, the firewall stops it.
		addDefaultRoute(t, p1.NetNS, internal.Gateway)
		if seen, err := who(p1.NetNS, net.JoinHostPort(out.String(), "7000")); err == nil {
			t.Fatalf("internal container reached the outside (seen as %s)", seen)
		}
		if seen, err := who(p1.NetNS, net.JoinHostPort(local.String(), "7001")); err == nil {
			t.Fatalf("internal container reached a host address (seen as %s)", seen)
		}
		// Names on the network still resolve; the rest is refused.
		addrs, _ := lookup(t, p1.NetNS, p1Files, "p2")
		if len(addrs) != 1 || addrs[0] != p2.IP {
			t.Fatalf("p2 resolves to %v on the internal network", addrs)
		}
		if _, rcode := lookup(t, p1.NetNS, p1Files, "example.org"); rcode != 5 {
			t.Fatalf("external name on an internal network: rcode %d, want REFUSED (5)", rcode)
		}
	})
	t.Run("the host reaches every network", func(t *testing.T) {
		for _, s := range []*api.NetworkSettings{a, c, p1} {
			mustAsk(t, "", net.JoinHostPort(s.IP, "8080"), map[string]string{a.IP: "a", c.IP: "c", p1.IP: "p1"}[s.IP])
		}
	})
	_ = other
}
