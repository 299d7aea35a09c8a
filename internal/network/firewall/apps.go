package firewall

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// AppPolicy is what the isolation rules need to know of one App.
type AppPolicy struct {
	// Name is the App's name (a DNS label).
	Name string
	// IPs are the addresses of the App's replicas; they may connect to
	// each other.
	IPs []netip.Addr
	// From are the other addresses that may connect to the replicas: those
	// of the replicas of the Apps its allowFrom selects.
	From []netip.Addr
}

// Apps returns the name of the filter chain that leads forwarded traffic
// for App replicas to their App's chain. FORWARD jumps to it first.
func (c Chains) Apps() string { return c.prefix() + "APPS" }

// App returns the name of the chain of App name: it returns (lets pass)
// the connections name accepts and sends the rest to Refuse(name).
func (c Chains) App(name string) string { return c.prefix() + "A-" + appHash(name) }

// Refuse returns the name of the chain that refuses connections to App
// name. It is made once and kept while the App exists, so its counters
// (the refused packets) survive rebuilds of the App's rules and daemon
// restarts.
func (c Chains) Refuse(name string) string { return c.prefix() + "R-" + appHash(name) }

// prefix is "SKIFF-<instance>-".
func (c Chains) prefix() string { return strings.TrimSuffix(c.Forward, "FWD") }

// appHash names an App in chain names, which iptables caps at 28
// characters: "SKIFF-" + 8 + "-A-" + 10 = 27.
func appHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:5])
}

// appComment is the comment of an App's refusing rules, which
// RefusedCounts reads the App's name from.
func appComment(name string) string { return commentSafe("app " + name) }

// AppRules returns the rules of the Apps chain and of each App's chain for
// apps (pure): a connection to a replica's address goes to its App's
// chain, which lets replies, the App's own replicas and the From
// addresses pass and sends everything else to the App's refusing chain.
// Traffic from the host itself (the ingress, probes) is not forwarded and
// never reaches these chains.
func AppRules(c Chains, apps []AppPolicy) []string {
	apps = sortedApps(apps)
	var r []string
	add := func(format string, args ...any) { r = append(r, fmt.Sprintf(format, args...)) }
	for _, a := range apps {
		for _, ip := range sortedAddrs(a.IPs) {
			add("-A %s -d %s/32 -j %s", c.Apps(), ip, c.App(a.Name))
		}
	}
	for _, a := range apps {
		ch := c.App(a.Name)
		add("-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", ch)
		for _, ip := range sortedAddrs(append(slices.Clone(a.IPs), a.From...)) {
			add("-A %s -s %s/32 -j RETURN", ch, ip)
		}
		add("-A %s -j %s", ch, c.Refuse(a.Name))
	}
	return r
}

// RefuseRules returns the rules of App name's refusing chain: TCP
// connections are reset (a client's connect fails at once), anything else
// gets ICMP port unreachable. Their packet counters count the refusals.
func RefuseRules(c Chains, name string) []string {
	ch, com := c.Refuse(name), appComment(name)
	return []string{
		fmt.Sprintf("-A %s -p tcp -m comment --comment %q -j REJECT --reject-with tcp-reset", ch, com),
		fmt.Sprintf("-A %s -m comment --comment %q -j REJECT --reject-with icmp-port-unreachable", ch, com),
	}
}

// SetApps rebuilds the Apps chain and the chains of apps, makes the
// refusing chains that are missing, removes the chains of Apps not in
// apps, and makes sure FORWARD jumps to the Apps chain once, before it
// jumps to the FWD chain (a restart adds no second jump). It is atomic: one
// iptables-restore call.
func (f *Firewall) SetApps(ctx context.Context, apps []AppPolicy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	saved, err := f.saveRules(ctx)
	if err != nil {
		return err
	}
	c := f.chains
	lines := tableLines{}
	lines.add("filter", ":"+c.Apps()+" - [0:0]")
	if n, ok := appsJumpFirst(saved["filter"], c); !ok {
		for range n {
			lines.add("filter", "-D FORWARD -j "+c.Apps())
		}
		lines.add("filter", "-I FORWARD 1 -j "+c.Apps())
	}
	keep := map[string]bool{c.Apps(): true}
	for _, a := range apps {
		keep[c.App(a.Name)], keep[c.Refuse(a.Name)] = true, true
		lines.add("filter", ":"+c.App(a.Name)+" - [0:0]")
		if !saved.hasChain("filter", c.Refuse(a.Name)) {
			lines.add("filter", ":"+c.Refuse(a.Name)+" - [0:0]")
			lines.add("filter", RefuseRules(c, a.Name)...)
		}
	}
	lines.add("filter", AppRules(c, apps)...)
	lines.add("filter", removeChains(saved, c, func(ch string) bool { return !keep[ch] })...)
	return f.apply(ctx, lines)
}

// RefusedCounts returns, per App name, the packets its refusing chain
// has refused since the chain was made.
func (f *Firewall) RefusedCounts(ctx context.Context) (map[string]uint64, error) {
	out, err := exec.CommandContext(ctx, f.save, "-c", "-t", "filter").Output()
	if err != nil {
		return nil, errdefs.Unavailable("iptables-save -c -t filter failed: %v", err)
	}
	return parseRefused(f.chains, string(out)), nil
}

// parseRefused sums the packet counters of the refusing chains' rules in
// iptables-save -c output, by the App named in their comment.
func parseRefused(c Chains, saved string) map[string]uint64 {
	counts := map[string]uint64{}
	mark := " -A " + c.prefix() + "R-"
	for _, l := range strings.Split(saved, "\n") {
		if !strings.HasPrefix(l, "[") || !strings.Contains(l, mark) {
			continue
		}
		pkts, _, ok := strings.Cut(strings.TrimPrefix(l, "["), ":")
		_, com, found := strings.Cut(l, `--comment "skiff app `)
		name, _, closed := strings.Cut(com, `"`)
		n, err := strconv.ParseUint(pkts, 10, 64)
		if !ok || !found || !closed || err != nil {
			continue
		}
		counts[name] += n
	}
	return counts
}

// appUninstallLines removes the jumps to the Apps chain and every App
// chain (for Uninstall).
func appUninstallLines(saved savedRules, c Chains, lines tableLines) {
	jump := "-A FORWARD -j " + c.Apps()
	for _, l := range saved["filter"] {
		if l == jump {
			lines.add("filter", "-D FORWARD -j "+c.Apps())
		}
	}
	lines.add("filter", removeChains(saved, c, func(string) bool { return true })...)
}

// removeChains returns the lines that flush, then delete, the instance's
// Apps, App and refusing chains in saved that drop selects: the
// referring chains first.
func removeChains(saved savedRules, c Chains, drop func(chain string) bool) []string {
	var flush, del []string
	for _, kind := range []string{"APPS", "A-", "R-"} {
		for _, l := range saved["filter"] {
			decl, ok := strings.CutPrefix(l, ":")
			if !ok {
				continue
			}
			ch, _, _ := strings.Cut(decl, " ")
			if kind == "APPS" && ch != c.Apps() || kind != "APPS" && !strings.HasPrefix(ch, c.prefix()+kind) || !drop(ch) {
				continue
			}
			flush = append(flush, ":"+ch+" - [0:0]")
			del = append(del, "-X "+ch)
		}
	}
	return append(flush, del...)
}

// appsJumpFirst reports whether FORWARD in a table's saved lines has one
// jump to the Apps chain, before the jump to the instance's FWD chain
// (which accepts traffic within a network); n is how many it has. Jumps
// of other daemons may come between: they match only their own bridges.
func appsJumpFirst(lines []string, c Chains) (n int, ok bool) {
	apps, fwd := "-A FORWARD -j "+c.Apps(), "-A FORWARD -j "+c.Forward
	fwdFirst := false
	for _, l := range lines {
		switch {
		case l == apps:
			n++
		case l == fwd && n == 0:
			fwdFirst = true
		}
	}
	return n, n == 1 && !fwdFirst
}

func sortedApps(apps []AppPolicy) []AppPolicy {
	apps = slices.Clone(apps)
	slices.SortFunc(apps, func(a, b AppPolicy) int { return cmp.Compare(a.Name, b.Name) })
	return apps
}

// sortedAddrs returns the valid addresses of addrs, sorted, each once.
func sortedAddrs(addrs []netip.Addr) []netip.Addr {
	out := slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool { return !a.IsValid() })
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
