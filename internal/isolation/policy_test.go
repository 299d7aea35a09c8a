package isolation

import (
	"net/netip"
	"reflect"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/network/firewall"
)

func mkApp(name string, labels map[string]string, from ...api.NetworkPeer) api.App {
	return api.App{Metadata: api.ObjectMeta{Name: name, Labels: labels}, Spec: api.AppSpec{Network: api.AppNetwork{AllowFrom: from}}}
}

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestPolicies(t *testing.T) {
	web := map[string]string{"team": "web"}
	byName := func(n string) api.NetworkPeer { return api.NetworkPeer{App: n} }
	bySel := func(l map[string]string) api.NetworkPeer {
		return api.NetworkPeer{Selector: &api.LabelSelector{MatchLabels: l}}
	}
	reps := []Replica{
		{"a", netip.MustParseAddr("10.89.0.2")}, {"a", netip.MustParseAddr("10.89.0.3")},
		{"b", netip.MustParseAddr("10.89.0.4")},
		{"c", netip.MustParseAddr("10.89.0.5")},
		{"gone", netip.MustParseAddr("10.89.0.6")}, // a deleted App's replica, draining
	}
	for _, tc := range []struct {
		name string
		apps []api.App
		want []firewall.AppPolicy
	}{
		{"nothing allowed", []api.App{mkApp("a", nil), mkApp("b", nil)}, []firewall.AppPolicy{
			{Name: "a", IPs: ips("10.89.0.2", "10.89.0.3")},
			{Name: "b", IPs: ips("10.89.0.4")},
		}},
		{"by name", []api.App{mkApp("b", nil), mkApp("a", nil, byName("b"), byName("gone"), byName("later"))}, []firewall.AppPolicy{
			{Name: "a", IPs: ips("10.89.0.2", "10.89.0.3"), From: ips("10.89.0.4")},
			{Name: "b", IPs: ips("10.89.0.4")},
		}},
		{"by labels, itself included once", []api.App{mkApp("a", web, bySel(web), byName("c")), mkApp("b", web), mkApp("c", nil)}, []firewall.AppPolicy{
			{Name: "a", IPs: ips("10.89.0.2", "10.89.0.3"), From: ips("10.89.0.4", "10.89.0.5")},
			{Name: "b", IPs: ips("10.89.0.4")},
			{Name: "c", IPs: ips("10.89.0.5")},
		}},
		{"empty selector: every App", []api.App{mkApp("a", nil, bySel(nil)), mkApp("b", nil), mkApp("c", web)}, []firewall.AppPolicy{
			{Name: "a", IPs: ips("10.89.0.2", "10.89.0.3"), From: ips("10.89.0.4", "10.89.0.5")},
			{Name: "b", IPs: ips("10.89.0.4")},
			{Name: "c", IPs: ips("10.89.0.5")},
		}},
		{"no replicas yet", []api.App{mkApp("z", nil, byName("a")), mkApp("a", nil)}, []firewall.AppPolicy{
			{Name: "a", IPs: ips("10.89.0.2", "10.89.0.3")},
			{Name: "z", From: ips("10.89.0.2", "10.89.0.3")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Policies(tc.apps, reps); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
