package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Network is what the rules need to know of one bridge network.
type Network struct {
	// Bridge is the host bridge interface.
	Bridge  string
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Internal networks get no outbound traffic and may reach only the
	// DNS server on the host.
	Internal bool
}

// Port is one published port.
type Port struct {
	// Owner names the container, for the rule's comment.
	Owner string
	// Proto is "tcp" or "udp".
	Proto string
	// HostIP is the host address the port answers on; the unspecified
	// address (0.0.0.0) or the zero Addr mean every local address.
	HostIP   netip.Addr
	HostPort int
	// IP and Port are the container's address and port.
	IP   netip.Addr
	Port int
}

// Chains are the names of an instance's chains.
type Chains struct {
	Raw, Forward, Input, Post, DNAT string
}

// ChainsFor returns the chain names of instance.
func ChainsFor(instance string) Chains {
	p := "SKIFF-" + instance + "-"
	return Chains{Raw: p + "RAW", Forward: p + "FWD", Input: p + "IN", Post: p + "POST", DNAT: p + "DNAT"}
}

// tables are the iptables tables skiff uses, in the order they are
// written to iptables-restore.
var tables = []string{"raw", "filter", "nat"}

// chainRef is one of an instance's chains with its table.
type chainRef struct{ table, name string }

// all returns every chain of c with its table.
func (c Chains) all() []chainRef {
	return []chainRef{{"raw", c.Raw}, {"filter", c.Forward}, {"filter", c.Input}, {"nat", c.Post}, {"nat", c.DNAT}}
}

// Loopback is the IPv4 loopback network. No packet that arrives on a
// bridge may carry it as destination or source: route_localnet, which
// DNAT from 127.0.0.1 into a bridge needs, would otherwise let a
// container that writes its own frames reach the host's loopback
// services (CVE-2020-8558).
const Loopback = "127.0.0.0/8"

// BridgeWildcard matches every skiff bridge of every daemon on the host
// (iptables interface wildcard): bridges are named skf<instance>-<n>.
const BridgeWildcard = "skf+"

// jump is a rule in a built-in chain that leads to one of ours.
type jump struct {
	table, chain, match, target string
}

func (j jump) rule() string {
	if j.match == "" {
		return fmt.Sprintf("-A %s -j %s", j.chain, j.target)
	}
	return fmt.Sprintf("-A %s %s -j %s", j.chain, j.match, j.target)
}

// insert is the rule as an insertion at the top of its chain.
func (j jump) insert() string {
	return "-I " + j.chain + " 1" + strings.TrimPrefix(j.rule(), "-A "+j.chain)
}

func jumps(c Chains) []jump {
	return []jump{
		{"raw", "PREROUTING", "", c.Raw},
		{"filter", "FORWARD", "", c.Forward},
		{"filter", "INPUT", "", c.Input},
		{"nat", "POSTROUTING", "", c.Post},
		{"nat", "PREROUTING", "-m addrtype --dst-type LOCAL", c.DNAT},
		{"nat", "OUTPUT", "-m addrtype --dst-type LOCAL", c.DNAT},
	}
}

// FilterRules returns the rules of the filter chains (FWD then IN) for
// nets, in iptables-restore syntax without the -A CHAIN prefix grouping:
// each line is a complete "-A CHAIN ..." rule.
func FilterRules(c Chains, nets []Network) []string {
	nets = sortedNetworks(nets)
	var r []string
	add := func(format string, args ...any) { r = append(r, fmt.Sprintf(format, args...)) }
	// Global rules first: replies and published ports must not be caught
	// by another network's isolation rule.
	if len(nets) > 0 {
		for _, n := range nets {
			add("-A %s -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", c.Forward, n.Bridge)
		}
		for _, n := range nets {
			add("-A %s -o %s -m conntrack --ctstate DNAT -j ACCEPT", c.Forward, n.Bridge)
		}
	}
	for _, n := range nets {
		add("-A %s -i %s -o %s -j ACCEPT", c.Forward, n.Bridge, n.Bridge)
		add("-A %s -i %s -o %s -j DROP", c.Forward, n.Bridge, BridgeWildcard)
		add("-A %s -o %s -j DROP", c.Forward, n.Bridge)
		if n.Internal {
			add("-A %s -i %s -j DROP", c.Forward, n.Bridge)
		} else {
			add("-A %s -i %s -j ACCEPT", c.Forward, n.Bridge)
		}
	}
	for _, n := range nets {
		for _, proto := range []string{"udp", "tcp"} {
			add("-A %s -d %s/32 -i %s -p %s -m %s --dport 53 -j ACCEPT", c.Input, n.Gateway, n.Bridge, proto, proto)
		}
		if n.Internal {
			add("-A %s -i %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", c.Input, n.Bridge)
			add("-A %s -i %s -j DROP", c.Input, n.Bridge)
		}
	}
	return r
}

// RawRules returns the rules of the raw chain for nets: packets that
// arrive on a network's bridge for, or from, the loopback network are
// dropped before connection tracking sees them. Replies to connections
// DNAT'ed from 127.0.0.1 are not caught: they arrive addressed to the
// gateway, and conntrack turns them back into 127.0.0.1 only later.
func RawRules(c Chains, nets []Network) []string {
	nets = sortedNetworks(nets)
	r := make([]string, 0, 2*len(nets))
	for _, n := range nets {
		r = append(r,
			fmt.Sprintf("-A %s -d %s -i %s -j DROP", c.Raw, Loopback, n.Bridge),
			fmt.Sprintf("-A %s -s %s -i %s -j DROP", c.Raw, Loopback, n.Bridge))
	}
	return r
}

// NATRules returns the rules of the nat POST chain for nets.
func NATRules(c Chains, nets []Network) []string {
	nets = sortedNetworks(nets)
	var r []string
	add := func(format string, args ...any) { r = append(r, fmt.Sprintf(format, args...)) }
	for _, n := range nets {
		if !n.Internal {
			add("-A %s -s %s ! -o %s -j MASQUERADE", c.Post, n.Subnet.Masked(), n.Bridge)
		}
		add("-A %s -s 127.0.0.0/8 -o %s -j MASQUERADE", c.Post, n.Bridge)
		add("-A %s -s %s -o %s -m conntrack --ctstate DNAT -j MASQUERADE", c.Post, n.Subnet.Masked(), n.Bridge)
	}
	return r
}

// PortRules returns the rules of the nat DNAT chain for ports.
func PortRules(c Chains, ports []Port) []string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b Port) int {
		if d := strings.Compare(a.Proto, b.Proto); d != 0 {
			return d
		}
		if d := a.HostPort - b.HostPort; d != 0 {
			return d
		}
		return a.HostIP.Compare(b.HostIP)
	})
	r := make([]string, 0, len(ports))
	for _, p := range ports {
		dst := ""
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			dst = " -d " + p.HostIP.String() + "/32"
		}
		r = append(r, fmt.Sprintf("-A %s%s -p %s -m %s --dport %d -m comment --comment %q -j DNAT --to-destination %s",
			c.DNAT, dst, p.Proto, p.Proto, p.HostPort, commentSafe(p.Owner), netip.AddrPortFrom(p.IP, uint16(p.Port))))
	}
	return r
}

// commentSafe keeps a comment to characters iptables-restore takes
// without quoting trouble.
func commentSafe(s string) string {
	b := []byte("skiff " + s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ' ' || c == ':' || c == '/') {
			b[i] = '_'
		}
	}
	if len(b) > 255 {
		b = b[:255]
	}
	return string(b)
}

func sortedNetworks(nets []Network) []Network {
	nets = slices.Clone(nets)
	slices.SortFunc(nets, func(a, b Network) int { return strings.Compare(a.Bridge, b.Bridge) })
	return nets
}
