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

// allocateIP leases the next free address of n inside tx and moves the
// network's cursor. The lease is the endpoint row the caller inserts in
// the same transaction; the UNIQUE (network_id, ip) constraint makes a
// double lease impossible even if two allocations raced.
func allocateIP(ctx context.Context, tx *sql.Tx, n netRecord) (netip.Addr, error) {
	rows, err := tx.QueryContext(ctx, `SELECT ip FROM network_endpoints WHERE network_id = ? AND ip IS NOT NULL`, n.ID)
	if err != nil {
		return netip.Addr{}, dbErr("read leases", err)
	}
	used := map[netip.Addr]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return netip.Addr{}, dbErr("read leases", err)
		}
		if a, err := netip.ParseAddr(s); err == nil {
			used[a] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return netip.Addr{}, dbErr("read leases", err)
	}
	ip, ok := nextFree(n.Subnet, used, n.Cursor)
	if !ok {
		return netip.Addr{}, errdefs.Conflict("network %s has no free address left in %s: remove containers from it, or use a network with a larger subnet", n.Name, n.Subnet)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE networks SET ip_cursor = ? WHERE id = ?`, ip.String(), n.ID); err != nil {
		return netip.Addr{}, dbErr("save lease cursor", err)
	}
	return ip, nil
}
