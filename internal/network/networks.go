package network

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Create makes a network: a bridge network (with its bridge, firewall
// rules and DNS server) or, with CNIConfig, a CNI network. A name or
// subnet already taken is ErrConflict; bad input is ErrInvalid and
// changes nothing.
func (m *Manager) Create(ctx context.Context, req api.NetworkCreateRequest) (api.Network, error) {
	if err := validateCreate(req); err != nil {
		return api.Network{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	unlock, err := lockHost()
	if err != nil {
		return api.Network{}, errdefs.Unavailable("%v", err)
	}
	defer unlock()
	n, err := m.create(ctx, req, true)
	if err != nil {
		return api.Network{}, err
	}
	return toAPI(n, nil), nil
}

func validateCreate(req api.NetworkCreateRequest) error {
	switch {
	case req.Name == "":
		return errdefs.Invalid("a network needs a name")
	case req.Name == api.NetworkNone || req.Name == api.NetworkHost:
		return errdefs.Invalid("network name %q is reserved: it is a network mode (--network %s), choose another name", req.Name, req.Name)
	case !networkNameRE.MatchString(req.Name):
		return errdefs.Invalid("invalid network name %q: use up to 63 letters, digits, '_', '.' and '-', starting with a letter or digit", req.Name)
	}
	for k := range req.Labels {
		if k == "" || strings.ContainsAny(k, "=\n") {
			return errdefs.Invalid("invalid network label key %q", k)
		}
	}
	if req.CNIConfig != "" {
		if req.Subnet != "" {
			return errdefs.Invalid("a CNI network takes its subnet from its configuration (the ipam section): drop --subnet")
		}
		if req.Internal {
			return errdefs.Invalid("--internal is for bridge networks: a CNI network's plugins decide its routes")
		}
		return nil
	}
	if req.Subnet != "" {
		if _, err := parseSubnet(req.Subnet); err != nil {
			return err
		}
	}
	return nil
}

// parseSubnet validates a user's subnet.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, errdefs.Invalid("invalid subnet %q: write it in CIDR form, like 10.90.0.0/24", s)
	}
	if !p.Addr().Is4() {
		return p, errdefs.Invalid("invalid subnet %q: only IPv4 subnets are supported", s)
	}
	if p.Masked() != p {
		return p, errdefs.Invalid("invalid subnet %q: the address has host bits set; did you mean %s?", s, p.Masked())
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return p, errdefs.Invalid("invalid subnet %q: the prefix length must be between /8 and /30", s)
	}
	for _, r := range []struct {
		p    netip.Prefix
		what string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "\"this\" network"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
		{netip.MustParsePrefix("224.0.0.0/3"), "multicast and reserved"},
	} {
		if r.p.Overlaps(p) {
			return p, errdefs.Invalid("invalid subnet %q: it overlaps the %s range %s", s, r.what, r.p)
		}
	}
	return p, nil
}

// checkSubnetFree fails with ErrConflict when subnet overlaps another
// network's (except the network exceptID) or a host route (except those
// through skipDev).
func (m *Manager) checkSubnetFree(ctx context.Context, q querier, subnet netip.Prefix, exceptID string) error {
	nets, err := listNetworks(ctx, q)
	if err != nil {
		return err
	}
	skipDev := ""
	for _, n := range nets {
		if n.ID == exceptID {
			skipDev = n.Bridge
			continue
		}
		if n.Subnet.IsValid() && n.Subnet.Overlaps(subnet) {
			return errdefs.Conflict("subnet %s overlaps the subnet %s of network %s: choose another subnet", subnet, n.Subnet, n.Name)
		}
	}
	routes, err := hostRoutes(skipDev)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst.Overlaps(subnet) {
			return errdefs.Conflict("subnet %s overlaps the host route %s: choose another subnet", subnet, r)
		}
	}
	return nil
}

// firstFreeSubnet returns the first bits-sized subnet of pool that
// overlaps none of taken.
func firstFreeSubnet(pool netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, bool) {
	step := uint32(1) << (32 - bits)
	a := pool.Masked().Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	for i := uint32(0); i < 1<<(bits-pool.Bits()); i++ {
		n := base + i*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), bits)
		if !slices.ContainsFunc(taken, p.Overlaps) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// pickSubnet chooses a free subnet from Pool.
func (m *Manager) pickSubnet(ctx context.Context, q querier) (netip.Prefix, error) {
	nets, err := listNetworks(ctx, q)
	if err != nil {
		return netip.Prefix{}, err
	}
	var taken []netip.Prefix
	for _, n := range nets {
		if n.Subnet.IsValid() {
			taken = append(taken, n.Subnet)
		}
	}
	routes, err := hostRoutes("")
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, r := range routes {
		taken = append(taken, r.Dst)
	}
	p, ok := firstFreeSubnet(Pool, PoolBits, taken)
	if !ok {
		return p, errdefs.Conflict("no free /%d subnet left in %s: remove unused networks or create one with --subnet", PoolBits, Pool)
	}
	return p, nil
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// create records a network and, with hostObjects, makes its host objects;
// the caller holds m.mu and the host lock. On error nothing is left.
func (m *Manager) create(ctx context.Context, req api.NetworkCreateRequest, hostObjects bool) (netRecord, error) {
	if err := validateCreate(req); err != nil {
		return netRecord{}, err
	}
	n := netRecord{ID: newID(), Name: req.Name, Created: time.Now().UTC(), Driver: driverBridge, Internal: req.Internal, Labels: req.Labels}
	if req.CNIConfig != "" {
		info, err := m.validateCNI(ctx, req.CNIConfig)
		if err != nil {
			return netRecord{}, err
		}
		n.Driver, n.CNIConfig, n.Subnet, n.Gateway, n.Bridge = driverCNI, req.CNIConfig, info.subnet, info.gateway, info.bridge
	}
	err := m.tx(ctx, func(tx *sql.Tx) error {
		if _, err := getNetwork(ctx, tx, req.Name); err == nil {
			return errdefs.Conflict("network %q already exists: choose another name, or remove it first (skiff network rm %s)", req.Name, req.Name)
		}
		var err error
		if n.Seq, err = nextSeq(ctx, tx); err != nil {
			return err
		}
		if n.Driver == driverBridge {
			if req.Subnet != "" {
				n.Subnet, _ = parseSubnet(req.Subnet)
				if err := m.checkSubnetFree(ctx, tx, n.Subnet, ""); err != nil {
					return err
				}
			} else if n.Subnet, err = m.pickSubnet(ctx, tx); err != nil {
				return err
			}
			n.Gateway = gatewayOf(n.Subnet)
			n.Bridge = m.bridgeName(n.Seq)
			if len(n.Bridge) > 15 {
				return errdefs.Conflict("too many networks: bridge name %s is longer than 15 characters", n.Bridge)
			}
		}
		return insertNetwork(ctx, tx, n)
	})
	if err != nil || !hostObjects || n.Driver != driverBridge {
		return n, err
	}
	if err = m.ensureHostObjects(ctx, n); err == nil {
		err = m.syncNetworkRules(ctx)
	}
	if err != nil {
		m.destroyNetwork(ctx, n)
		return netRecord{}, err
	}
	m.log.Info("network created", "network", n.Name, "subnet", n.Subnet, "bridge", n.Bridge, "internal", n.Internal)
	return n, nil
}

// destroyNetwork removes a network's host objects and its record.
func (m *Manager) destroyNetwork(ctx context.Context, n netRecord) error {
	m.stopDNS(n.ID)
	var errs []error
	if n.Driver == driverBridge {
		if err := deleteLink(n.Bridge); err != nil {
			errs = append(errs, errdefs.Unavailable("remove bridge of network %s: %v", n.Name, err))
		}
	}
	if len(errs) == 0 {
		if _, err := m.db.ExecContext(ctx, `DELETE FROM networks WHERE id = ?`, n.ID); err != nil {
			errs = append(errs, dbErr("delete network", err))
		}
	}
	if err := m.syncNetworkRules(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Remove deletes a network and everything it made on the host. A network
// with containers attached is ErrConflict, so is the default network.
func (m *Manager) Remove(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := getNetwork(ctx, m.db, name)
	if err != nil {
		return err
	}
	if n.Name == api.DefaultNetwork {
		return errdefs.Conflict("network %s is the default network and cannot be removed", n.Name)
	}
	eps, err := listEndpoints(ctx, m.db, n.ID)
	if err != nil {
		return err
	}
	if len(eps) > 0 {
		names := make([]string, 0, len(eps))
		for _, ep := range eps {
			names = append(names, ep.Name)
		}
		return errdefs.Conflict("network %s is in use by %d container(s) (%s): remove them first (skiff rm -f %s)", n.Name, len(eps), strings.Join(names, ", "), strings.Join(names, " "))
	}
	if err := m.destroyNetwork(ctx, n); err != nil {
		return err
	}
	m.log.Info("network removed", "network", n.Name)
	return nil
}

// List returns every network with its attached containers.
func (m *Manager) List(ctx context.Context) ([]api.Network, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return nil, err
	}
	eps, err := listEndpoints(ctx, m.db, "")
	if err != nil {
		return nil, err
	}
	out := make([]api.Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, toAPI(n, eps))
	}
	return out, nil
}

// Inspect returns one network by name, ID or unique ID prefix.
func (m *Manager) Inspect(ctx context.Context, name string) (api.Network, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := getNetwork(ctx, m.db, name)
	if err != nil {
		return api.Network{}, err
	}
	eps, err := listEndpoints(ctx, m.db, n.ID)
	if err != nil {
		return api.Network{}, err
	}
	return toAPI(n, eps), nil
}

// toAPI converts a record and the endpoints among eps that belong to it.
func toAPI(n netRecord, eps []endpointRecord) api.Network {
	out := api.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Driver: n.Driver,
		Subnet: prefixString(n.Subnet), Gateway: addrString(n.Gateway), Bridge: n.Bridge,
		Internal: n.Internal, Labels: maps.Clone(n.Labels), CNIConfig: n.CNIConfig,
	}
	for _, ep := range eps {
		if ep.NetworkID != n.ID {
			continue
		}
		if out.Containers == nil {
			out.Containers = map[string]api.Endpoint{}
		}
		out.Containers[ep.ContainerID] = api.Endpoint{Name: ep.Name, IP: addrString(ep.IP), MAC: ep.MAC, Aliases: ep.Aliases}
	}
	return out
}

// RemoveAll tears down every attachment and network of this daemon,
// including the default network, and removes its firewall chains and
// namespace directory: skiff leaves nothing on the host. For uninstalling
// and tests; the Manager is closed afterwards.
func (m *Manager) RemoveAll(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	eps, err := listEndpoints(ctx, m.db, "")
	if err != nil {
		return err
	}
	for _, ep := range eps {
		errs = append(errs, m.teardownEndpoint(ctx, ep, false))
	}
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return err
	}
	for _, n := range nets {
		errs = append(errs, m.destroyNetwork(ctx, n))
	}
	m.release()
	errs = append(errs, m.syncPortRules(ctx, ""), m.fw.Uninstall(ctx))
	if err := removeOrphanNetNS(m.netnsDir, nil); err != nil {
		errs = append(errs, err)
	}
	if err := unmountDir(m.netnsDir); err != nil {
		errs = append(errs, err)
	}
	unlockInstance(m.instanceLock, true)
	m.instanceLock = nil
	return errors.Join(errs...)
}

func unmountDir(dir string) error {
	mounted, err := isMountPoint(dir)
	if err != nil || !mounted {
		return err
	}
	if err := unmount(dir); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}
