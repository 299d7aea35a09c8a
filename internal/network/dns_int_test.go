package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"skiff.dev/skiff/api"
)

// fakeUpstream serves DNS on a random 127.0.0.0/8 address, port 53, as a
// stand-in for the host's resolver: every A query gets 192.0.2.53.
func fakeUpstream(t testing.TB) netip.Addr {
	t.Helper()
	for range 10 {
		ip := netip.AddrFrom4([4]byte{127, 53, byte(time.Now().UnixNano() % 250), byte(1 + time.Now().UnixNano()/7%250)})
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip.String(), "53"))
		if err != nil {
			continue
		}
		srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
			m := new(mdns.Msg)
			m.SetReply(r)
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 53)})
			w.WriteMsg(m)
		})}
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
		return ip
	}
	t.Fatal("no free loopback address for the fake upstream resolver")
	return netip.Addr{}
}

func TestDNSReplicasAndForwarding(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, fakeUpstream(t)))
	var replicas []string
	byName := map[string]string{}
	for i := range 3 {
		id, _ := container(t, "r")
		s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: fmt.Sprintf("shop-%d", i), Aliases: []string{"shop"}})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, s.IP)
		byName[fmt.Sprintf("shop-%d", i)] = s.IP
	}
	slices.Sort(replicas)
	cliID, cliFiles := container(t, "client")
	cli, err := m.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "client", FilesDir: cliFiles})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want []string
	}{
		{"shop", replicas},
		{"shop-1", []string{byName["shop-1"]}},
		{"example.org", []string{"192.0.2.53"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rcode := lookup(t, cli.NetNS, cliFiles, tc.name)
			slices.Sort(got)
			if rcode != 0 || !slices.Equal(got, tc.want) {
				t.Fatalf("%s: %v (rcode %d), want %v", tc.name, got, rcode, tc.want)
			}
		})
	}
	t.Run("replicas come back in varying order", func(t *testing.T) {
		firsts := map[string]bool{}
		for range 30 {
			got, _ := lookup(t, cli.NetNS, cliFiles, "shop")
			firsts[got[0]] = true
		}
		if len(firsts) < 2 {
			t.Fatalf("30 answers always started with %v", firsts)
		}
	})
	t.Run("the network's inspect shows every replica", func(t *testing.T) {
		n, err := m.Inspect(ctx, api.DefaultNetwork)
		if err != nil {
			t.Fatal(err)
		}
		shop := 0
		for _, ep := range n.Containers {
			if slices.Contains(ep.Aliases, "shop") {
				shop++
			}
		}
		if shop != 3 {
			t.Fatalf("%d endpoints with alias shop, want 3: %+v", shop, n.Containers)
		}
	})
}
