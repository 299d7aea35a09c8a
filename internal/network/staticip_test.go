package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestRequestedAddresses: a container asks for its address on its first
// network and on a further one, gets exactly those (in its settings and
// on its interfaces), is reachable there, and holds them: another
// container asking for one is refused, naming the holder, until the
// first is torn down.
func TestRequestedAddresses(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, fakeUpstream(t)))
	var subnets []netip.Prefix
	for _, name := range []string{"front", "back"} {
		n, err := m.Create(ctx, api.NetworkCreateRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, netip.MustParsePrefix(n.Subnet))
	}
	at := func(p netip.Prefix, host byte) string {
		a := p.Addr().As4()
		a[3] = host
		return netip.AddrFrom4(a).String()
	}
	wantFront, wantBack := at(subnets[0], 77), at(subnets[1], 200)
	id, files := container(t, "fixed")
	s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "fixed", Network: "front", IP: wantFront, FilesDir: files,
		Extra: []api.NetworkAttachment{{Network: "back", IP: wantBack}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.IP != wantFront || len(s.Networks) != 2 || s.Networks[1].IP != wantBack {
		t.Fatalf("settings %s %+v, want %s then %s", s.IP, s.Networks, wantFront, wantBack)
	}
	st := inspectNS(t, s.NetNS)
	if !slices.Contains(st.Up["eth0"], wantFront+"/24") || !slices.Contains(st.Up["eth1"], wantBack+"/24") {
		t.Fatalf("interfaces %v, want %s on eth0 and %s on eth1", st.Up, wantFront, wantBack)
	}
	echoServer(t, s.NetNS, net.JoinHostPort(wantFront, "8080"), "fixed")
	other, otherFiles := container(t, "other")
	o, err := m.Setup(ctx, SetupRequest{ContainerID: other, Name: "other", Network: "front", FilesDir: otherFiles})
	if err != nil {
		t.Fatal(err)
	}
	if o.IP == wantFront {
		t.Fatalf("the next free address is the one fixed holds: %s", o.IP)
	}
	mustAsk(t, o.NetNS, net.JoinHostPort(wantFront, "8080"), "fixed")
	ips, _ := lookup(t, o.NetNS, otherFiles, "fixed")
	if !slices.Equal(ips, []string{wantFront}) {
		t.Fatalf("fixed resolves to %v, want %s", ips, wantFront)
	}

	third, thirdFiles := container(t, "third")
	for _, req := range []SetupRequest{
		{ContainerID: third, Name: "third", Network: "front", IP: wantFront, FilesDir: thirdFiles},
		{ContainerID: third, Name: "third", Network: "front", FilesDir: thirdFiles, Extra: []api.NetworkAttachment{{Network: "back", IP: wantBack}}},
	} {
		before := countObjects(t, m)
		_, err := m.Setup(ctx, req)
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "in use by container fixed") {
			t.Fatalf("a held address: %v, want a conflict naming fixed", err)
		}
		if after := countObjects(t, m); after != before {
			t.Fatalf("a refused set-up left %+v, had %+v", after, before)
		}
	}
	if err := m.Check(ctx, "front", wantFront, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("check of a held address: %v, want a conflict", err)
	}
	if err := m.CheckAttachments(ctx, "front", []api.NetworkAttachment{{Network: "back", IP: wantBack}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("check of a held further address: %v, want a conflict", err)
	}
	if err := m.Teardown(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx, "front", wantFront, nil); err != nil {
		t.Fatalf("check once the holder is gone: %v", err)
	}
	s3, err := m.Setup(ctx, SetupRequest{ContainerID: third, Name: "third", Network: "front", IP: wantFront, FilesDir: thirdFiles})
	if err != nil {
		t.Fatal(err)
	}
	if s3.IP != wantFront {
		t.Fatalf("third got %s, want %s", s3.IP, wantFront)
	}
	t.Run("connect with an address", func(t *testing.T) {
		s, err := m.Connect(ctx, third, api.NetworkAttachment{Network: "back", IP: wantBack})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Networks) != 2 || s.Networks[1].IP != wantBack {
			t.Fatalf("after connect: %+v, want %s on back", s.Networks, wantBack)
		}
	})
}
