package network

import (
	"net/netip"
	"testing"
)

func TestNextFree(t *testing.T) {
	a := netip.MustParseAddr
	used := func(ips ...string) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, ip := range ips {
			m[a(ip)] = true
		}
		return m
	}
	tests := []struct {
		name   string
		subnet string
		used   map[netip.Addr]bool
		cursor string
		want   string
	}{
		{"first address after the gateway", "10.0.0.0/24", nil, "", "10.0.0.2"},
		{"after the cursor", "10.0.0.0/24", nil, "10.0.0.7", "10.0.0.8"},
		{"skips used", "10.0.0.0/24", used("10.0.0.8", "10.0.0.9"), "10.0.0.7", "10.0.0.10"},
		{"wraps before the broadcast", "10.0.0.0/24", nil, "10.0.0.254", "10.0.0.2"},
		{"wraps past used", "10.0.0.0/24", used("10.0.0.2"), "10.0.0.254", "10.0.0.3"},
		{"cursor outside the subnet", "10.0.0.0/24", nil, "10.1.0.9", "10.0.0.2"},
		{"smallest subnet", "10.0.0.0/30", nil, "", "10.0.0.2"},
		{"smallest subnet full", "10.0.0.0/30", used("10.0.0.2"), "", ""},
		{"full", "10.0.0.0/29", used("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"), "10.0.0.4", ""},
		{"last free one", "10.0.0.0/29", used("10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"), "10.0.0.5", "10.0.0.4"},
		{"large subnet crosses octets", "10.0.0.0/16", nil, "10.0.0.255", "10.0.1.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cursor netip.Addr
			if tc.cursor != "" {
				cursor = a(tc.cursor)
			}
			got, ok := nextFree(netip.MustParsePrefix(tc.subnet), tc.used, cursor)
			if tc.want == "" {
				if ok {
					t.Fatalf("got %s, want none", got)
				}
				return
			}
			if !ok || got != a(tc.want) {
				t.Fatalf("got %s %v, want %s", got, ok, tc.want)
			}
		})
	}
}

func TestFirstFreeSubnet(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		taken []netip.Prefix
		want  string
	}{
		{"empty pool", nil, "10.89.0.0/24"},
		{"skips taken", []netip.Prefix{p("10.89.0.0/24"), p("10.89.1.0/24")}, "10.89.2.0/24"},
		{"skips a larger route", []netip.Prefix{p("10.89.0.0/23")}, "10.89.2.0/24"},
		{"skips a host address", []netip.Prefix{p("10.89.0.77/32")}, "10.89.1.0/24"},
		{"unrelated routes", []netip.Prefix{p("192.168.0.0/16")}, "10.89.0.0/24"},
		{"pool covered", []netip.Prefix{p("10.0.0.0/8")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := firstFreeSubnet(Pool, PoolBits, tc.taken)
			if tc.want == "" {
				if ok {
					t.Fatalf("got %s, want none", got)
				}
				return
			}
			if !ok || got != p(tc.want) {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestGatewayAndBroadcast(t *testing.T) {
	s := netip.MustParsePrefix("10.89.4.0/22")
	if g := gatewayOf(s); g != netip.MustParseAddr("10.89.4.1") {
		t.Errorf("gateway %s", g)
	}
	if b := broadcastOf(s); b != netip.MustParseAddr("10.89.7.255") {
		t.Errorf("broadcast %s", b)
	}
}
