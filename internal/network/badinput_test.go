package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	// A free subnet: other daemons on the host hold subnets too.
	used, err := m.Create(ctx, api.NetworkCreateRequest{Name: "used"})
	if err != nil {
		t.Fatal(err)
	}
	half := netip.MustParsePrefix(used.Subnet).Addr().As4()
	half[3] = 128
	usedHalf := netip.PrefixFrom(netip.AddrFrom4(half), 25).String()
	webID, _ := container(t, "web")
	web, err := m.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", Network: "used"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	hostRoute := ""
	if routes, err := hostRoutes(""); err == nil {
		for _, r := range routes {
			if r.Dev != "" && !strings.HasPrefix(r.Dev, "skf") && !r.Dst.Addr().IsLoopback() && r.Dst.Bits() >= 8 && r.Dst.Bits() <= 30 {
				hostRoute = r.Dst.Masked().String()
				break
			}
		}
	}
	if hostRoute == "" {
		t.Fatal("the host has no route to test a clash with")
	}
	id, files := container(t, "new")
	setup := func(network string, ports []api.PortMapping, aliases ...string) func() error {
		return func() error {
			_, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "new", Network: network, Ports: ports, Aliases: aliases, FilesDir: files})
			return err
		}
	}
	setupIP := func(network, ip string, extra ...api.NetworkAttachment) func() error {
		return func() error {
			_, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "new", Network: network, IP: ip, Extra: extra, FilesDir: files})
			return err
		}
	}
	create := func(req api.NetworkCreateRequest) func() error {
		return func() error { _, err := m.Create(ctx, req); return err }
	}
	tests := []struct {
		name string
		do   func() error
		cat  error
		msg  string
	}{
		{"overlapping subnet", create(api.NetworkCreateRequest{Name: "n", Subnet: usedHalf}), errdefs.ErrConflict, "overlaps the subnet " + used.Subnet + " of network used"},
		{"subnet of a host route", create(api.NetworkCreateRequest{Name: "n", Subnet: hostRoute}), errdefs.ErrConflict, "overlaps the host route"},
		{"bad CIDR", create(api.NetworkCreateRequest{Name: "n", Subnet: "10.300.0.0/24"}), errdefs.ErrInvalid, "CIDR"},
		{"CIDR without length", create(api.NetworkCreateRequest{Name: "n", Subnet: "10.90.0.0"}), errdefs.ErrInvalid, "CIDR"},
		{"host bits set", create(api.NetworkCreateRequest{Name: "n", Subnet: "10.90.0.5/24"}), errdefs.ErrInvalid, "did you mean 10.90.0.0/24"},
		{"IPv6 subnet", create(api.NetworkCreateRequest{Name: "n", Subnet: "fd00::/64"}), errdefs.ErrInvalid, "IPv4"},
		{"too small", create(api.NetworkCreateRequest{Name: "n", Subnet: "10.90.0.0/31"}), errdefs.ErrInvalid, "/30"},
		{"loopback subnet", create(api.NetworkCreateRequest{Name: "n", Subnet: "127.1.0.0/16"}), errdefs.ErrInvalid, "loopback"},
		{"duplicate name", create(api.NetworkCreateRequest{Name: "used"}), errdefs.ErrConflict, `network "used" already exists`},
		{"duplicate default", create(api.NetworkCreateRequest{Name: api.DefaultNetwork}), errdefs.ErrConflict, "already exists"},
		{"reserved name", create(api.NetworkCreateRequest{Name: "host"}), errdefs.ErrInvalid, "reserved"},
		{"bad name", create(api.NetworkCreateRequest{Name: "a b"}), errdefs.ErrInvalid, "invalid network name"},
		{"empty name", create(api.NetworkCreateRequest{}), errdefs.ErrInvalid, "needs a name"},
		{"bad CNI config", create(api.NetworkCreateRequest{Name: "n", CNIConfig: "{not json"}), errdefs.ErrInvalid, "not a valid configuration list"},
		{"CNI plugin missing", create(api.NetworkCreateRequest{Name: "n", CNIConfig: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}`}), errdefs.ErrInvalid, "no-such-plugin"},
		{"CNI with subnet", create(api.NetworkCreateRequest{Name: "n", Subnet: "10.90.0.0/24", CNIConfig: `{}`}), errdefs.ErrInvalid, "--subnet"},
		{"remove unknown", func() error { return m.Remove(ctx, "nope") }, errdefs.ErrNotFound, `network "nope" not found`},
		{"remove default", func() error { return m.Remove(ctx, api.DefaultNetwork) }, errdefs.ErrConflict, "default network"},
		{"remove in use", func() error { return m.Remove(ctx, "used") }, errdefs.ErrConflict, "in use by 1 container(s) (web)"},
		{"inspect unknown", func() error { _, err := m.Inspect(ctx, "nope"); return err }, errdefs.ErrNotFound, "not found"},
		{"setup on unknown network", setup("nope", nil), errdefs.ErrNotFound, `network "nope" not found`},
		{"port in use", setup("", []api.PortMapping{{ContainerPort: 80, HostPort: busy}}), errdefs.ErrConflict, "already in use"},
		{"port twice", setup("", []api.PortMapping{{ContainerPort: 80, HostPort: 18081}, {ContainerPort: 81, HostPort: 18081}}), errdefs.ErrInvalid, "published twice"},
		{"host IP not of this host", setup("", []api.PortMapping{{ContainerPort: 80, HostIP: "192.0.2.123"}}), errdefs.ErrInvalid, "not an address of this host"},
		{"bad protocol", setup("", []api.PortMapping{{ContainerPort: 80, Protocol: "sctp"}}), errdefs.ErrInvalid, "not tcp or udp"},
		{"container port 0", setup("", []api.PortMapping{{ContainerPort: 0}}), errdefs.ErrInvalid, "container port"},
		{"bad alias", setup("", nil, "bad alias"), errdefs.ErrInvalid, "invalid network alias"},
		{"ports on none", setup(api.NetworkNone, []api.PortMapping{{ContainerPort: 80}}), errdefs.ErrInvalid, "--network none"},
		{"ports on host", setup(api.NetworkHost, []api.PortMapping{{ContainerPort: 80}}), errdefs.ErrInvalid, "--network host"},
		{"alias on none", setup(api.NetworkNone, nil, "x"), errdefs.ErrInvalid, "aliases need a network"},
		{"address in use", setupIP("used", web.IP), errdefs.ErrConflict, "address " + web.IP + " on network used is in use by container web"},
		{"further address in use", setupIP("", "", api.NetworkAttachment{Network: "used", IP: web.IP}), errdefs.ErrConflict, "in use by container web"},
		{"address outside the subnet", setupIP("used", "192.0.2.7"), errdefs.ErrInvalid, "outside network used"},
		{"gateway address", setupIP("used", web.Gateway), errdefs.ErrInvalid, "network used's own"},
		{"malformed address", setupIP("used", "10.1.2"), errdefs.ErrInvalid, `invalid address "10.1.2"`},
		{"IPv6 address", setupIP("used", "fd00::5"), errdefs.ErrInvalid, "IPv4"},
		{"address on none", setupIP(api.NetworkNone, "10.0.0.5"), errdefs.ErrInvalid, "an address needs a network"},
		{"check address in use", func() error { return m.Check(ctx, "used", web.IP, nil) }, errdefs.ErrConflict, "in use by container web"},
		{"check unknown network", func() error { return m.Check(ctx, "nope", "", nil) }, errdefs.ErrNotFound, "not found"},
		{"check bad port", func() error { return m.Check(ctx, "", "", []api.PortMapping{{ContainerPort: 70000}}) }, errdefs.ErrInvalid, "container port"},
	}
	snapshot := func() (hostCounts, []api.Network) {
		nets, err := m.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return countObjects(t, m), nets
	}
	before, beforeNets := snapshot()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.cat) {
				t.Errorf("error %q is not %v", err, tc.cat)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			after, afterNets := snapshot()
			if after != before || !reflect.DeepEqual(afterNets, beforeNets) {
				t.Fatalf("state changed: %+v -> %+v\n%+v\n%+v", before, after, beforeNets, afterNets)
			}
		})
	}
}
