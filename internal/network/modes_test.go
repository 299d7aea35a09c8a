package network

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestNoneAndHost(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	noneID, noneFiles := container(t, "none")
	s, err := m.Setup(ctx, SetupRequest{ContainerID: noneID, Name: "lonely", Network: api.NetworkNone, FilesDir: noneFiles})
	if err != nil {
		t.Fatal(err)
	}
	if s.Network != api.NetworkNone || s.NetNS != m.NetNSPath(noneID) || s.IP != "" {
		t.Fatalf("none settings %+v", s)
	}
	st := inspectNS(t, s.NetNS)
	if len(st.Up) != 1 || len(st.Up["lo"]) != 1 || st.Up["lo"][0] != "127.0.0.1/8" || st.Gateway != "" {
		t.Fatalf("a none namespace should have lo up and nothing else: %+v", st)
	}
	echoServer(t, s.NetNS, "127.0.0.1:8080", "self")
	mustAsk(t, s.NetNS, "127.0.0.1:8080", "self")
	resolv, _ := os.ReadFile(noneFiles + "/resolv.conf")
	if strings.Contains(string(resolv), "nameserver") {
		t.Errorf("none resolv.conf has a nameserver:\n%s", resolv)
	}
	if err := m.Teardown(ctx, noneID); err != nil {
		t.Fatal(err)
	}

	hostID, hostFiles := container(t, "host")
	s, err = m.Setup(ctx, SetupRequest{ContainerID: hostID, Name: "h", Network: api.NetworkHost, FilesDir: hostFiles})
	if err != nil {
		t.Fatal(err)
	}
	if s.Network != api.NetworkHost || s.NetNS != "" {
		t.Fatalf("host settings %+v", s)
	}
	hostResolv, _ := os.ReadFile(m.cfg.ResolvConf)
	if got, _ := os.ReadFile(hostFiles + "/resolv.conf"); string(got) != string(hostResolv) {
		t.Errorf("host network resolv.conf %q, want the host's %q", got, hostResolv)
	}
	if c := countObjects(t, m); c.NetNS != 0 || c.Leases != 0 {
		t.Fatalf("host network made objects: %+v", c)
	}
	if err := m.Teardown(ctx, hostID); err != nil {
		t.Fatal(err)
	}
}
