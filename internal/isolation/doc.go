// Package isolation enforces the isolation between Apps that their
// spec.network.allowFrom asks for, with the firewall's App chains.
//
// Contract:
//   - Policies is a pure function from the Apps and the addresses of
//     their replicas to the firewall's rule set: each App's replicas
//     accept connections from the App's own replicas and from the
//     replicas of the Apps its allowFrom selects (by name or by labels);
//     the firewall refuses the rest. Connections from the host itself
//     (the ingress and the probes) are not forwarded and are not affected.
//   - An Enforcer keeps the rules equal to Policies of the stored Apps and
//     the replicas it was told of. Add, called once a replica's network
//     is up and before its process starts, and Remove, called before its
//     network is torn down (so its address, free again, never carries its
//     App's rights), change the rules before they return; a change of the
//     Apps is applied by the resync loop within Interval. The rules are
//     rebuilt, never appended to: a restart or a repeat changes nothing.
//   - Refused connections are counted by the firewall per App (packets its
//     refusing chain rejected); the Enforcer exports them as the counter
//     skiff_network_refused_total{app} and records a ConnectionRefused
//     warning on the App when its count grows.
//   - Bridged traffic between containers of one network reaches iptables
//     only with the kernel's bridge netfilter (br_netfilter,
//     net.bridge.bridge-nf-call-iptables=1); Start turns it on, loading
//     the module if it must, and fails when it cannot.
package isolation
