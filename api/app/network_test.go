package app

import (
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestValidateNetwork(t *testing.T) {
	sel := func(l map[string]string) *api.LabelSelector { return &api.LabelSelector{MatchLabels: l} }
	for _, tc := range []struct {
		name  string
		peers []api.NetworkPeer
		want  []string
	}{
		{"app and selector entries", []api.NetworkPeer{{App: "front"}, {Selector: sel(map[string]string{"team": "web"})}, {Selector: sel(nil)}}, nil},
		{"empty entry", []api.NetworkPeer{{}}, []string{"spec.network.allowFrom[0]: needs app (an App's name) or selector (matchLabels)"}},
		{"both", []api.NetworkPeer{{App: "a", Selector: sel(nil)}}, []string{"spec.network.allowFrom[0]: has both app and selector: write each in an entry of its own"}},
		{"bad app name", []api.NetworkPeer{{App: "Front_1"}}, []string{"spec.network.allowFrom[0].app: must be an App name: a DNS label of at most 57 lowercase letters, digits and '-'"}},
		{"bad label", []api.NetworkPeer{{App: "ok"}, {Selector: sel(map[string]string{"team": "-web"})}},
			[]string{"spec.network.allowFrom[1].selector.matchLabels[team]: value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := validApp()
			a.Spec.Network.AllowFrom = tc.peers
			var got []string
			for _, e := range Validate(a) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestNetworkIsNotRevisioned: allowFrom applies to the App as a whole;
// changing it makes no new revision, and Clone shares none of it.
func TestNetworkIsNotRevisioned(t *testing.T) {
	a := validApp()
	b := Clone(a)
	b.Spec.Network.AllowFrom = []api.NetworkPeer{{Selector: &api.LabelSelector{MatchLabels: map[string]string{"team": "web"}}}}
	c := Clone(b)
	c.Spec.Network.AllowFrom[0].Selector.MatchLabels["team"] = "db"
	if b.Spec.Network.AllowFrom[0].Selector.MatchLabels["team"] != "web" {
		t.Fatal("Clone shares the selector's labels")
	}
	if NeedsNewRevision(a.Spec, b.Spec) {
		t.Fatal("a change of spec.network makes a new revision")
	}
}

func TestLabelSelectorMatches(t *testing.T) {
	s := api.LabelSelector{MatchLabels: map[string]string{"team": "web", "tier": "front"}}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"team": "web", "tier": "front", "x": "y"}, true},
		{map[string]string{"team": "web"}, false},
		{map[string]string{"team": "web", "tier": "back"}, false},
		{nil, false},
	} {
		if got := s.Matches(tc.labels); got != tc.want {
			t.Errorf("%v: got %v", tc.labels, got)
		}
	}
	if !(api.LabelSelector{}).Matches(nil) {
		t.Error("an empty selector must select every object")
	}
}

func TestValidateNetworks(t *testing.T) {
	for _, tc := range []struct {
		name string
		nets []api.AppNetworkAttachment
		want []string
	}{
		{"named with aliases", []api.AppNetworkAttachment{{Name: "shop_default", Aliases: []string{"web", "web.shop"}}, {Name: "back"}}, nil},
		{"no name", []api.AppNetworkAttachment{{}}, []string{"spec.network.networks[0].name: required: the name of a network made with skiff network create"}},
		{"default network", []api.AppNetworkAttachment{{Name: "skiff"}}, []string{"spec.network.networks[0].name: replicas are always on the default network skiff: name only further networks"}},
		{"host", []api.AppNetworkAttachment{{Name: "host"}}, []string{"spec.network.networks[0].name: host is not a network a replica can join: name a bridge network"}},
		{"bad name", []api.AppNetworkAttachment{{Name: "-x"}}, []string{"spec.network.networks[0].name: must be a network name: at most 63 letters, digits, '_', '.' and '-', starting with a letter or digit"}},
		{"twice", []api.AppNetworkAttachment{{Name: "a"}, {Name: "a"}}, []string{"spec.network.networks[1].name: network a is named twice: list each network once"}},
		{"bad alias", []api.AppNetworkAttachment{{Name: "a", Aliases: []string{"ok", "no way"}}}, []string{"spec.network.networks[0].aliases[1]: must be a DNS name: letters, digits, '_', '.' and '-', starting and ending with a letter or digit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := validApp()
			a.Spec.Network.Networks = tc.nets
			var got []string
			for _, e := range Validate(a) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestNetworksAreRevisioned: replicas join their networks when they are
// made, so a change of spec.network.networks makes a new revision, which
// carries the networks; Clone shares none of them.
func TestNetworksAreRevisioned(t *testing.T) {
	a := validApp()
	b := Clone(a)
	b.Spec.Network.Networks = []api.AppNetworkAttachment{{Name: "shop_default", Aliases: []string{"web"}}}
	c := Clone(b)
	c.Spec.Network.Networks[0].Aliases[0] = "api"
	if b.Spec.Network.Networks[0].Aliases[0] != "web" {
		t.Fatal("Clone shares the aliases")
	}
	if !NeedsNewRevision(a.Spec, b.Spec) || !NeedsNewRevision(b.Spec, c.Spec) {
		t.Fatal("a change of spec.network.networks makes no new revision")
	}
	rs := RevisionSpecOf(b.Spec)
	if len(rs.Networks) != 1 || rs.Networks[0].Name != "shop_default" || rs.Networks[0].Aliases[0] != "web" {
		t.Fatalf("revision networks = %+v", rs.Networks)
	}
}
