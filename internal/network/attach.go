package network

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/network/dns"
)

// A container may be on several networks: its first one (SetupRequest's
// Network, endpoint index 0, interface eth0: the default route, the
// published ports, the hosts and resolv.conf files) and further bridge
// networks (indexes 1, 2, ..., interfaces eth1, eth2, ...), joined by
// Setup from SetupRequest.Extra or later by Connect. The container's
// names are in the DNS of each of its networks with that network's
// aliases, and the DNS server it asks (its first network's) also answers
// the names of its other networks.

// maxExtraNetworks bounds the further networks of one container.
const maxExtraNetworks = 32

func validateAliases(aliases []string) error {
	for _, a := range aliases {
		if !dnsNameRE.MatchString(a) {
			return errdefs.Invalid("invalid network alias %q: use letters, digits, '_', '.' and '-', starting and ending with a letter or digit", a)
		}
	}
	return nil
}

// validateExtra checks the further networks of a container whose first
// network is primary ("" for the default network).
func validateExtra(primary string, extra []api.NetworkAttachment) error {
	if len(extra) == 0 {
		return nil
	}
	if primary == "" {
		primary = api.DefaultNetwork
	}
	if primary == api.NetworkNone || primary == api.NetworkHost {
		return errdefs.Invalid("a container on network %s cannot join other networks: give it a network first", primary)
	}
	if len(extra) > maxExtraNetworks {
		return errdefs.Invalid("a container can join at most %d further networks, not %d", maxExtraNetworks, len(extra))
	}
	seen := map[string]bool{primary: true}
	for _, x := range extra {
		switch {
		case x.Network == "":
			return errdefs.Invalid("a further network of the container has no name: name each network to join")
		case x.Network == api.NetworkNone || x.Network == api.NetworkHost:
			return errdefs.Invalid("network %s can only be a container's only network, not a further one", x.Network)
		case seen[x.Network]:
			return errdefs.Invalid("network %s is named twice for the container: join each network once", x.Network)
		}
		seen[x.Network] = true
		if err := validateAliases(x.Aliases); err != nil {
			return err
		}
		if _, err := parseRequestedIP(x.IP, x.Network); err != nil {
			return err
		}
	}
	return nil
}

// CheckAttachments says whether a container whose first network is
// primary may also join the networks of extra, before anything is made:
// bad input is ErrInvalid, an unknown network ErrNotFound.
func (m *Manager) CheckAttachments(ctx context.Context, primary string, extra []api.NetworkAttachment) error {
	if err := validateExtra(primary, extra); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, x := range extra {
		n, err := getNetwork(ctx, m.db, x.Network)
		if err != nil {
			return err
		}
		if err := extraDriverOK(n); err != nil {
			return err
		}
		want, _ := parseRequestedIP(x.IP, x.Network)
		if err := checkRequestedIP(ctx, m.db, n, want); err != nil {
			return err
		}
	}
	return nil
}

func extraDriverOK(n netRecord) error {
	if n.Driver != driverBridge {
		return errdefs.Invalid("network %s is a CNI network: it can only be a container's first network (--network %s)", n.Name, n.Name)
	}
	return nil
}

// extraVethName is the host side of a container's veth on its further
// network number idx.
func (m *Manager) extraVethName(containerID string, idx int) string {
	sum := sha256.Sum256([]byte(containerID + "/" + strconv.Itoa(idx)))
	return m.vethPrefix() + hex.EncodeToString(sum[:])[:15-len(m.vethPrefix())]
}

// attachExtra joins the container, whose first network is attached, to
// the further network x as endpoint idx. On error nothing of it is left.
// The caller holds m.mu for reading.
func (m *Manager) attachExtra(ctx context.Context, containerID string, idx int, x api.NetworkAttachment) (endpointRecord, error) {
	eps, err := containerEndpoints(ctx, m.db, containerID)
	if err != nil {
		return endpointRecord{}, err
	}
	if len(eps) == 0 || eps[0].Idx != 0 {
		return endpointRecord{}, errdefs.Conflict("container %s has no network attachment: start it first", shortID(containerID))
	}
	first := eps[0]
	if first.Mode == modeNone {
		return endpointRecord{}, errdefs.Invalid("container %s is on network none: it cannot join other networks", first.Name)
	}
	if err := validateAliases(x.Aliases); err != nil {
		return endpointRecord{}, err
	}
	n, err := getNetwork(ctx, m.db, x.Network)
	if err != nil {
		return endpointRecord{}, err
	}
	if err := extraDriverOK(n); err != nil {
		return endpointRecord{}, err
	}
	for _, ep := range eps {
		if ep.NetworkID == n.ID {
			return endpointRecord{}, errdefs.Conflict("container %s is already on network %s", first.Name, n.Name)
		}
	}
	ep := endpointRecord{
		ContainerID: containerID, Idx: idx, NetworkID: n.ID, Mode: driverBridge, Name: first.Name, Hostname: first.Hostname,
		Gateway: n.Gateway, Aliases: x.Aliases, Veth: m.extraVethName(containerID, idx), Created: time.Now().UTC(),
	}
	err = m.tx(ctx, func(tx *sql.Tx) error {
		cur, err := getNetwork(ctx, tx, n.ID)
		if err != nil {
			return err
		}
		want, err := parseRequestedIP(x.IP, x.Network)
		if err != nil {
			return err
		}
		if ep.IP, err = allocateIP(ctx, tx, cur, want); err != nil {
			return err
		}
		ep.MAC = macFor(ep.IP).String()
		return insertEndpoint(ctx, tx, ep)
	})
	if err != nil {
		return endpointRecord{}, err
	}
	if err := m.plumbExtra(ctx, ep, n); err != nil {
		m.teardownEndpoint(ctx, ep, false)
		return endpointRecord{}, setupErr(err)
	}
	return ep, nil
}

// plumbExtra makes the interface of a further network and registers its
// names.
func (m *Manager) plumbExtra(ctx context.Context, ep endpointRecord, n netRecord) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		if err := m.ensureHostObjects(ctx, n); err != nil {
			return err
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return err
		}
	}
	a := attachment{
		NetNS: m.NetNSPath(ep.ContainerID), Veth: ep.Veth, Bridge: br.Attrs().Index, IP: ep.IP, Subnet: n.Subnet,
		Gateway: n.Gateway, NoRoute: n.Internal, IfName: "eth" + strconv.Itoa(ep.Idx), RouteIfNone: true,
	}
	if err := plumb(a); err != nil {
		return err
	}
	return m.register(ctx, ep, n.Gateway, n.Internal)
}

// Connect joins a container that Setup attached (a running one) to one
// more bridge network, at once, with its own interface, address and
// aliases, and returns its settings. A container already on the network
// is ErrConflict, one not attached ErrConflict too, a container on
// network none or a CNI network to join ErrInvalid.
func (m *Manager) Connect(ctx context.Context, containerID string, x api.NetworkAttachment) (*api.NetworkSettings, error) {
	if x.Network == api.NetworkNone || x.Network == api.NetworkHost {
		return nil, errdefs.Invalid("network %s can only be a container's only network, not a further one", x.Network)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	eps, err := containerEndpoints(ctx, m.db, containerID)
	if err != nil {
		return nil, err
	}
	if len(eps) > maxExtraNetworks {
		return nil, errdefs.Invalid("a container can join at most %d further networks", maxExtraNetworks)
	}
	idx := 1
	for slices.ContainsFunc(eps, func(ep endpointRecord) bool { return ep.Idx == idx }) {
		idx++
	}
	if _, err := m.attachExtra(ctx, containerID, idx, x); err != nil {
		return nil, err
	}
	return m.settings(ctx, containerID)
}

// Disconnect takes a container off one of its further networks, at once,
// and returns its settings. Its first network cannot be disconnected
// (ErrInvalid); a network it is not on is ErrNotFound.
func (m *Manager) Disconnect(ctx context.Context, containerID, network string) (*api.NetworkSettings, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := getNetwork(ctx, m.db, network)
	if err != nil {
		return nil, err
	}
	eps, err := containerEndpoints(ctx, m.db, containerID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(eps, func(ep endpointRecord) bool { return ep.NetworkID == n.ID })
	switch {
	case i < 0:
		return nil, errdefs.NotFound("container %s is not on network %s", shortID(containerID), n.Name)
	case eps[i].Idx == 0:
		return nil, errdefs.Invalid("network %s is the container's first network: it cannot be disconnected while the container runs; recreate the container on another network", n.Name)
	}
	if err := m.teardownEndpoint(ctx, eps[i], false); err != nil {
		return nil, err
	}
	return m.settings(ctx, containerID)
}

// settings describes a container's attachments from the state.
func (m *Manager) settings(ctx context.Context, containerID string) (*api.NetworkSettings, error) {
	eps, err := containerEndpoints(ctx, m.db, containerID)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, errdefs.NotFound("container %s has no network attachment", shortID(containerID))
	}
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, n := range nets {
		names[n.ID] = n.Name
	}
	first := eps[0]
	out := &api.NetworkSettings{Network: api.NetworkNone, NetNS: m.NetNSPath(containerID)}
	if first.Mode != modeNone {
		out.Network, out.IP, out.Gateway, out.MAC, out.Ports = names[first.NetworkID], addrString(first.IP), addrString(first.Gateway), first.MAC, first.Ports
	}
	for _, ep := range eps {
		if ep.Mode == modeNone {
			continue
		}
		out.Networks = append(out.Networks, api.AttachedNetwork{
			Network: names[ep.NetworkID], Interface: "eth" + strconv.Itoa(ep.Idx), IP: addrString(ep.IP),
			Gateway: addrString(ep.Gateway), MAC: ep.MAC, Aliases: ep.Aliases,
		})
	}
	return out, nil
}

// restoreExtra registers a running container's further network again at
// daemon start.
func (m *Manager) restoreExtra(ctx context.Context, ep endpointRecord, n netRecord) {
	if ep.Veth != "" && !linkExists(ep.Veth) {
		m.log.Warn("veth of a running container is gone; restart the container to repair it", "container", ep.ContainerID, "veth", ep.Veth)
	}
	if n.ID == "" || !ep.IP.IsValid() {
		return
	}
	if err := m.register(ctx, ep, n.Gateway, n.Internal); err != nil {
		m.log.Warn("cannot register a running container in its network's DNS", "container", ep.ContainerID, "err", err)
	}
}

// noteAttached records that the container's names are in netID's DNS.
func (m *Manager) noteAttached(containerID, netID string) {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	if !slices.Contains(m.attached[containerID], netID) {
		m.attached[containerID] = append(m.attached[containerID], netID)
	}
}

func (m *Manager) forgetAttached(containerID, netID string) {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	l := slices.DeleteFunc(m.attached[containerID], func(id string) bool { return id == netID })
	if len(l) == 0 {
		delete(m.attached, containerID)
	} else {
		m.attached[containerID] = l
	}
}

// alsoDNS is the dns.Config.Also of network netID's server: the servers
// of the other networks of the container asking.
func (m *Manager) alsoDNS(netID string) func(netip.Addr) []*dns.Server {
	return func(client netip.Addr) []*dns.Server {
		s := m.dnsServer(netID)
		if s == nil {
			return nil
		}
		owner := s.Owner(client)
		if owner == "" {
			return nil
		}
		m.objMu.Lock()
		defer m.objMu.Unlock()
		var out []*dns.Server
		for _, id := range m.attached[owner] {
			if o := m.dns[id]; id != netID && o != nil {
				out = append(out, o)
			}
		}
		return out
	}
}
