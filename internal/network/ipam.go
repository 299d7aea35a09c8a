package network

import (
	"context"
	"database/sql"
	"net/netip"

	"skiff.dev/skiff/api/errdefs"
)

// Address pool for networks created without a subnet.
var (
	// Pool is where subnets are picked from: /24s of 10.89.0.0/16.
	Pool = netip.MustParsePrefix("10.89.0.0/16")
	// PoolBits is the size of a picked subnet.
	PoolBits = 24
)

// gatewayOf is the first host address of subnet: the bridge's address.
func gatewayOf(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// broadcastOf is the last address of subnet.
func broadcastOf(subnet netip.Prefix) netip.Addr {
	a := subnet.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= 1<<(32-subnet.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// nextFree returns the first address of subnet after cursor (wrapping
// around) that is neither the network, gateway or broadcast address nor
// in used. Handing addresses out round robin keeps a freed address from
// being reused at once, while stale connections to it die out.
func nextFree(subnet netip.Prefix, used map[netip.Addr]bool, cursor netip.Addr) (netip.Addr, bool) {
	subnet = subnet.Masked()
	first := gatewayOf(subnet).Next()
	last := broadcastOf(subnet).Prev()
	if !first.IsValid() || !last.IsValid() || last.Less(first) {
		return netip.Addr{}, false
	}
	start := first
	if cursor.IsValid() && subnet.Contains(cursor) && cursor.Less(last) && !cursor.Less(first) {
		start = cursor.Next()
	}
	a := start
	for {
		if !used[a] {
			return a, true
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, false
		}
	}
}

// parseRequestedIP reads the address asked for on network: an IPv4
// address, or nothing (the next free one).
func parseRequestedIP(s, network string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errdefs.Invalid("invalid address %q on network %s: give an IPv4 address, such as 10.89.0.10", s, network)
	}
	return a, nil
}

// requestedIPOK says whether ip may be asked for on n: a bridge
// network's host address that is not its gateway.
func requestedIPOK(n netRecord, ip netip.Addr) error {
	if n.Driver != driverBridge {
		return errdefs.Invalid("network %s is a CNI network: its plugin chooses the addresses, so %s cannot be asked for", n.Name, ip)
	}
	sub := n.Subnet.Masked()
	if !sub.Contains(ip) {
		return errdefs.Invalid("address %s is outside network %s (%s): choose one inside its subnet", ip, n.Name, sub)
	}
	if ip == sub.Addr() || ip == broadcastOf(sub) || ip == gatewayOf(sub) || ip == n.Gateway {
		return errdefs.Invalid("address %s is network %s's own (its network, gateway or broadcast address): choose another in %s", ip, n.Name, sub)
	}
	return nil
}

// leases returns the addresses leased on the network with ID id, each
// with the name of the container that holds it.
func leases(ctx context.Context, q querier, id string) (map[netip.Addr]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT ip, name FROM network_endpoints WHERE network_id = ? AND ip IS NOT NULL`, id)
	if err != nil {
		return nil, dbErr("read leases", err)
	}
	defer rows.Close()
	used := map[netip.Addr]string{}
	for rows.Next() {
		var s, name string
		if err := rows.Scan(&s, &name); err != nil {
			return nil, dbErr("read leases", err)
		}
		if a, err := netip.ParseAddr(s); err == nil {
			used[a] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("read leases", err)
	}
	return used, nil
}

// inUse is the error for an address another container holds.
func inUse(ip netip.Addr, n netRecord, holder string) error {
	return errdefs.Conflict("address %s on network %s is in use by container %s: choose another address, or remove that container", ip, n.Name, holder)
}

// allocateIP leases an address of n inside tx: want when it is valid,
// else the next free one, moving the network's cursor. The lease is the
// endpoint row the caller inserts in the same transaction; the UNIQUE
// (network_id, ip) constraint makes a double lease impossible even if
// two allocations raced.
func allocateIP(ctx context.Context, tx *sql.Tx, n netRecord, want netip.Addr) (netip.Addr, error) {
	used, err := leases(ctx, tx, n.ID)
	if err != nil {
		return netip.Addr{}, err
	}
	if want.IsValid() {
		if err := requestedIPOK(n, want); err != nil {
			return netip.Addr{}, err
		}
		if holder, ok := used[want]; ok {
			return netip.Addr{}, inUse(want, n, holder)
		}
		return want, nil
	}
	taken := make(map[netip.Addr]bool, len(used))
	for a := range used {
		taken[a] = true
	}
	ip, ok := nextFree(n.Subnet, taken, n.Cursor)
	if !ok {
		return netip.Addr{}, errdefs.Conflict("network %s has no free address left in %s: remove containers from it, or use a network with a larger subnet", n.Name, n.Subnet)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE networks SET ip_cursor = ? WHERE id = ?`, ip.String(), n.ID); err != nil {
		return netip.Addr{}, dbErr("save lease cursor", err)
	}
	return ip, nil
}

// checkRequestedIP says, before anything is made, whether ip (when
// valid) may be asked for on n and is free now.
func checkRequestedIP(ctx context.Context, q querier, n netRecord, ip netip.Addr) error {
	if !ip.IsValid() {
		return nil
	}
	if err := requestedIPOK(n, ip); err != nil {
		return err
	}
	used, err := leases(ctx, q, n.ID)
	if err != nil {
		return err
	}
	if holder, ok := used[ip]; ok {
		return inUse(ip, n, holder)
	}
	return nil
}
