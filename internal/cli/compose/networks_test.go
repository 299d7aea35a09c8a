package compose

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequestNetworks checks that a service on several networks
// joins the first by priority then name, and the others as further
// networks, each with the service name and that network's aliases, and
// that this is not reported as unsupported.
func TestCreateRequestNetworks(t *testing.T) {
	p, err := Load(context.Background(), LoadOptions{WorkDir: "testdata/config/networks"})
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	if got := networkSubnet(p, "back"); got != "172.28.0.0/16" {
		t.Errorf("subnet of back: %q", got)
	}
	if got := networkSubnet(p, "front"); got != "" {
		t.Errorf("subnet of front: %q, want the daemon's choice", got)
	}
	tests := []struct {
		service string
		network string
		aliases []string
		extra   []api.NetworkAttachment
	}{
		// back comes first by name, but it is internal: front gives the
		// default route, so it is the first network.
		{"api", "networks_front", []string{"api", "backend", "api.internal"}, []api.NetworkAttachment{{Network: "networks_back", Aliases: []string{"api", "api-back"}, IP: "172.28.5.10"}}},
		{"worker", "company-shared", []string{"worker"}, []api.NetworkAttachment{{Network: "networks_back", Aliases: []string{"worker"}}}},
		{"proxy", "networks_front", []string{"proxy"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			req, err := CreateRequest(p, p.Services[tc.service], 1)
			if err != nil {
				t.Fatal(err)
			}
			c := req.Config
			if c.Network != tc.network || !reflect.DeepEqual(c.NetworkAliases, tc.aliases) || !reflect.DeepEqual(c.ExtraNetworks, tc.extra) {
				t.Fatalf("network %q aliases %v extra %+v, want %q %v %+v", c.Network, c.NetworkAliases, c.ExtraNetworks, tc.network, tc.aliases, tc.extra)
			}
		})
	}
}

// TestNetworkIssues: what a project's network asks for and skiff does
// not make is named, key by key.
func TestNetworkIssues(t *testing.T) {
	p, err := Load(context.Background(), loadInline(t, `
services:
  a:
    image: x
    networks:
      n1:
        ipv4_address: 10.30.0.5
        mac_address: 02:42:ac:11:00:02
networks:
  n1:
    driver: overlay
    driver_opts: {com.docker.network.bridge.name: br0}
    enable_ipv6: true
    ipam:
      driver: dhcp
      config:
        - subnet: 10.30.0.0/24
          gateway: 10.30.0.254
          ip_range: 10.30.0.128/25
        - subnet: fd00::/64
  n2:
    ipam:
      config:
        - subnet: not-a-subnet
  ext:
    external: true
    driver: overlay
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range Unsupported(p) {
		got = append(got, i.String())
	}
	want := []string{
		"a: networks.n1 (only aliases, ipv4_address and priorities are supported)",
		"networks.n1.driver (skiff networks are bridges on this machine, not overlay)",
		"networks.n1.driver_opts",
		"networks.n1.enable_ipv6 (skiff networks are IPv4 only)",
		"networks.n1.ipam.driver (skiff leases the addresses itself)",
		"networks.n1.ipam.config.subnet (the gateway of a skiff network is the first address of its subnet, 10.30.0.1, not 10.30.0.254)",
		"networks.n1.ipam.config.ip_range (addresses are leased from the whole subnet)",
		"networks.n1.ipam.config (a skiff network has one subnet: the first is used)",
		`networks.n2.ipam.config.subnet ("not-a-subnet" is not an IPv4 subnet (CIDR, such as 172.28.0.0/16))`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := networkSubnet(p, "n2"); s != "" {
		t.Fatalf("an invalid subnet is passed on: %q", s)
	}
}
