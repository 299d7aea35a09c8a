package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestCleanupIsExact(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m := newManager(t, cfg)
	base := countObjects(t, m)
	if base.Bridges != 1 || base.Networks != 1 || base.Leases != 0 || base.Veths != 0 || base.NetNS != 0 || base.Rules == 0 {
		t.Fatalf("a new manager has %+v: want the default network's bridge and rules only", base)
	}
	ports := []api.PortMapping{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "udp"}}

	t.Run("setup and teardown", func(t *testing.T) {
		var ids []string
		for _, network := range []string{"", api.NetworkNone, "", api.NetworkHost} {
			id, files := container(t, "c")
			req := SetupRequest{ContainerID: id, Name: "c" + id[:4], Network: network, FilesDir: files}
			if network == "" {
				req.Ports = ports
			}
			if _, err := m.Setup(ctx, req); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		during := countObjects(t, m)
		if during.Veths != 2 || during.NetNS != 3 || during.Leases != 3 || during.Rules != base.Rules+4 {
			t.Fatalf("with 2 bridge, 1 none and 1 host container: %+v (base %+v)", during, base)
		}
		for _, id := range ids {
			if err := m.Teardown(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if after := countObjects(t, m); after != base {
			t.Fatalf("after teardown %+v, want %+v", after, base)
		}
	})

	t.Run("network create and remove", func(t *testing.T) {
		if _, err := m.Create(ctx, api.NetworkCreateRequest{Name: "n1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Create(ctx, api.NetworkCreateRequest{Name: "n2", Internal: true}); err != nil {
			t.Fatal(err)
		}
		id, _ := container(t, "c")
		if _, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "c", Network: "n1", Ports: ports}); err != nil {
			t.Fatal(err)
		}
		if err := m.Remove(ctx, "n1"); err == nil {
			t.Fatal("removed a network in use")
		}
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"n1", "n2"} {
			if err := m.Remove(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if after := countObjects(t, m); after != base {
			t.Fatalf("after network rm %+v, want %+v", after, base)
		}
	})
}

func TestCrashLeavesNothing(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	ports := []api.PortMapping{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "udp"}}
	// A daemon attaches containers, then dies without tearing them down.
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Should the test stop early, leave nothing on the host.
		if m, err := New(ctx, cfg); err == nil {
			m.RemoveAll(ctx)
		}
	})
	base := countObjects(t, m1)
	if _, err := m1.Create(ctx, api.NetworkCreateRequest{Name: "n3"}); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"", "n3", api.NetworkNone} {
		id, _ := container(t, "c")
		req := SetupRequest{ContainerID: id, Name: "c" + id[:4], Network: network}
		if network != api.NetworkNone {
			req.Ports = ports
		}
		if _, err := m1.Setup(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// And a namespace no record owns, as if its record had been lost.
	if err := createNetNS(m1.NetNSPath("stray")); err != nil {
		t.Fatal(err)
	}
	m1.Close()
	// n3 adds 13 rules (2 RAW, 6 FWD, 2 IN, 3 POST), two containers 2
	// ports each.
	if c := countObjects(t, m1); c.Veths != 2 || c.NetNS != 4 || c.Leases != 3 || c.Rules != base.Rules+13+4 {
		t.Fatalf("after the crash: %+v (base %+v)", c, base)
	}
	// The next daemon finds no container alive.
	m2 := newManager(t, cfg)
	if err := m2.Restore(ctx, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if err := m2.Remove(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if after := countObjects(t, m2); after != base {
		t.Fatalf("after restore %+v, want %+v", after, base)
	}
}

func TestRestartKeepsRunningContainers(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	webID, _ := container(t, "web")
	web, err := m1.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Ports: []api.PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	goneID, _ := container(t, "gone")
	gone, err := m1.Setup(ctx, SetupRequest{ContainerID: goneID, Name: "gone", Ports: []api.PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, web.NetNS, ":8080", "web")
	published := fmt.Sprintf("127.0.0.1:%d", web.Ports[0].HostPort)
	mustAsk(t, "", published, "web")
	abandon(m1) // the daemon dies
	// While no daemon runs, the container stays reachable.
	mustAsk(t, "", published, "web")

	m2 := newManager(t, cfg)
	if err := m2.Restore(ctx, map[string]bool{webID: true}); err != nil {
		t.Fatal(err)
	}
	mustAsk(t, "", published, "web")
	cliID, cliFiles := container(t, "client")
	cli, err := m2.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "client", FilesDir: cliFiles})
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := lookup(t, cli.NetNS, cliFiles, "web"); len(addrs) != 1 || addrs[0] != web.IP {
		t.Fatalf("web resolves to %v after restart, want %s", addrs, web.IP)
	}
	if addrs, _ := lookup(t, cli.NetNS, cliFiles, "gone"); len(addrs) != 0 {
		t.Fatalf("a container that died with the daemon still resolves: %v", addrs)
	}
	if _, err := os.Stat(gone.NetNS); !os.IsNotExist(err) {
		t.Fatalf("namespace of the gone container: %v", err)
	}
	// The published port is held again by the new daemon.
	if l, err := net.Listen("tcp4", published); err == nil {
		l.Close()
		t.Fatal("the published port of a running container is free after restart")
	}
	// The gone container's port was released and its rule removed.
	gonePort := fmt.Sprintf("127.0.0.1:%d", gone.Ports[0].HostPort)
	l, err := net.Listen("tcp4", gonePort)
	if err != nil {
		t.Fatalf("port of the gone container still held: %v", err)
	}
	l.Close()
	if c := countObjects(t, m2); c.Leases != 2 || c.Veths != 2 {
		t.Fatalf("after restore: %+v, want 2 leases and veths (web, client)", c)
	}
}

// holdSubnet holds subnet with a host route until the test ends: on a
// bridge of the test's own, in a routing table of its own, so that no
// other route to the subnet is in its way.
func holdSubnet(t *testing.T, subnet string) {
	t.Helper()
	name := "tsthold" + randomHex(6)
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}) })
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	_, dst, err := net.ParseCIDR(subnet)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Table: 1000 + rand.IntN(30000)}); err != nil {
		t.Fatalf("hold %s: %v", subnet, err)
	}
}

// createOffPool creates the network name on a free random /24 of
// 10.123.0.0/16, out of the pool the daemons on the host pick from: the
// network's bridge may go and come back without another daemon taking its
// subnet meanwhile.
func createOffPool(t *testing.T, m *Manager, name string) {
	t.Helper()
	var err error
	for range 10 {
		subnet := fmt.Sprintf("10.123.%d.0/24", rand.IntN(256))
		if _, err = m.Create(context.Background(), api.NetworkCreateRequest{Name: name, Subnet: subnet}); !errors.Is(err, errdefs.ErrConflict) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestCloseKeepsOnlyWhatContainersNeed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m2 *Manager
	t.Cleanup(func() {
		// A failure part way leaves a manager holding the instance.
		m1.Close()
		if m2 != nil {
			m2.Close()
		}
		if m, err := New(ctx, cfg); err == nil {
			m.RemoveAll(ctx)
		}
	})
	createOffPool(t, m1, "idle")
	webID, _ := container(t, "web")
	web, err := m1.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Ports: []api.PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, web.NetNS, ":8080", "web")
	published := fmt.Sprintf("127.0.0.1:%d", web.Ports[0].HostPort)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	// The idle network's bridge went; the container's stayed, and works.
	if c := countObjects(t, m1); c.Bridges != 1 || c.Veths != 1 || c.NetNS != 1 {
		t.Fatalf("after a graceful stop with one container: %+v", c)
	}
	mustAsk(t, "", published, "web")
	mustAsk(t, "", net.JoinHostPort(web.IP, "8080"), "web")

	// The next daemon makes the idle network's bridge again.
	m2, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Restore(ctx, map[string]bool{webID: true}); err != nil {
		t.Fatal(err)
	}
	if c := countObjects(t, m2); c.Bridges != 2 {
		t.Fatalf("after restart: %+v", c)
	}
	mustAsk(t, "", published, "web")
	// Without containers, a graceful stop leaves nothing on the host.
	if err := m2.Teardown(ctx, webID); err != nil {
		t.Fatal(err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if c := countObjects(t, m2); c.Bridges != 0 || c.Rules != 0 || c.Veths != 0 || c.NetNS != 0 {
		t.Fatalf("after a graceful stop without containers: %+v", c)
	}
	if mounted, _ := isMountPoint(m2.netnsDir); mounted {
		t.Fatal("the namespace directory is still mounted")
	}
}

func TestDeadInstancesAreCollected(t *testing.T) {
	ctx := context.Background()
	dead := testConfig(t, netip.Addr{})
	m1, err := New(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := container(t, "c")
	if _, err := m1.Setup(ctx, SetupRequest{ContainerID: id, Name: "c", Ports: []api.PortMapping{{ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	abandon(m1)
	if c := countObjects(t, m1); c.Bridges != 1 || c.Veths != 1 || c.Rules == 0 {
		t.Fatalf("the dead daemon left %+v", c)
	}
	// While its state exists, another daemon leaves it alone.
	m2, err := New(ctx, testConfig(t, netip.Addr{}))
	if err != nil {
		t.Fatal(err)
	}
	m2.RemoveAll(ctx)
	if c := countObjects(t, m1); c.Bridges != 1 || c.Veths != 1 {
		t.Fatalf("a dead daemon's objects were collected while its state exists: %+v", c)
	}
	// Once its state is gone, the next daemon to start collects it.
	removeNetNS(m1.NetNSPath(id))
	unmountDir(m1.netnsDir)
	if err := os.RemoveAll(dead.StateDir); err != nil {
		t.Fatal(err)
	}
	newManager(t, testConfig(t, netip.Addr{}))
	if c := countObjects(t, m1); c.Bridges != 0 || c.Veths != 0 || c.Rules != 0 {
		t.Fatalf("a dead daemon's objects were not collected: %+v", c)
	}
	if _, err := os.Stat(filepath.Join(instanceDir, dead.Instance+".lock")); !os.IsNotExist(err) {
		t.Fatalf("its lock file: %v", err)
	}
}

// TestDefaultNetworkMovesWhenItsSubnetWasTaken: a daemon stopped without
// containers has no bridge; if its default subnet is taken meanwhile, it
// still starts, on a free subnet, and its containers get addresses there.
// A daemon whose default subnet is configured refuses instead.
func TestDefaultNetworkMovesWhenItsSubnetWasTaken(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	def, err := m1.Inspect(ctx, api.DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	if linkExists(def.Bridge) {
		t.Fatal("the bridge of a daemon stopped without containers is still there")
	}
	// The subnet is taken meanwhile, by a host route the test holds
	// whatever other daemons on the host take and release.
	holdSubnet(t, def.Subnet)

	m2 := newManager(t, cfg)
	moved, err := m2.Inspect(ctx, api.DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Subnet == def.Subnet || moved.ID != def.ID {
		t.Fatalf("default network after restart: %s %s, want the same network on another subnet than %s", moved.ID, moved.Subnet, def.Subnet)
	}
	id, _ := container(t, "c")
	ns, err := m2.Setup(ctx, SetupRequest{ContainerID: id, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix(moved.Subnet).Contains(netip.MustParseAddr(ns.IP)) {
		t.Fatalf("container address %s is not in the new subnet %s", ns.IP, moved.Subnet)
	}
	if err := m2.Teardown(ctx, id); err != nil {
		t.Fatal(err)
	}

	// With the subnet configured, the daemon keeps to it and says why not.
	cfg3 := testConfig(t, netip.Addr{})
	cfg3.DefaultSubnet = def.Subnet
	if m3, err := New(ctx, cfg3); err == nil {
		m3.RemoveAll(ctx)
		t.Fatal("a daemon started on a configured default subnet that a host route holds")
	} else if !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("configured default subnet taken: %v", err)
	}
}
