// Package network gives containers their networks: bridge networks set
// up in-process over netlink, CNI networks run through the CNI plugins,
// published ports, a DNS server per network, and firewall isolation.
//
// Contract:
//   - A Manager serves one daemon. Everything it makes on the host is
//     named with Config.Instance (bridges skf<instance>-<n>, host veths
//     sv<instance><hash>, iptables chains SKIFF-<instance>-*), so several
//     daemons share a host without clashing; subnets picked from Pool skip
//     the other networks' and every host route.
//   - New makes sure the default network (api.DefaultNetwork) and the host
//     objects of every network exist. Restore, called once after New with
//     the containers still running, keeps their attachments (DNS names,
//     port reservations, rules) and tears down everything else, also what
//     a crash left half done. Close stops the DNS servers and leaves the
//     host objects of running containers in place, removing the rest (New
//     makes them again). A daemon starting also removes the host objects
//     of dead daemons whose state directory is gone (see instance.go).
//   - Setup gives a container its network namespace at NetNSPath: a
//     bridge network's address (leased in the state database: never
//     handed out twice, also across a crash), loopback up, a default
//     route (none on internal networks), ports published with DNAT, its
//     name and aliases in the network's DNS, and the files hosts,
//     resolv.conf and hostname. On error nothing of it is left. Teardown
//     undoes all of it and is idempotent.
//   - A container may join further bridge networks (SetupRequest.Extra,
//     or Connect while it runs; Disconnect takes it off): one veth, lease
//     and set of DNS names per network (eth1, eth2, ... inside), the first
//     network keeping the default route (unless it is internal), the
//     published ports and the files. The DNS server of the container's
//     first network also answers it the names of its other networks.
//     CNI networks, "none" and "host" can only be a first network.
//   - Network "none" is a namespace with loopback only; "host" makes
//     nothing (the container shares the host's namespace) but the files.
//   - Ports are published on 127.0.0.1 unless the mapping names another
//     host address (0.0.0.0 for all); see api.DefaultHostIP. A port is held
//     by a bound socket while published, so a port in use is refused and
//     nothing else can take it.
//   - No container of a bridge network reaches the host's loopback:
//     packets arriving on a bridge to or from 127.0.0.0/8 are dropped
//     (firewall.RawRules), and a bridge routes 127.0.0.1 (route_localnet,
//     which DNAT from the host's loopback needs) only while a port of its
//     network is published on 127.0.0.1 or every address, and only once
//     that guard is in place. IPv6 is disabled on bridges.
//   - Errors are classified with errdefs: bad input is ErrInvalid, an
//     unknown network ErrNotFound, a name, subnet or port already taken or
//     a network still in use ErrConflict, a failing host facility
//     (netlink, iptables, a CNI plugin) ErrUnavailable.
//
// The subpackages hold the parts: firewall builds and applies the
// iptables rules, dns is the per-network DNS server.
package network
