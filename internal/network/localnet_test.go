package network

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/network/firewall"
)

// routeLocalnet reads the bridge's route_localnet.
func routeLocalnet(t *testing.T, bridge string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", bridge, "route_localnet"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestLoopbackGuard checks that a bridge routes 127.0.0.1 only while a
// port is published on the host's loopback into its network, and only
// with the rules that drop packets for and from 127.0.0.0/8 arriving on
// it; the rules live as long as the network, also across a restart.
func TestLoopbackGuard(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, abandoned := m, false
	t.Cleanup(func() {
		// Should the test stop early, leave nothing on the host.
		if !abandoned {
			first.RemoveAll(ctx)
		}
	})
	def, err := m.Inspect(ctx, api.DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	other, err := m.Create(ctx, api.NetworkCreateRequest{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	guard := func(bridge string) []string {
		return firewall.RawRules(m.fw.Chains(), []firewall.Network{{Bridge: bridge}})
	}
	mustHaveRules := func(want bool, bridges ...string) {
		t.Helper()
		rules, err := m.fw.Rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bridges {
			for _, r := range guard(b) {
				if slices.Contains(rules, r) != want {
					t.Fatalf("rule %q present: %v, want %v; rules:\n%s", r, !want, want, strings.Join(rules, "\n"))
				}
			}
		}
	}
	mustHaveRules(true, def.Bridge, other.Bridge)
	for _, b := range []string{def.Bridge, other.Bridge} {
		if v := routeLocalnet(t, b); v != "0" {
			t.Fatalf("%s: route_localnet %s with no published port, want 0", b, v)
		}
	}

	plainID, _ := container(t, "plain")
	if _, err := m.Setup(ctx, SetupRequest{ContainerID: plainID, Name: "plain"}); err != nil {
		t.Fatal(err)
	}
	if v := routeLocalnet(t, def.Bridge); v != "0" {
		t.Fatalf("route_localnet %s with a container without ports, want 0", v)
	}
	webID, _ := container(t, "web")
	if _, err := m.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Ports: []api.PortMapping{{ContainerPort: 8080}}}); err != nil {
		t.Fatal(err)
	}
	if v := routeLocalnet(t, def.Bridge); v != "1" {
		t.Fatalf("route_localnet %s with a port on 127.0.0.1, want 1", v)
	}
	if v := routeLocalnet(t, other.Bridge); v != "0" {
		t.Fatalf("route_localnet of a network without ports is %s, want 0", v)
	}

	// A daemon that dies leaves both in place; the next one keeps them.
	abandon(m)
	abandoned = true
	mustHaveRules(true, def.Bridge, other.Bridge)
	m = newManager(t, cfg)
	if err := m.Restore(ctx, map[string]bool{plainID: true, webID: true}); err != nil {
		t.Fatal(err)
	}
	mustHaveRules(true, def.Bridge, other.Bridge)
	if v := routeLocalnet(t, def.Bridge); v != "1" {
		t.Fatalf("after a restart route_localnet is %s, want 1", v)
	}

	if err := m.Teardown(ctx, webID); err != nil {
		t.Fatal(err)
	}
	if v := routeLocalnet(t, def.Bridge); v != "0" {
		t.Fatalf("route_localnet %s after the last port went, want 0", v)
	}
	if err := m.Remove(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	mustHaveRules(false, other.Bridge)
	mustHaveRules(true, def.Bridge)
}
