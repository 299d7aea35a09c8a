package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// macFor derives a stable, locally administered MAC from an IPv4 address,
// so a reused address comes back with the same MAC and no neighbour keeps
// a stale ARP entry.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x73, b[0], b[1], b[2], b[3]}
}

// dumpTries bounds the tries of a netlink dump the kernel keeps
// interrupting.
const dumpTries = 50

// netlinkDump runs dump (a netlink list of links, addresses or routes)
// again while the kernel reports it interrupted: the list changed during
// the dump (on a busy host other daemons add and remove interfaces all
// the time) and the results may miss entries. After dumpTries
// interrupted dumps it returns the last results and error.
func netlinkDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpTries {
		if v, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return v, err
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

// ensureBridge makes sure the bridge exists, is up and holds exactly the
// gateway address of subnet; it returns the bridge's index.
func ensureBridge(name string, subnet netip.Prefix, gw netip.Addr, warmName string) (int, error) {
	link, err := netlink.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return 0, errdefs.Unavailable("look up bridge %s: %v", name, err)
	}
	created := false
	if link == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: macFor(gw), TxQLen: -1}}
		if err := netlink.LinkAdd(br); err != nil {
			return 0, errdefs.Unavailable("create bridge %s: %v", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return 0, errdefs.Unavailable("look up bridge %s: %v", name, err)
		}
		created = true
	} else if link.Type() != "bridge" {
		return 0, errdefs.Conflict("interface %s exists and is not a bridge: remove it (ip link del %s)", name, name)
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	addrs, err := netlinkDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return 0, errdefs.Unavailable("list addresses of %s: %v", name, err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == want.IPNet.String() {
			found = true
			continue
		}
		netlink.AddrDel(link, &a)
	}
	if !found {
		if err := netlink.AddrAdd(link, want); err != nil {
			return 0, errdefs.Unavailable("add address %s to bridge %s: %v", want.IPNet, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return 0, errdefs.Unavailable("bring bridge %s up: %v", name, err)
	}
	if created {
		// A new bridge gets its transmit queue only when it first has
		// carrier, and the kernel may delay that first activation by up
		// to a second: the first container's first packets would be
		// dropped. Activate it now, once, with a short-lived port.
		if err := activateBridge(link, warmName); err != nil {
			return 0, err
		}
	}
	// route_localnet is not set here: setLocalnet does it, once the
	// loopback guard of the bridge is in place.
	// Networks are IPv4 only: without an IPv6 address on the bridge, a
	// container cannot reach the host over IPv6 link-local addresses,
	// around the firewall rules (for instance from an internal network).
	if v6 := filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6"); fileExists(v6) {
		if err := writeSysctl(v6, "1"); err != nil {
			return 0, err
		}
	}
	return link.Attrs().Index, nil
}

// activateBridge gives the bridge carrier with a veth port until the
// kernel reports it operational, then removes the port. warmName (at most
// 14 characters) names the veth ends (warmName+"a", warmName+"b").
func activateBridge(br netlink.Link, warmName string) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: warmName + "a", MasterIndex: br.Attrs().Index, Flags: net.FlagUp}, PeerName: warmName + "b"}
	if err := netlink.LinkAdd(v); err != nil {
		return errdefs.Unavailable("activate bridge %s: %v", br.Attrs().Name, err)
	}
	defer netlink.LinkDel(v)
	peer, err := netlink.LinkByName(warmName + "b")
	if err == nil {
		err = netlink.LinkSetUp(peer)
	}
	if err != nil {
		return errdefs.Unavailable("activate bridge %s: %v", br.Attrs().Name, err)
	}
	if !waitOperUp(netlink.LinkByIndex, br.Attrs().Index, 1500*time.Millisecond) {
		// Not fatal: the first packets of the first container may be late.
		return nil
	}
	return nil
}

// waitOperUp polls the link's operational state until the kernel has
// brought it up (carrier seen and transmit queue attached, which the
// kernel does asynchronously after a link comes up), at most for limit.
func waitOperUp(byIndex func(int) (netlink.Link, error), index int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		l, err := byIndex(index)
		if err != nil {
			return false
		}
		if st := l.Attrs().OperState; st == netlink.OperUp || st == netlink.OperUnknown {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// deleteLink deletes an interface by name; a missing one is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// linkExists reports whether an interface named name exists.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// hostRoute is a route of the host, as far as subnet choice cares.
type hostRoute struct {
	Dst netip.Prefix
	Dev string
}

func (r hostRoute) String() string {
	if r.Dev == "" {
		return r.Dst.String()
	}
	return r.Dst.String() + " dev " + r.Dev
}

// hostRoutes lists the host's IPv4 routes of every table (local
// addresses included), except default routes and those through the
// interface skipDev.
func hostRoutes(skipDev string) ([]hostRoute, error) {
	routes, err := netlinkDump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, errdefs.Unavailable("list host routes: %v", err)
	}
	names := map[int]string{}
	if links, err := netlinkDump(netlink.LinkList); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []hostRoute
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := prefixOf(r.Dst)
		if !ok || p.Bits() == 0 || !p.Addr().Is4() {
			continue
		}
		dev := names[r.LinkIndex]
		if skipDev != "" && dev == skipDev {
			continue
		}
		out = append(out, hostRoute{Dst: p, Dev: dev})
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

// attachment is what plumbing a container into a bridge needs.
type attachment struct {
	NetNS    string
	Veth     string // host side
	Bridge   int    // bridge index
	IP       netip.Addr
	Subnet   netip.Prefix
	Gateway  netip.Addr
	NoRoute  bool // internal: no default route
	Loopback bool // only bring lo up
	// IfName is the interface inside; empty means eth0.
	IfName string
	// RouteIfNone adds the default route only if the namespace has none
	// yet (a further network: the first one's route stays).
	RouteIfNone bool
}

// plumb brings lo up in the namespace and, unless a.Loopback, creates the
// veth pair (a.IfName, by default eth0, inside), gives it its address
// and default route, and attaches the host side to the bridge in hairpin
// mode.
func plumb(a attachment) error {
	if a.IfName == "" {
		a.IfName = "eth0"
	}
	ns, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", a.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", a.NetNS, err)
	}
	defer h.Close()
	// lo is always interface 1 in a new namespace.
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}}); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if a.Loopback {
		return nil
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: a.Veth, MasterIndex: a.Bridge, Flags: net.FlagUp, TxQLen: -1},
		PeerName:         a.IfName,
		PeerHardwareAddr: macFor(a.IP),
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return errdefs.Conflict("interface %s already exists: another attachment of this container is left over; remove it (ip link del %s)", a.Veth, a.Veth)
		}
		return fmt.Errorf("create veth %s: %w", a.Veth, err)
	}
	if err := netlink.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", a.Veth, err)
	}
	eth0, err := h.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("find %s in the namespace: %w", a.IfName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.IP.AsSlice(), Mask: net.CIDRMask(a.Subnet.Bits(), 32)}}
	if err := h.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", addr.IPNet, a.IfName, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bring %s up: %w", a.IfName, err)
	}
	if a.RouteIfNone && !a.NoRoute {
		routes, err := netlinkDump(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
		if err != nil {
			return fmt.Errorf("list routes in the namespace: %w", err)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				a.NoRoute = true
			}
		}
	}
	if !a.NoRoute {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: a.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("add default route via %s: %w", a.Gateway, err)
		}
	}
	// Packets sent before the kernel has finished bringing the links up
	// are dropped (and a lost ARP or SYN costs a second): wait for it,
	// which takes well under a millisecond.
	waitOperUp(h.LinkByIndex, eth0.Attrs().Index, time.Second)
	waitOperUp(netlink.LinkByIndex, veth.Attrs().Index, time.Second)
	waitOperUp(netlink.LinkByIndex, a.Bridge, time.Second)
	return nil
}

// bringLoopbackUp brings lo up in the namespace at path (for CNI
// networks, whose bridge plugin leaves it down).
func bringLoopbackUp(path string) error {
	return plumb(attachment{NetNS: path, Loopback: true})
}

func writeSysctl(path, value string) error {
	cur, err := os.ReadFile(path)
	if err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return errdefs.Unavailable("set %s to %s: %v", path, value, err)
	}
	return nil
}

// linkNamesWithPrefix lists the host interfaces whose name starts with
// prefix.
func linkNamesWithPrefix(prefix string) ([]string, error) {
	links, err := netlinkDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []string
	for _, l := range links {
		if name := l.Attrs().Name; len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			out = append(out, name)
		}
	}
	return out, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
