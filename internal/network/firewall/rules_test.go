package firewall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var (
	def = Network{Bridge: "skfabc123-0", Subnet: netip.MustParsePrefix("10.89.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1")}
	prv = Network{Bridge: "skfabc123-1", Subnet: netip.MustParsePrefix("10.89.1.0/24"), Gateway: netip.MustParseAddr("10.89.1.1"), Internal: true}
)

func TestRules(t *testing.T) {
	c := ChainsFor("abc123")
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"filter, no networks", FilterRules(c, nil), nil},
		{"raw", RawRules(c, []Network{prv, def}), []string{
			"-A SKIFF-abc123-RAW -d 127.0.0.0/8 -i skfabc123-0 -j DROP",
			"-A SKIFF-abc123-RAW -s 127.0.0.0/8 -i skfabc123-0 -j DROP",
			"-A SKIFF-abc123-RAW -d 127.0.0.0/8 -i skfabc123-1 -j DROP",
			"-A SKIFF-abc123-RAW -s 127.0.0.0/8 -i skfabc123-1 -j DROP",
		}},
		{"filter", FilterRules(c, []Network{prv, def}), []string{
			"-A SKIFF-abc123-FWD -o skfabc123-0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A SKIFF-abc123-FWD -o skfabc123-1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A SKIFF-abc123-FWD -o skfabc123-0 -m conntrack --ctstate DNAT -j ACCEPT",
			"-A SKIFF-abc123-FWD -o skfabc123-1 -m conntrack --ctstate DNAT -j ACCEPT",
			"-A SKIFF-abc123-FWD -i skfabc123-0 -o skfabc123-0 -j ACCEPT",
			"-A SKIFF-abc123-FWD -i skfabc123-0 -o skf+ -j DROP",
			"-A SKIFF-abc123-FWD -o skfabc123-0 -j DROP",
			"-A SKIFF-abc123-FWD -i skfabc123-0 -j ACCEPT",
			"-A SKIFF-abc123-FWD -i skfabc123-1 -o skfabc123-1 -j ACCEPT",
			"-A SKIFF-abc123-FWD -i skfabc123-1 -o skf+ -j DROP",
			"-A SKIFF-abc123-FWD -o skfabc123-1 -j DROP",
			"-A SKIFF-abc123-FWD -i skfabc123-1 -j DROP",
			"-A SKIFF-abc123-IN -d 10.89.0.1/32 -i skfabc123-0 -p udp -m udp --dport 53 -j ACCEPT",
			"-A SKIFF-abc123-IN -d 10.89.0.1/32 -i skfabc123-0 -p tcp -m tcp --dport 53 -j ACCEPT",
			"-A SKIFF-abc123-IN -d 10.89.1.1/32 -i skfabc123-1 -p udp -m udp --dport 53 -j ACCEPT",
			"-A SKIFF-abc123-IN -d 10.89.1.1/32 -i skfabc123-1 -p tcp -m tcp --dport 53 -j ACCEPT",
			"-A SKIFF-abc123-IN -i skfabc123-1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A SKIFF-abc123-IN -i skfabc123-1 -j DROP",
		}},
		{"nat", NATRules(c, []Network{def, prv}), []string{
			"-A SKIFF-abc123-POST -s 10.89.0.0/24 ! -o skfabc123-0 -j MASQUERADE",
			"-A SKIFF-abc123-POST -s 127.0.0.0/8 -o skfabc123-0 -j MASQUERADE",
			"-A SKIFF-abc123-POST -s 10.89.0.0/24 -o skfabc123-0 -m conntrack --ctstate DNAT -j MASQUERADE",
			"-A SKIFF-abc123-POST -s 127.0.0.0/8 -o skfabc123-1 -j MASQUERADE",
			"-A SKIFF-abc123-POST -s 10.89.1.0/24 -o skfabc123-1 -m conntrack --ctstate DNAT -j MASQUERADE",
		}},
		{"ports", PortRules(c, []Port{
			{Owner: "web 0123456789ab", Proto: "udp", HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 53, IP: netip.MustParseAddr("10.89.0.2"), Port: 5353},
			{Owner: "web \"x\";$(rm)", Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, IP: netip.MustParseAddr("10.89.0.2"), Port: 80},
			{Owner: "api", Proto: "tcp", HostPort: 80, IP: netip.MustParseAddr("10.89.0.3"), Port: 80},
		}), []string{
			`-A SKIFF-abc123-DNAT -p tcp -m tcp --dport 80 -m comment --comment "skiff api" -j DNAT --to-destination 10.89.0.3:80`,
			`-A SKIFF-abc123-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment "skiff web _x____rm_" -j DNAT --to-destination 10.89.0.2:80`,
			`-A SKIFF-abc123-DNAT -p udp -m udp --dport 53 -m comment --comment "skiff web 0123456789ab" -j DNAT --to-destination 10.89.0.2:5353`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(tc.got, tc.want) {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(tc.got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestFirewall applies rules for real: iptables-save must print them as
// built (so a rebuild compares equal), and Uninstall must leave nothing.
func TestFirewall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test changes iptables rules and needs root")
	}
	ctx := context.Background()
	b := make([]byte, 3)
	rand.Read(b)
	inst := "f" + hex.EncodeToString(b)[:5]
	f, err := New(inst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Uninstall(ctx) })
	c := f.Chains()
	nets := []Network{
		{Bridge: "skf" + inst + "-0", Subnet: netip.MustParsePrefix("10.199.0.0/24"), Gateway: netip.MustParseAddr("10.199.0.1")},
		{Bridge: "skf" + inst + "-1", Subnet: netip.MustParsePrefix("10.199.1.0/24"), Gateway: netip.MustParseAddr("10.199.1.1"), Internal: true},
	}
	ports := []Port{{Owner: "web", Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 18080, IP: netip.MustParseAddr("10.199.0.2"), Port: 80}}
	for range 2 { // twice: every step is idempotent
		if err := f.Install(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.SetNetworks(ctx, nets); err != nil {
			t.Fatal(err)
		}
		if err := f.SetPorts(ctx, ports); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, j := range jumps(c) {
		want = append(want, j.rule())
	}
	want = append(want, RawRules(c, nets)...)
	want = append(want, FilterRules(c, nets)...)
	want = append(want, NATRules(c, nets)...)
	want = append(want, PortRules(c, ports)...)
	var rules []string
	for _, l := range got {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	slices.Sort(rules)
	slices.Sort(want)
	if !slices.Equal(rules, want) {
		t.Fatalf("iptables-save shows:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	// Rebuilding with fewer networks and ports drops their rules.
	if err := f.SetNetworks(ctx, nets[:1]); err != nil {
		t.Fatal(err)
	}
	if err := f.SetPorts(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = f.Rules(ctx)
	if s := strings.Join(got, "\n"); strings.Contains(s, nets[1].Bridge) || strings.Contains(s, "DNAT --to") {
		t.Fatalf("rules of removed network or port left:\n%s", s)
	}
	if err := f.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "SKIFF-"+inst); n != 0 {
		t.Fatalf("%d lines of SKIFF-%s left after Uninstall", n, inst)
	}
}
