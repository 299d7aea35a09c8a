package network

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// SetupRequest says which container to attach where.
type SetupRequest struct {
	ContainerID string
	// Name is the container's name: its DNS name on the network (with
	// Aliases and the 12-character ID).
	Name string
	// Hostname goes into the hostname and hosts files; empty means the
	// first 12 characters of ContainerID.
	Hostname string
	// Network is a network name, "none" or "host"; empty means the
	// default network.
	Network string
	// IP is the container's IPv4 address on Network (a bridge network):
	// empty leases the next free one.
	IP      string
	Aliases []string
	Ports   []api.PortMapping
	// Extra are further bridge networks to join after Network, each
	// with its own interface (eth1, eth2, ...), address and aliases.
	Extra []api.NetworkAttachment
	// FilesDir receives the files "hosts", "resolv.conf" and "hostname"
	// for the container to bind-mount; empty writes none.
	FilesDir string
	// Files are the container's own hosts and resolver entries.
	Files Files
	// Created, if set, is called once the container's namespace and
	// files are in place, before Setup makes the rest (interfaces,
	// addresses, routes, DNS names, port rules): an OCI runtime may
	// create the container from then on while Setup finishes. It is
	// not called when Setup fails before that point; a Setup that fails
	// after it has removed the namespace again.
	Created func()
	// MakeNetNS, if set, makes the container's network namespace at path
	// instead of Setup (a container with a user namespace has it made
	// owned by that namespace). Teardown removes it all the same.
	MakeNetNS func(path string) error
}

// makeNetNS makes the container's network namespace at path.
func (req *SetupRequest) makeNetNS(path string) error {
	if req.MakeNetNS != nil {
		return req.MakeNetNS(path)
	}
	return createNetNS(path)
}

func validateSetup(req *SetupRequest) error {
	if !containerIDRE.MatchString(req.ContainerID) {
		return errdefs.Invalid("invalid container ID %q for network setup", req.ContainerID)
	}
	if req.Network == "" {
		req.Network = api.DefaultNetwork
	}
	if req.Hostname == "" {
		req.Hostname = shortID(req.ContainerID)
	}
	if err := validateAliases(req.Aliases); err != nil {
		return err
	}
	if err := validateExtra(req.Network, req.Extra); err != nil {
		return err
	}
	if _, err := parseRequestedIP(req.IP, req.Network); err != nil {
		return err
	}
	if req.Network == api.NetworkNone || req.Network == api.NetworkHost {
		if req.IP != "" {
			return errdefs.Invalid("an address needs a network: --network %s has no address to choose (drop --ip %s)", req.Network, req.IP)
		}
		if len(req.Aliases) > 0 {
			return errdefs.Invalid("network aliases need a network: --network %s has no DNS", req.Network)
		}
		if len(req.Ports) > 0 {
			if req.Network == api.NetworkHost {
				return errdefs.Invalid("ports cannot be published with --network host: the container listens on the host's ports directly")
			}
			return errdefs.Invalid("ports cannot be published with --network none: the container has no network")
		}
	}
	return nil
}

// Check says whether a container may ask for network and ports, before
// anything is made: an unknown network is ErrNotFound, a bad port mapping
// or one the network cannot publish ErrInvalid. Ports in use are only
// found by Setup.
func (m *Manager) Check(ctx context.Context, network, ip string, ports []api.PortMapping) error {
	req := SetupRequest{ContainerID: "check", Network: network, IP: ip, Ports: ports}
	if err := validateSetup(&req); err != nil {
		return err
	}
	if req.Network == api.NetworkNone || req.Network == api.NetworkHost {
		return nil
	}
	if _, err := normalizePorts(ports); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := getNetwork(ctx, m.db, req.Network)
	if err != nil {
		return err
	}
	want, _ := parseRequestedIP(req.IP, req.Network)
	if err := checkRequestedIP(ctx, m.db, n, want); err != nil {
		return err
	}
	if n.Driver == driverCNI && len(ports) > 0 {
		if _, info, err := parseCNI(n.CNIConfig); err != nil {
			return err
		} else if !info.portMappings {
			return errdefs.Invalid("network %s cannot publish ports: its CNI configuration has no plugin with the portMappings capability (add the portmap plugin)", n.Name)
		}
	}
	return nil
}

// dnsNames are the names a container answers to on its network.
func dnsNames(ep endpointRecord) []string {
	var names []string
	if dnsNameRE.MatchString(ep.Name) {
		names = append(names, ep.Name)
	}
	names = append(names, ep.Aliases...)
	return append(names, shortID(ep.ContainerID))
}

// Setup attaches a container to its network (see SetupRequest and the
// package documentation) and returns its settings. An attachment left
// from an earlier run of the container is torn down first. On any error
// nothing is left.
func (m *Manager) Setup(ctx context.Context, req SetupRequest) (*api.NetworkSettings, error) {
	if err := validateSetup(&req); err != nil {
		return nil, err
	}
	if req.Network == api.NetworkHost {
		return m.setupHost(req)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if old, err := containerEndpoints(ctx, m.db, req.ContainerID); err != nil {
		return nil, err
	} else if len(old) > 0 {
		// Left from an earlier run whose teardown did not happen (the
		// daemon was down when the container exited): replace it.
		m.log.Info("replacing a stale network attachment", "container", req.ContainerID)
		if err := m.teardownAll(ctx, req.ContainerID, old); err != nil {
			return nil, err
		}
	}
	if req.Network == api.NetworkNone {
		return m.setupNone(ctx, req)
	}
	n, err := getNetwork(ctx, m.db, req.Network)
	if err != nil {
		return nil, err
	}
	ports, err := normalizePorts(req.Ports)
	if err != nil {
		return nil, err
	}
	if n.Driver == driverCNI {
		if req.IP != "" {
			return nil, requestedIPOK(n, netip.MustParseAddr(req.IP))
		}
		_, err = m.setupCNI(ctx, req, n, ports)
	} else {
		_, err = m.setupBridge(ctx, req, n, ports)
	}
	if err != nil {
		return nil, err
	}
	for i, x := range req.Extra {
		if _, err := m.attachExtra(ctx, req.ContainerID, i+1, x); err != nil {
			eps, _ := containerEndpoints(ctx, m.db, req.ContainerID)
			m.teardownAll(ctx, req.ContainerID, eps)
			return nil, err
		}
	}
	return m.settings(ctx, req.ContainerID)
}

func (m *Manager) setupHost(req SetupRequest) (*api.NetworkSettings, error) {
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		hosts = hostsFile(netip.Addr{}, req.Hostname, req.Name)
	}
	resolv := m.resolv.Raw
	if len(resolv) == 0 {
		resolv = resolvConf(m.resolv, netip.Addr{})
	}
	if hosts, err = req.Files.hosts(hosts, netip.Addr{}); err != nil {
		return nil, err
	}
	resolv = req.Files.resolv(resolv, m.resolv, m.resolv.Nameservers)
	if err := writeFiles(req.FilesDir, hosts, resolv, req.Hostname); err != nil {
		return nil, err
	}
	return &api.NetworkSettings{Network: api.NetworkHost}, nil
}

func (m *Manager) setupNone(ctx context.Context, req SetupRequest) (*api.NetworkSettings, error) {
	ep := endpointRecord{ContainerID: req.ContainerID, Mode: modeNone, Name: req.Name, Hostname: req.Hostname, Created: time.Now().UTC()}
	if err := m.tx(ctx, func(tx *sql.Tx) error { return insertEndpoint(ctx, tx, ep) }); err != nil {
		return nil, err
	}
	path := m.NetNSPath(req.ContainerID)
	hosts, err := req.Files.hosts(hostsFile(netip.Addr{}, req.Hostname, req.Name), netip.Addr{})
	if err == nil {
		err = req.makeNetNS(path)
	}
	if err == nil {
		err = writeFiles(req.FilesDir, hosts, req.Files.resolv(resolvConf(m.resolv, netip.Addr{}), m.resolv, nil), req.Hostname)
	}
	if err == nil {
		req.created()
		err = plumb(attachment{NetNS: path, Loopback: true})
	}
	if err != nil {
		m.teardownEndpoint(ctx, ep, false)
		return nil, setupErr(err)
	}
	return &api.NetworkSettings{Network: api.NetworkNone, NetNS: path}, nil
}

// setupErr classifies a plumbing error that has no category yet.
func setupErr(err error) error {
	if errdefs.Category(err) != nil {
		return err
	}
	return errdefs.Unavailable("set up the container's network: %v", err)
}

// reservePorts holds the host ports of ports, choosing free ones for
// host port 0; on error it holds nothing.
func reservePorts(ports []api.PortMapping) ([]*reservation, error) {
	var res []*reservation
	for i, p := range ports {
		r, port, err := reservePort(p.Protocol, netip.MustParseAddr(p.HostIP), p.HostPort)
		if err != nil {
			for _, r := range res {
				r.Close()
			}
			return nil, err
		}
		ports[i].HostPort = port
		res = append(res, r)
	}
	return res, nil
}

func (m *Manager) holdPorts(containerID string, res []*reservation) {
	if len(res) == 0 {
		return
	}
	m.objMu.Lock()
	defer m.objMu.Unlock()
	m.reservations[containerID] = append(m.reservations[containerID], res...)
}

func (m *Manager) releasePorts(containerID string) {
	m.objMu.Lock()
	res := m.reservations[containerID]
	delete(m.reservations, containerID)
	m.objMu.Unlock()
	for _, r := range res {
		r.Close()
	}
}

func (m *Manager) setupBridge(ctx context.Context, req SetupRequest, n netRecord, ports []api.PortMapping) (*api.NetworkSettings, error) {
	res, err := reservePorts(ports)
	if err != nil {
		return nil, err
	}
	ep := endpointRecord{
		ContainerID: req.ContainerID, NetworkID: n.ID, Mode: driverBridge, Name: req.Name, Hostname: req.Hostname,
		Gateway: n.Gateway, Aliases: req.Aliases, Ports: ports, Veth: m.vethName(req.ContainerID), Created: time.Now().UTC(),
	}
	err = m.tx(ctx, func(tx *sql.Tx) error {
		// Re-read the network for its current lease cursor.
		cur, err := getNetwork(ctx, tx, n.ID)
		if err != nil {
			return err
		}
		want, _ := parseRequestedIP(req.IP, n.Name)
		if ep.IP, err = allocateIP(ctx, tx, cur, want); err != nil {
			return err
		}
		ep.MAC = macFor(ep.IP).String()
		return insertEndpoint(ctx, tx, ep)
	})
	if err != nil {
		for _, r := range res {
			r.Close()
		}
		return nil, err
	}
	m.holdPorts(req.ContainerID, res)
	if err := m.plumbBridge(ctx, ep, n, req); err != nil {
		m.teardownEndpoint(ctx, ep, true)
		return nil, setupErr(err)
	}
	return &api.NetworkSettings{Network: n.Name, IP: ep.IP.String(), Gateway: n.Gateway.String(), MAC: ep.MAC, Ports: ports, NetNS: m.NetNSPath(ep.ContainerID)}, nil
}

// plumbBridge makes the host objects of a leased bridge endpoint.
func (m *Manager) plumbBridge(ctx context.Context, ep endpointRecord, n netRecord, req SetupRequest) error {
	path := m.NetNSPath(ep.ContainerID)
	if err := req.makeNetNS(path); err != nil {
		return err
	}
	hosts, err := req.Files.hosts(hostsFile(ep.IP, ep.Hostname, ep.Name), n.Gateway)
	if err != nil {
		return err
	}
	resolv := req.Files.resolv(resolvConf(m.resolv, n.Gateway), m.resolv, []netip.Addr{n.Gateway})
	if err := writeFiles(req.FilesDir, hosts, resolv, ep.Hostname); err != nil {
		return err
	}
	req.created()
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		// Someone deleted the bridge: make it again.
		if err := m.ensureHostObjects(ctx, n); err != nil {
			return err
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", n.Bridge, err)
		}
	}
	if err := plumb(attachment{NetNS: path, Veth: ep.Veth, Bridge: br.Attrs().Index, IP: ep.IP, Subnet: n.Subnet, Gateway: n.Gateway, NoRoute: n.Internal}); err != nil {
		return err
	}
	if len(ep.Ports) > 0 {
		if err := m.syncPortRules(ctx, ""); err != nil {
			return err
		}
	}
	return m.register(ctx, ep, n.Gateway, n.Internal)
}

// created calls r.Created, if set.
func (r SetupRequest) created() {
	if r.Created != nil {
		r.Created()
	}
}

// register puts the endpoint's names into its network's DNS server,
// starting the server if needed.
func (m *Manager) register(ctx context.Context, ep endpointRecord, gw netip.Addr, internal bool) error {
	s := m.dnsServer(ep.NetworkID)
	if s == nil {
		if err := m.startDNS(ctx, ep.NetworkID, gw, internal); err != nil {
			return err
		}
		s = m.dnsServer(ep.NetworkID)
	}
	if s != nil {
		s.Add(ep.ContainerID, ep.IP, dnsNames(ep)...)
		m.noteAttached(ep.ContainerID, ep.NetworkID)
	}
	return nil
}

// Teardown frees everything Setup and Connect made for the container: DNS
// names, published ports and their rules, the veths, the namespace and
// the leases. Tearing down a container that is not attached is not an
// error.
func (m *Manager) Teardown(ctx context.Context, containerID string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	eps, err := containerEndpoints(ctx, m.db, containerID)
	if err != nil {
		return err
	}
	return m.teardownAll(ctx, containerID, eps)
}

// teardownAll tears down a container's endpoints eps, its further
// networks first, then its namespace.
func (m *Manager) teardownAll(ctx context.Context, containerID string, eps []endpointRecord) error {
	var errs []error
	for i := len(eps) - 1; i >= 0; i-- {
		errs = append(errs, m.teardownEndpoint(ctx, eps[i], true))
	}
	m.releasePorts(containerID)
	if err := removeNetNS(m.NetNSPath(containerID)); err != nil {
		errs = append(errs, errdefs.Unavailable("%v", err))
	}
	return errors.Join(errs...)
}

// teardownEndpoint removes an endpoint's host objects, then its record
// (the lease) once they are all gone, so a failed teardown can be
// retried. With syncPorts it also rebuilds the DNAT chain without the
// endpoint's ports; callers tearing down many endpoints do that once.
func (m *Manager) teardownEndpoint(ctx context.Context, ep endpointRecord, syncPorts bool) error {
	ctx = context.WithoutCancel(ctx)

	var errs []error
	if ep.NetworkID != "" {
		if s := m.dnsServer(ep.NetworkID); s != nil {
			s.Remove(ep.ContainerID)
		}
		m.forgetAttached(ep.ContainerID, ep.NetworkID)
	}
	if ep.Idx == 0 {
		m.releasePorts(ep.ContainerID)
	}
	if syncPorts && len(ep.Ports) > 0 && ep.Mode == driverBridge {
		errs = append(errs, m.syncPortRules(ctx, ep.ContainerID))
	}
	if ep.Mode == driverCNI {
		errs = append(errs, m.cniDel(ctx, ep))
	}
	if ep.Veth != "" {
		// The kernel needs 15-40 ms to unregister a veth; deleting it
		// here keeps the cleanup exact when Teardown returns.
		errs = append(errs, deleteLink(ep.Veth))
	}
	if ep.Idx == 0 {
		errs = append(errs, removeNetNS(m.NetNSPath(ep.ContainerID)))
	}
	if ep.IP.IsValid() && slices.ContainsFunc(ep.Ports, func(p api.PortMapping) bool { return p.Protocol == "udp" }) {
		// Stale UDP flows would keep sending a published port's traffic
		// to the old address.
		f := &netlink.ConntrackFilter{}
		if f.AddIP(netlink.ConntrackReplySrcIP, ep.IP.AsSlice()) == nil {
			netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errdefs.Unavailable("tear down the network of container %s: %v", ep.ContainerID, err)
	}
	return deleteEndpoint(ctx, m.db, ep.ContainerID, ep.Idx)
}

// Restore reconciles the host with the state at daemon start. Containers
// in live (running ones and prepared ones waiting to start) keep their
// attachments: their DNS names are registered again,
// their ports held again and the firewall rules rebuilt. Everything else
// is torn down: attachments of containers not in live, and namespaces,
// veths and rules no attachment owns (left by a crash).
func (m *Manager) Restore(ctx context.Context, live map[string]bool) error {
	defer m.closeUnusedDNSSockets()
	m.mu.Lock()
	defer m.mu.Unlock()
	eps, err := listEndpoints(ctx, m.db, "")
	if err != nil {
		return err
	}
	var errs []error
	keepNS := map[string]bool{}
	keepVeth := map[string]bool{}
	nets := map[string]netRecord{}
	if all, err := listNetworks(ctx, m.db); err == nil {
		for _, n := range all {
			nets[n.ID] = n
		}
	}
	for _, ep := range eps {
		if !live[ep.ContainerID] {
			m.log.Info("tearing down the network of a container that is gone", "container", ep.ContainerID, "name", ep.Name)
			errs = append(errs, m.teardownEndpoint(ctx, ep, false))
			continue
		}
		keepNS[ep.ContainerID] = true
		keepVeth[ep.Veth] = true
		if ep.Idx > 0 {
			m.restoreExtra(ctx, ep, nets[ep.NetworkID])
			continue
		}
		if !isNetNS(m.NetNSPath(ep.ContainerID)) {
			m.log.Warn("network namespace of a running container is gone; restart the container to repair it", "container", ep.ContainerID, "name", ep.Name)
		}
		if ep.Veth != "" && !linkExists(ep.Veth) {
			m.log.Warn("veth of a running container is gone; restart the container to repair it", "container", ep.ContainerID, "veth", ep.Veth)
		}
		m.releasePorts(ep.ContainerID)
		held := slices.Clone(ep.Ports)
		if res, err := reservePorts(held); err != nil {
			m.log.Warn("cannot hold a published port of a running container again", "container", ep.ContainerID, "err", err)
		} else {
			m.holdPorts(ep.ContainerID, res)
		}
		if ep.NetworkID != "" && ep.IP.IsValid() {
			n := nets[ep.NetworkID]
			gw := ep.Gateway
			if n.Driver == driverBridge {
				gw = n.Gateway
			}
			if gw.IsValid() {
				if err := m.register(ctx, ep, gw, n.Internal); err != nil {
					m.log.Warn("cannot register a running container in its network's DNS", "container", ep.ContainerID, "err", err)
				}
			}
		}
	}
	if err := removeOrphanNetNS(m.netnsDir, keepNS); err != nil {
		errs = append(errs, err)
	}
	if names, err := linkNamesWithPrefix(m.vethPrefix()); err != nil {
		errs = append(errs, err)
	} else {
		// Also the short-lived veths that activate a new bridge.
		warm, _ := linkNamesWithPrefix("sw" + m.cfg.Instance)
		for _, name := range append(names, warm...) {
			if !keepVeth[name] {
				m.log.Info("removing left-over veth", "veth", name)
				errs = append(errs, deleteLink(name))
			}
		}
	}
	errs = append(errs, m.fw.Install(ctx), m.syncNetworkRules(ctx), m.syncPortRules(ctx, ""))
	return errors.Join(errs...)
}
