// Package firewall keeps the iptables rules of one skiff daemon.
//
// Contract: every rule skiff adds lives in chains of its own, named
// with the daemon's instance (SKIFF-<instance>-RAW in the raw table, -FWD
// and -IN in the filter table, -POST and -DNAT in the nat table), reached
// by one jump each from the built-in chains. The content of those chains is a pure function of
// the daemon's networks and published ports (NetworkRules, PortRules): a
// change rebuilds the affected chains atomically in one iptables-restore
// call, so the rules on the host never drift from the state and nothing is
// left behind when a network or container goes away. Uninstall removes the
// jumps and the chains.
//
// Per network (bridge br, subnet S, gateway G):
//   - raw RAW (PREROUTING, before connection tracking): packets arriving
//     on br with a destination or source in 127.0.0.0/8 are dropped. The
//     network package sets route_localnet on br (which DNAT from
//     127.0.0.1 needs) only once SetNetworks has put this guard in place:
//     without it a container that writes its own frames reaches the
//     host's loopback services (the class of CVE-2020-8558). Kubernetes
//     closed it with a filter-table rule in INPUT (drop 127.0.0.0/8 from
//     ! 127.0.0.0/8 unless conntrack says RELATED, ESTABLISHED or DNAT);
//     matching the bridge in raw needs no conntrack state.
//   - filter FWD: replies and published-port (DNAT) traffic into br are
//     accepted; br to br is accepted; br to any other skiff bridge
//     (skf+) is dropped; anything else into br is dropped; br out of the
//     host is accepted, or dropped when the network is internal.
//   - filter IN: DNS to G:53 is accepted; an internal network may send
//     the host nothing else (replies to the host's own connections aside).
//   - nat POST: S leaving through another interface is masqueraded
//     (unless internal); connections DNAT'ed from 127.0.0.0/8 or from S
//     itself (hairpin) are masqueraded into br.
//
// Per published port: one DNAT rule in the nat DNAT chain, reached from
// PREROUTING and OUTPUT for local destination addresses, so the port
// answers from other hosts, from the host itself (127.0.0.1 too) and from
// containers.
//
// Per App (apps.go, the isolation between Apps): FORWARD jumps, before
// it jumps to FWD, to the filter chain SKIFF-<instance>-APPS, which sends traffic for
// each replica's address to its App's chain SKIFF-<instance>-A-<hash>;
// that lets replies, the App's replicas and the allowed addresses
// (AppPolicy.From) return, and sends the rest to the App's refusing chain
// SKIFF-<instance>-R-<hash>, whose REJECT rules count the refusals.
// SetApps rebuilds APPS and the A- chains from the policies (AppRules),
// makes R- chains only when missing (so their counters last as long as the
// App) and removes the chains of Apps that are gone.
//
// The iptables binaries run are the ones on PATH (iptables-restore and
// iptables-save; on Debian the nf_tables backend).
package firewall
