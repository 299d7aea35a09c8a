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

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestAppRules(t *testing.T) {
	c := ChainsFor("abc123")
	if n := len(c.App("a-name-of-fifty-seven-characters-is-the-longest-possible")); n > 28 {
		t.Fatalf("App chain name of %d characters: iptables takes 28", n)
	}
	a, b := c.App("a"), c.App("b")
	got := AppRules(c, []AppPolicy{
		{Name: "b", IPs: addrs("10.89.0.9")},
		{Name: "a", IPs: addrs("10.89.0.3", "10.89.0.2"), From: addrs("10.89.0.9", "10.89.0.2", "10.89.0.7")},
		{Name: "z"}, // no replicas: its chain stays, nothing leads to it
	})
	want := []string{
		"-A SKIFF-abc123-APPS -d 10.89.0.2/32 -j " + a,
		"-A SKIFF-abc123-APPS -d 10.89.0.3/32 -j " + a,
		"-A SKIFF-abc123-APPS -d 10.89.0.9/32 -j " + b,
		"-A " + a + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A " + a + " -s 10.89.0.2/32 -j RETURN",
		"-A " + a + " -s 10.89.0.3/32 -j RETURN",
		"-A " + a + " -s 10.89.0.7/32 -j RETURN",
		"-A " + a + " -s 10.89.0.9/32 -j RETURN",
		"-A " + a + " -j " + c.Refuse("a"),
		"-A " + b + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A " + b + " -s 10.89.0.9/32 -j RETURN",
		"-A " + b + " -j " + c.Refuse("b"),
		"-A " + c.App("z") + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A " + c.App("z") + " -j " + c.Refuse("z"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAppsJumpFirst(t *testing.T) {
	c := ChainsFor("abc123")
	apps, fwd, other := "-A FORWARD -j "+c.Apps(), "-A FORWARD -j "+c.Forward, "-A FORWARD -j SKIFF-other-FWD"
	for _, tc := range []struct {
		lines []string
		n     int
		ok    bool
	}{
		{[]string{apps, fwd}, 1, true},
		{[]string{other, apps, other, fwd}, 1, true},
		{[]string{apps}, 1, true},
		{[]string{fwd, apps}, 1, false},
		{[]string{apps, fwd, apps}, 2, false},
		{[]string{fwd}, 0, false},
	} {
		if n, ok := appsJumpFirst(tc.lines, c); n != tc.n || ok != tc.ok {
			t.Errorf("%q: got %d, %v; want %d, %v", tc.lines, n, ok, tc.n, tc.ok)
		}
	}
}

func TestParseRefused(t *testing.T) {
	c := ChainsFor("abc123")
	r := c.Refuse("shop")
	saved := strings.Join([]string{
		"*filter",
		":" + r + " - [0:0]",
		"[3:180] -A " + r + ` -p tcp -m comment --comment "skiff app shop" -j REJECT --reject-with tcp-reset`,
		"[2:100] -A " + r + ` -m comment --comment "skiff app shop" -j REJECT --reject-with icmp-port-unreachable`,
		"[7:420] -A SKIFF-other-R-0123456789 -p tcp -m comment --comment \"skiff app shop\" -j REJECT --reject-with tcp-reset",
		"[9:540] -A SKIFF-abc123-FWD -o skfabc123-0 -j DROP",
		"COMMIT",
	}, "\n")
	got := parseRefused(c, saved)
	if len(got) != 1 || got["shop"] != 5 {
		t.Fatalf("got %v, want shop: 5 (another instance's chain and other chains ignored)", got)
	}
}

// TestSetApps applies App rules for real: FORWARD's first rule is the one
// jump to the Apps chain however often SetApps runs, the rules read back
// as built, an App gone takes its chains along, and Uninstall leaves
// nothing.
func TestSetApps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test changes iptables rules and needs root")
	}
	ctx := context.Background()
	b := make([]byte, 3)
	rand.Read(b)
	inst := "a" + hex.EncodeToString(b)[:5]
	f, err := New(inst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Uninstall(ctx) })
	c := f.Chains()
	apps := []AppPolicy{
		{Name: "a", IPs: addrs("10.199.0.2"), From: addrs("10.199.0.3")},
		{Name: "b", IPs: addrs("10.199.0.3")},
	}
	for range 2 {
		if err := f.Install(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.SetApps(ctx, apps); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := appsJumpFirst(strings.Split(string(out), "\n"), c); !ok {
		t.Fatalf("%d jumps to %s, want 1 before the jump to %s:\n%s", n, c.Apps(), c.Forward, out)
	}
	got, err := f.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := AppRules(c, apps)
	want = append(want, RefuseRules(c, "a")...)
	want = append(want, RefuseRules(c, "b")...)
	var rules []string
	for _, l := range got {
		if strings.Contains(l, c.Apps()) || strings.Contains(l, c.prefix()+"A-") || strings.Contains(l, c.prefix()+"R-") {
			if strings.HasPrefix(l, "-A SKIFF-") {
				rules = append(rules, l)
			}
		}
	}
	slices.Sort(rules)
	slices.Sort(want)
	if !slices.Equal(rules, want) {
		t.Fatalf("iptables-save shows:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	if counts, err := f.RefusedCounts(ctx); err != nil || len(counts) != 2 || counts["a"] != 0 {
		t.Fatalf("refused counts %v, %v: want a and b at 0", counts, err)
	}
	// b is deleted: its chains go.
	if err := f.SetApps(ctx, apps[:1]); err != nil {
		t.Fatal(err)
	}
	got, _ = f.Rules(ctx)
	if s := strings.Join(got, "\n"); strings.Contains(s, c.App("b")) || strings.Contains(s, c.Refuse("b")) {
		t.Fatalf("chains of a removed App left:\n%s", s)
	}
	if err := f.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("iptables-save").Output()
	if n := strings.Count(string(out), "SKIFF-"+inst); n != 0 {
		t.Fatalf("%d lines of SKIFF-%s left after Uninstall:\n%s", n, inst, out)
	}
}
