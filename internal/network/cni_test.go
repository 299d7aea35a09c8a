package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestCNINetwork(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	// A subnet no route uses, for the plugin's bridge.
	taken := []netip.Prefix{}
	routes, err := hostRoutes("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		taken = append(taken, r.Dst)
	}
	// podman's default network takes 10.88.0.0/16 once podman has run:
	// look in other pools too.
	var subnet netip.Prefix
	ok := false
	for _, pool := range []string{"10.88.128.0/17", "10.201.0.0/16", "172.30.0.0/16"} {
		if subnet, ok = firstFreeSubnet(netip.MustParsePrefix(pool), 24, taken); ok {
			break
		}
	}
	if !ok {
		t.Fatalf("no free subnet for the CNI test: routes %v", taken)
	}
	ipamDir := t.TempDir()
	bridge := "skc" + m.Instance()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "skiff-test-%s",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, m.Instance(), bridge, subnet, ipamDir)
	t.Cleanup(func() { deleteLink(bridge) })
	n, err := m.Create(ctx, api.NetworkCreateRequest{Name: "plugins", CNIConfig: conf})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "cni" || n.Subnet != subnet.String() || n.Bridge != bridge {
		t.Fatalf("network %+v", n)
	}
	webID, webFiles := container(t, "web")
	web, err := m.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Network: "plugins", FilesDir: webFiles, Ports: []api.PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(web.IP)
	if !subnet.Contains(ip) || web.Gateway != gatewayOf(subnet).String() {
		t.Fatalf("settings %+v, want an address of %s", web, subnet)
	}
	st := inspectNS(t, web.NetNS)
	if _, ok := st.Up["lo"]; !ok {
		t.Fatalf("lo is down on a CNI network: %+v", st)
	}
	cliID, cliFiles := container(t, "client")
	cli, err := m.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "client", Network: "plugins", FilesDir: cliFiles})
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, web.NetNS, ":8080", "web")
	addrs, _ := lookup(t, cli.NetNS, cliFiles, "web")
	if len(addrs) != 1 || addrs[0] != web.IP {
		t.Fatalf("web resolves to %v, want %s", addrs, web.IP)
	}
	mustAsk(t, cli.NetNS, net.JoinHostPort(addrs[0], "8080"), "web")
	// The portmap plugin publishes the port (its own chains).
	mustAsk(t, "", fmt.Sprintf("127.0.0.1:%d", web.Ports[0].HostPort), "web")

	leases := func() int {
		entries, _ := os.ReadDir(filepath.Join(ipamDir, "skiff-test-"+m.Instance()))
		n := 0
		for _, e := range entries {
			if strings.Count(e.Name(), ".") == 3 {
				n++
			}
		}
		return n
	}
	if got := leases(); got != 2 {
		t.Fatalf("host-local holds %d leases, want 2", got)
	}
	for _, id := range []string{webID, cliID} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := leases(); got != 0 {
		t.Fatalf("host-local holds %d leases after teardown", got)
	}
	if c := countObjects(t, m); c.NetNS != 0 || c.Leases != 0 {
		t.Fatalf("after teardown: %+v", c)
	}
	if err := m.Remove(ctx, "plugins"); err != nil {
		t.Fatal(err)
	}
}
