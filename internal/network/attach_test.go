package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestSeveralNetworks: a container on two networks reaches a service on
// each by name (and by each network's alias); a container only on the
// first reaches neither the second network's service nor its name.
func TestSeveralNetworks(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, fakeUpstream(t)))
	for _, name := range []string{"front", "back"} {
		if _, err := m.Create(ctx, api.NetworkCreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	setup := func(name, network string, aliases []string, extra ...api.NetworkAttachment) (*api.NetworkSettings, string) {
		t.Helper()
		id, files := container(t, name)
		s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: name, Network: network, Aliases: aliases, FilesDir: files, Extra: extra})
		if err != nil {
			t.Fatalf("set up %s: %v", name, err)
		}
		return s, files
	}
	web, _ := setup("web", "front", []string{"www"})
	db, dbFiles := setup("db", "back", []string{"database"})
	echoServer(t, web.NetNS, net.JoinHostPort(web.IP, "8080"), "web")
	echoServer(t, db.NetNS, net.JoinHostPort(db.IP, "5432"), "db")

	app, appFiles := setup("app", "front", []string{"app-front"}, api.NetworkAttachment{Network: "back", Aliases: []string{"app-back"}})
	if len(app.Networks) != 2 || app.Networks[0].Network != "front" || app.Networks[1].Network != "back" || app.Networks[1].Interface != "eth1" {
		t.Fatalf("settings list %+v, want front on eth0 then back on eth1", app.Networks)
	}
	lone, loneFiles := setup("lone", "front", nil)

	t.Run("both networks by name from the container on both", func(t *testing.T) {
		for _, c := range []struct{ name, port, want string }{{"web", "8080", "web"}, {"www", "8080", "web"}, {"db", "5432", "db"}, {"database", "5432", "db"}} {
			ips, rcode := lookup(t, app.NetNS, appFiles, c.name)
			if rcode != 0 || len(ips) != 1 {
				t.Fatalf("lookup %s: %v (rcode %d)", c.name, ips, rcode)
			}
			mustAsk(t, app.NetNS, net.JoinHostPort(ips[0], c.port), c.want)
		}
	})
	t.Run("aliases per network", func(t *testing.T) {
		for _, c := range []struct {
			files, netns, name, want string
		}{
			{dbFiles, db.NetNS, "app-back", app.Networks[1].IP},
			{dbFiles, db.NetNS, "app-front", ""},
			{loneFiles, lone.NetNS, "app-front", app.IP},
			{loneFiles, lone.NetNS, "app-back", ""},
		} {
			ips, _ := lookup(t, c.netns, c.files, c.name)
			if c.want == "" && len(ips) > 0 && !slices.Contains(ips, "192.0.2.53") || c.want != "" && !slices.Equal(ips, []string{c.want}) {
				t.Fatalf("%s resolves to %v from %s, want %q", c.name, ips, c.netns, c.want)
			}
		}
	})
	t.Run("a container on the first network only", func(t *testing.T) {
		ips, _ := lookup(t, lone.NetNS, loneFiles, "db")
		if slices.Contains(ips, db.IP) {
			t.Fatalf("db resolves to its address %s from a container not on its network", db.IP)
		}
		mustNotReach(t, lone.NetNS, net.JoinHostPort(db.IP, "5432"))
		mustAsk(t, lone.NetNS, net.JoinHostPort(web.IP, "8080"), "web")
	})
	t.Run("connect and disconnect a running container", func(t *testing.T) {
		id := strings.TrimPrefix(lone.NetNS, m.netnsDir+"/")
		s, err := m.Connect(ctx, id, api.NetworkAttachment{Network: "back", Aliases: []string{"lone-back"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Networks) != 2 || s.Networks[1].Network != "back" {
			t.Fatalf("after connect: %+v", s.Networks)
		}
		ips, _ := lookup(t, lone.NetNS, loneFiles, "db")
		if !slices.Equal(ips, []string{db.IP}) {
			t.Fatalf("after connect, db resolves to %v, want %s", ips, db.IP)
		}
		mustAsk(t, lone.NetNS, net.JoinHostPort(db.IP, "5432"), "db")
		if _, err := m.Connect(ctx, id, api.NetworkAttachment{Network: "back"}); !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("second connect: %v, want a conflict", err)
		}
		if _, err := m.Disconnect(ctx, id, "front"); !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("disconnect of the first network: %v, want invalid", err)
		}
		s, err = m.Disconnect(ctx, id, "back")
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Networks) != 1 {
			t.Fatalf("after disconnect: %+v", s.Networks)
		}
		mustNotReach(t, lone.NetNS, net.JoinHostPort(db.IP, "5432"))
		if ips, _ := lookup(t, lone.NetNS, loneFiles, "db"); slices.Contains(ips, db.IP) {
			t.Fatalf("after disconnect, db still resolves to %v", ips)
		}
		if _, err := m.Disconnect(ctx, id, "back"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("second disconnect: %v, want not found", err)
		}
	})
	t.Run("teardown removes every attachment", func(t *testing.T) {
		id := strings.TrimPrefix(app.NetNS, m.netnsDir+"/")
		before := countObjects(t, m)
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
		after := countObjects(t, m)
		if before.Leases-after.Leases != 2 || before.Veths-after.Veths != 2 || before.NetNS-after.NetNS != 1 {
			t.Fatalf("teardown of a container on two networks: %+v → %+v, want 2 leases, 2 veths and 1 namespace fewer", before, after)
		}
	})
}

func TestSeveralNetworksBadInput(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	if _, err := m.Create(ctx, api.NetworkCreateRequest{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		network string
		extra   []api.NetworkAttachment
		want    error
		msg     string
	}{
		{"none cannot join", api.NetworkNone, []api.NetworkAttachment{{Network: "other"}}, errdefs.ErrInvalid, "cannot join other networks"},
		{"host as extra", "", []api.NetworkAttachment{{Network: api.NetworkHost}}, errdefs.ErrInvalid, "only network"},
		{"twice", "other", []api.NetworkAttachment{{Network: "other"}}, errdefs.ErrInvalid, "named twice"},
		{"bad alias", "", []api.NetworkAttachment{{Network: "other", Aliases: []string{"-x"}}}, errdefs.ErrInvalid, "invalid network alias"},
		{"unknown", "", []api.NetworkAttachment{{Network: "nope"}}, errdefs.ErrNotFound, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.CheckAttachments(ctx, tc.network, tc.extra)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("check: %v, want %v with %q", err, tc.want, tc.msg)
			}
			id, _ := container(t, "x")
			before := countObjects(t, m)
			_, err = m.Setup(ctx, SetupRequest{ContainerID: id, Name: "x", Network: tc.network, Extra: tc.extra})
			if !errors.Is(err, tc.want) {
				t.Fatalf("setup: %v, want %v", err, tc.want)
			}
			if after := countObjects(t, m); after != before {
				t.Fatalf("a refused setup left objects: %+v → %+v", before, after)
			}
		})
	}
}

// TestSeveralNetworksSurviveRestart: a daemon restart keeps a running
// container's further networks (veth, lease, DNS names on each network
// and across them), and tears down those of a container that is gone.
func TestSeveralNetworksSurviveRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, netip.Addr{})
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Create(ctx, api.NetworkCreateRequest{Name: "back"}); err != nil {
		t.Fatal(err)
	}
	dbID, _ := container(t, "db")
	db, err := m1.Setup(ctx, SetupRequest{ContainerID: dbID, Name: "db", Network: "back"})
	if err != nil {
		t.Fatal(err)
	}
	appID, appFiles := container(t, "app")
	app, err := m1.Setup(ctx, SetupRequest{ContainerID: appID, Name: "app", FilesDir: appFiles, Extra: []api.NetworkAttachment{{Network: "back"}}})
	if err != nil {
		t.Fatal(err)
	}
	goneID, _ := container(t, "gone")
	if _, err := m1.Setup(ctx, SetupRequest{ContainerID: goneID, Name: "gone", Extra: []api.NetworkAttachment{{Network: "back"}}}); err != nil {
		t.Fatal(err)
	}
	echoServer(t, db.NetNS, net.JoinHostPort(db.IP, "5432"), "db")
	abandon(m1)

	m2 := newManager(t, cfg)
	if err := m2.Restore(ctx, map[string]bool{dbID: true, appID: true}); err != nil {
		t.Fatal(err)
	}
	if ips, _ := lookup(t, app.NetNS, appFiles, "db"); !slices.Equal(ips, []string{db.IP}) {
		t.Fatalf("after restart, db resolves to %v from app, want %s", ips, db.IP)
	}
	mustAsk(t, app.NetNS, net.JoinHostPort(db.IP, "5432"), "db")
	if c := countObjects(t, m2); c.Leases != 3 || c.Veths != 3 {
		t.Fatalf("after restore: %+v, want 3 leases and veths (db, app twice)", c)
	}
}

// TestSeveralNetworksInternalFirst: a container whose first network is
// internal and which also joins a network with a way out gets its
// default route from that one and resolves outside names through it; a
// container on the internal network only does neither.
func TestSeveralNetworksInternalFirst(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, fakeUpstream(t)))
	if _, err := m.Create(ctx, api.NetworkCreateRequest{Name: "private", Internal: true}); err != nil {
		t.Fatal(err)
	}
	id, files := container(t, "both")
	both, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "both", Network: "private", FilesDir: files, Extra: []api.NetworkAttachment{{Network: api.DefaultNetwork}}})
	if err != nil {
		t.Fatal(err)
	}
	if ips, rcode := lookup(t, both.NetNS, files, "example.org"); rcode != 0 || !slices.Equal(ips, []string{"192.0.2.53"}) {
		t.Fatalf("example.org from a container on private and the default network: %v (rcode %d)", ips, rcode)
	}
	var gw string
	if err := inNS(both.NetNS, func() error {
		routes, err := netlinkDump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_V4) })
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				gw = r.Gw.String()
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if gw != both.Networks[1].Gateway {
		t.Fatalf("default route via %q, want the default network's gateway %s", gw, both.Networks[1].Gateway)
	}
	loneID, loneFiles := container(t, "lone")
	lone, err := m.Setup(ctx, SetupRequest{ContainerID: loneID, Name: "lone", Network: "private", FilesDir: loneFiles})
	if err != nil {
		t.Fatal(err)
	}
	if ips, rcode := lookup(t, lone.NetNS, loneFiles, "example.org"); rcode == 0 || len(ips) > 0 {
		t.Fatalf("example.org from a container on the internal network only: %v (rcode %d), want a refusal", ips, rcode)
	}
}
