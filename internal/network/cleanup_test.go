package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"

	"skiff.dev/skiff/api"
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
	// A daemon attaches containers, then dies without tearing them down
	// (Close leaves what its death leaves: every host object).
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
	// n3 adds 11 rules (6 FWD, 2 IN, 3 POST), two containers 2 ports each.
	if c := countObjects(t, m1); c.Veths != 2 || c.NetNS != 4 || c.Leases != 3 || c.Rules != base.Rules+11+4 {
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
	m1.Close()
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
