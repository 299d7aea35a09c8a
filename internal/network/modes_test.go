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

// TestSetupCreatedCallback: Created comes once, when the namespace and the
// final files exist (a runtime creating the container then bind-mounts
// them), before the interfaces are made.
func TestSetupCreatedCallback(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	for _, network := range []string{api.NetworkNone, ""} {
		name := "cb-" + network
		if network == "" {
			name = "cb-bridge"
		}
		t.Run(name, func(t *testing.T) {
			id, files := container(t, name)
			calls := 0
			var hosts []byte
			var nsAtCall, ifacesAtCall bool
			s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: name, Network: network, FilesDir: files, Created: func() {
				calls++
				hosts, _ = os.ReadFile(files + "/hosts")
				nsAtCall = isNetNS(m.NetNSPath(id))
				if nsAtCall {
					st := inspectNS(t, m.NetNSPath(id))
					ifacesAtCall = len(st.Up) > 0
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Teardown(ctx, id)
			if calls != 1 || !nsAtCall {
				t.Fatalf("Created called %d times, namespace there: %v", calls, nsAtCall)
			}
			if ifacesAtCall {
				t.Error("interfaces were up before Created: nothing was left to overlap")
			}
			final, _ := os.ReadFile(files + "/hosts")
			if len(hosts) == 0 || string(hosts) != string(final) {
				t.Fatalf("hosts file at Created:\n%s\nafter Setup:\n%s", hosts, final)
			}
			if s.IP != "" && !strings.Contains(string(hosts), s.IP) {
				t.Fatalf("hosts file at Created lacks the address %s:\n%s", s.IP, hosts)
			}
		})
	}
}
