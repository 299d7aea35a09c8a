package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

// nsState describes the inside of a namespace: interfaces that are up
// with their IPv4 addresses, and the default gateway.
type nsState struct {
	Up      map[string][]string
	Gateway string
}

func inspectNS(t testing.TB, path string) nsState {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	st := nsState{Up: map[string][]string{}}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
		var as []string
		for _, a := range addrs {
			as = append(as, a.IPNet.String())
		}
		st.Up[l.Attrs().Name] = as
	}
	routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Gw != nil && (r.Dst == nil || r.Dst.IP.IsUnspecified()) {
			st.Gateway = r.Gw.String()
		}
	}
	return st
}

func TestBridgeContainersTalkByName(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	def, err := m.Inspect(ctx, api.DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	webID, webFiles := container(t, "web")
	cliID, cliFiles := container(t, "client")
	web, err := m.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Aliases: []string{"frontend"}, FilesDir: webFiles})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := m.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "client", Hostname: "cli-host", FilesDir: cliFiles})
	if err != nil {
		t.Fatal(err)
	}

	// Each container has its namespace: lo up, eth0 with its address, a
	// default route via the gateway.
	for _, s := range []*api.NetworkSettings{web, cli} {
		if s.Network != api.DefaultNetwork || s.Gateway != def.Gateway || s.NetNS == "" || s.MAC == "" {
			t.Fatalf("settings %+v", s)
		}
		st := inspectNS(t, s.NetNS)
		if _, ok := st.Up["lo"]; !ok {
			t.Errorf("%s: lo is down: %+v", s.IP, st)
		}
		if got := st.Up["eth0"]; len(got) != 1 || !strings.HasPrefix(got[0], s.IP+"/") {
			t.Errorf("eth0 addresses %v, want %s", got, s.IP)
		}
		if st.Gateway != def.Gateway {
			t.Errorf("default gateway %q, want %s", st.Gateway, def.Gateway)
		}
	}
	if web.IP == cli.IP {
		t.Fatalf("both containers got %s", web.IP)
	}

	// The files the containers bind-mount.
	hosts, _ := os.ReadFile(cliFiles + "/hosts")
	if !strings.Contains(string(hosts), cli.IP+"\tcli-host client\n") || !strings.Contains(string(hosts), "127.0.0.1\tlocalhost") {
		t.Errorf("hosts:\n%s", hosts)
	}
	if hn, _ := os.ReadFile(cliFiles + "/hostname"); string(hn) != "cli-host\n" {
		t.Errorf("hostname %q", hn)
	}
	resolv, _ := os.ReadFile(cliFiles + "/resolv.conf")
	for _, want := range []string{"nameserver " + def.Gateway + "\n", "search test.invalid\n", "options ndots:1\n"} {
		if !strings.Contains(string(resolv), want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}

	// Names resolve through the network's DNS server, and TCP works
	// between the namespaces by name.
	echoServer(t, web.NetNS, ":8080", "web")
	for _, name := range []string{"web", "frontend", "WEB", webID[:12]} {
		addrs, _ := lookup(t, cli.NetNS, cliFiles, name)
		if len(addrs) != 1 || addrs[0] != web.IP {
			t.Fatalf("%s resolves to %v, want [%s]", name, addrs, web.IP)
		}
	}
	addrs, _ := lookup(t, cli.NetNS, cliFiles, "web")
	mustAsk(t, cli.NetNS, net.JoinHostPort(addrs[0], "8080"), "web")
	// The container reaches itself by its own address too.
	mustAsk(t, web.NetNS, net.JoinHostPort(web.IP, "8080"), "web")
	// The host reaches containers directly.
	mustAsk(t, "", net.JoinHostPort(web.IP, "8080"), "web")

	// Inspect lists the attached containers.
	def, _ = m.Inspect(ctx, api.DefaultNetwork)
	if ep := def.Containers[webID]; ep.IP != web.IP || ep.Name != "web" || len(ep.Aliases) != 1 {
		t.Fatalf("inspect endpoint %+v", ep)
	}

	if err := m.Teardown(ctx, webID); err != nil {
		t.Fatal(err)
	}
	if addrs, _ := lookup(t, cli.NetNS, cliFiles, "web"); len(addrs) != 0 {
		t.Fatalf("web still resolves after teardown: %v", addrs)
	}
	if _, err := os.Stat(web.NetNS); !os.IsNotExist(err) {
		t.Fatalf("namespace file still there: %v", err)
	}
	// Teardown is idempotent.
	if err := m.Teardown(ctx, webID); err != nil {
		t.Fatal(err)
	}
}
