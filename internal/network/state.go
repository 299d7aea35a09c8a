package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Drivers and attachment modes.
const (
	driverBridge = "bridge"
	driverCNI    = "cni"
	modeNone     = "none"
)

// netRecord is a network as persisted (table networks).
type netRecord struct {
	ID        string
	Name      string
	Created   time.Time
	Driver    string
	Subnet    netip.Prefix // invalid for a CNI network whose subnet is unknown
	Gateway   netip.Addr
	Bridge    string
	Seq       int
	Internal  bool
	Labels    map[string]string
	CNIConfig string
	Cursor    netip.Addr // last address handed out
}

// endpointRecord is a container's attachment as persisted (table
// network_endpoints); it is also the container's IP lease.
type endpointRecord struct {
	ContainerID string
	// Idx numbers the container's attachments: 0 is its first network
	// (or mode none), 1, 2, ... the further ones, interface eth<Idx>.
	Idx       int
	NetworkID string // "" for mode none
	Mode      string // driverBridge, driverCNI or modeNone
	Name      string
	Hostname  string
	IP        netip.Addr
	MAC       string
	Gateway   netip.Addr
	Aliases   []string
	Ports     []api.PortMapping // with host ports chosen
	Veth      string
	Created   time.Time
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx runs fn in a transaction, committing if it returns nil.
func (m *Manager) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return errdefs.Unavailable("begin state transaction: %v", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return errdefs.Unavailable("commit network state: %v", err)
	}
	return nil
}

func dbErr(what string, err error) error {
	if err == nil || errdefs.Category(err) != nil {
		return err
	}
	return errdefs.Unavailable("%s: %v", what, err)
}

const networkColumns = `id, name, created, driver, subnet, gateway, bridge, seq, internal, labels, cni_config, ip_cursor`

func scanNetwork(sc interface{ Scan(...any) error }) (netRecord, error) {
	var r netRecord
	var created int64
	var subnet, gw, labels, cursor string
	if err := sc.Scan(&r.ID, &r.Name, &created, &r.Driver, &subnet, &gw, &r.Bridge, &r.Seq, &r.Internal, &labels, &r.CNIConfig, &cursor); err != nil {
		return r, err
	}
	r.Created = time.Unix(0, created).UTC()
	r.Subnet, _ = netip.ParsePrefix(subnet)
	r.Gateway, _ = netip.ParseAddr(gw)
	r.Cursor, _ = netip.ParseAddr(cursor)
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return r, fmt.Errorf("network %s labels: %w", r.Name, err)
	}
	return r, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func listNetworks(ctx context.Context, q querier) ([]netRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+networkColumns+` FROM networks ORDER BY seq`)
	if err != nil {
		return nil, dbErr("list networks", err)
	}
	defer rows.Close()
	var out []netRecord
	for rows.Next() {
		r, err := scanNetwork(rows)
		if err != nil {
			return nil, dbErr("read network", err)
		}
		out = append(out, r)
	}
	return out, dbErr("list networks", rows.Err())
}

// getNetwork finds a network by name, then by full ID or unique ID prefix.
func getNetwork(ctx context.Context, q querier, ref string) (netRecord, error) {
	r, err := scanNetwork(q.QueryRowContext(ctx, `SELECT `+networkColumns+` FROM networks WHERE name = ?`, ref))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return r, dbErr("read network", err)
	}
	if len(ref) >= 4 && strings.Trim(ref, "0123456789abcdef") == "" {
		nets, err := listNetworks(ctx, q)
		if err != nil {
			return r, err
		}
		var found []netRecord
		for _, n := range nets {
			if strings.HasPrefix(n.ID, ref) {
				found = append(found, n)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return r, errdefs.Invalid("network ID prefix %q is ambiguous: give more characters or the name", ref)
		}
	}
	return r, errdefs.NotFound("network %q not found: list networks with skiff network ls, or create it with skiff network create %s", ref, ref)
}

func insertNetwork(ctx context.Context, tx *sql.Tx, r netRecord) error {
	labels, err := json.Marshal(r.Labels)
	if err != nil {
		return err
	}
	if r.Labels == nil {
		labels = []byte("{}")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO networks (`+networkColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Created.UnixNano(), r.Driver, prefixString(r.Subnet), addrString(r.Gateway), r.Bridge, r.Seq, r.Internal,
		string(labels), r.CNIConfig, addrString(r.Cursor))
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: networks.name") {
		return errdefs.Conflict("network %q already exists: choose another name, or remove it first (skiff network rm %s)", r.Name, r.Name)
	}
	return dbErr("save network", err)
}

func nextSeq(ctx context.Context, tx *sql.Tx) (int, error) {
	var seq int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), -1) + 1 FROM networks`).Scan(&seq)
	return seq, dbErr("number network", err)
}

const endpointColumns = `container_id, idx, network_id, mode, name, hostname, ip, mac, gateway, aliases, ports, veth, created`

func scanEndpoint(sc interface{ Scan(...any) error }) (endpointRecord, error) {
	var r endpointRecord
	var netID, ip sql.NullString
	var gw, aliases, ports string
	var created int64
	if err := sc.Scan(&r.ContainerID, &r.Idx, &netID, &r.Mode, &r.Name, &r.Hostname, &ip, &r.MAC, &gw, &aliases, &ports, &r.Veth, &created); err != nil {
		return r, err
	}
	r.NetworkID = netID.String
	r.IP, _ = netip.ParseAddr(ip.String)
	r.Gateway, _ = netip.ParseAddr(gw)
	r.Created = time.Unix(0, created).UTC()
	if err := json.Unmarshal([]byte(aliases), &r.Aliases); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(ports), &r.Ports); err != nil {
		return r, err
	}
	return r, nil
}

func listEndpoints(ctx context.Context, q querier, networkID string) ([]endpointRecord, error) {
	query, args := `SELECT `+endpointColumns+` FROM network_endpoints ORDER BY created, idx`, []any(nil)
	if networkID != "" {
		query, args = `SELECT `+endpointColumns+` FROM network_endpoints WHERE network_id = ? ORDER BY created`, []any{networkID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("list network endpoints", err)
	}
	defer rows.Close()
	var out []endpointRecord
	for rows.Next() {
		r, err := scanEndpoint(rows)
		if err != nil {
			return nil, dbErr("read network endpoint", err)
		}
		out = append(out, r)
	}
	return out, dbErr("list network endpoints", rows.Err())
}

// containerEndpoints lists a container's attachments, its first network
// first.
func containerEndpoints(ctx context.Context, q querier, containerID string) ([]endpointRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointColumns+` FROM network_endpoints WHERE container_id = ? ORDER BY idx`, containerID)
	if err != nil {
		return nil, dbErr("list network endpoints", err)
	}
	defer rows.Close()
	var out []endpointRecord
	for rows.Next() {
		r, err := scanEndpoint(rows)
		if err != nil {
			return nil, dbErr("read network endpoint", err)
		}
		out = append(out, r)
	}
	return out, dbErr("list network endpoints", rows.Err())
}

func insertEndpoint(ctx context.Context, tx *sql.Tx, r endpointRecord) error {
	aliases, _ := json.Marshal(nonNil(r.Aliases))
	ports, _ := json.Marshal(nonNilPorts(r.Ports))
	var netID, ip any
	if r.NetworkID != "" {
		netID = r.NetworkID
	}
	if r.IP.IsValid() {
		ip = r.IP.String()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO network_endpoints (`+endpointColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ContainerID, r.Idx, netID, r.Mode, r.Name, r.Hostname, ip, r.MAC, addrString(r.Gateway), string(aliases), string(ports), r.Veth, r.Created.UnixNano())
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: network_endpoints.container_id, network_endpoints.network_id") {
		return errdefs.Conflict("container %s is already attached to this network", r.Name)
	}
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: network_endpoints.container_id") {
		return errdefs.Conflict("container %s is already attached to a network: tear its network down first", r.ContainerID)
	}
	return dbErr("save network endpoint", err)
}

// updateEndpointAddress records what a CNI plugin chose.
func updateEndpointAddress(ctx context.Context, q querier, containerID string, ip, gw netip.Addr, mac string) error {
	var ipv any
	if ip.IsValid() {
		ipv = ip.String()
	}
	_, err := q.ExecContext(ctx, `UPDATE network_endpoints SET ip = ?, gateway = ?, mac = ? WHERE container_id = ? AND idx = 0`, ipv, addrString(gw), mac, containerID)
	return dbErr("save network endpoint", err)
}

func deleteEndpoint(ctx context.Context, q querier, containerID string, idx int) error {
	_, err := q.ExecContext(ctx, `DELETE FROM network_endpoints WHERE container_id = ? AND idx = ?`, containerID, idx)
	return dbErr("delete network endpoint", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilPorts(p []api.PortMapping) []api.PortMapping {
	if p == nil {
		return []api.PortMapping{}
	}
	return p
}
