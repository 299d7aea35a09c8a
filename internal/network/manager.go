package network

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/lazyregexp"
	"skiff.dev/skiff/internal/network/dns"
	"skiff.dev/skiff/internal/network/firewall"
)

// Config configures a Manager.
type Config struct {
	// StateDir is per daemon: network namespaces are bind-mounted at
	// StateDir/netns/<container id>, the CNI cache is StateDir/cni.
	StateDir string
	// DB is skiff's state database (store.Store.DB); networks and leases
	// persist in its tables networks and network_endpoints.
	DB *sql.DB
	// Instance tells this daemon's host objects from another daemon's on
	// the same host: exactly 6 lowercase letters or digits (the daemon
	// uses a short hash of its root). Empty derives it from StateDir.
	Instance string
	// DefaultSubnet is the default network's subnet; "" picks a free /24
	// from Pool.
	DefaultSubnet string
	// ResolvConf is the host's resolver configuration (default
	// /etc/resolv.conf): its nameservers are where the DNS servers
	// forward, its search and options lines go to containers.
	ResolvConf string
	// CNIPath lists the directories holding CNI plugins (default
	// /usr/lib/cni, then /opt/cni/bin).
	CNIPath []string
	// DNSSockets are bound DNS sockets handed over by the daemon this
	// one takes over from, by address ("gateway:53"): a network's DNS
	// server serves on them instead of binding its address. The Manager
	// closes the files it did not use once Restore is done.
	DNSSockets map[string]dns.Sockets
	Logger     *slog.Logger
}

// Manager manages one daemon's networks and container attachments. It is
// safe for concurrent use.
type Manager struct {
	cfg      Config
	db       *sql.DB
	log      *slog.Logger
	fw       *firewall.Firewall
	cni      *libcni.CNIConfig
	resolv   hostResolv
	netnsDir string

	// mu is held exclusively to change networks (Create, Remove,
	// Restore) and shared by attachments (Setup, Teardown).
	mu sync.RWMutex
	// portsMu serializes rebuilding the DNAT chain from the state.
	portsMu sync.Mutex

	objMu        sync.Mutex
	dns          map[string]*dns.Server    // network ID → DNS server
	reservations map[string][]*reservation // container ID → held ports
	// attached lists, by container ID, the networks whose DNS has the
	// container's names, in the order they were attached.
	attached map[string][]string
	closed   bool
	// instanceLock is held while the Manager lives (see instance.go).
	instanceLock *os.File
}

var (
	instanceRE    = lazyregexp.New(`^[a-z0-9]{6}$`)
	networkNameRE = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	containerIDRE = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	dnsNameRE     = lazyregexp.New(`^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$`)
)

// InstanceFor derives an instance name from a daemon's root directory.
func InstanceFor(root string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return hex.EncodeToString(sum[:])[:6]
}

// New opens the network state and makes sure the default network and the
// host objects of every network exist (bridges, firewall chains, DNS
// servers). Call Restore next.
func New(ctx context.Context, cfg Config) (_ *Manager, err error) {
	if cfg.StateDir == "" || !filepath.IsAbs(cfg.StateDir) {
		return nil, errdefs.Invalid("network state directory %q must be an absolute path", cfg.StateDir)
	}
	if cfg.DB == nil {
		return nil, errdefs.Invalid("network manager needs the state database")
	}
	if cfg.Instance == "" {
		cfg.Instance = InstanceFor(cfg.StateDir)
	}
	if !instanceRE.MatchString(cfg.Instance) {
		return nil, errdefs.Invalid("network instance %q must be exactly 6 lowercase letters or digits", cfg.Instance)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if len(cfg.CNIPath) == 0 {
		cfg.CNIPath = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{
		cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "network"),
		netnsDir:     filepath.Join(cfg.StateDir, "netns"),
		dns:          map[string]*dns.Server{},
		reservations: map[string][]*reservation{},
		attached:     map[string][]string{},
	}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.CNIPath, filepath.Join(cfg.StateDir, "cni"), nil)
	if data, err := os.ReadFile(cfg.ResolvConf); err == nil {
		m.resolv = parseResolvConf(data)
	} else {
		m.log.Warn("cannot read the host's resolver configuration: containers will only resolve each other", "path", cfg.ResolvConf, "err", err)
	}
	if m.fw, err = firewall.New(cfg.Instance); err != nil {
		return nil, err
	}
	if m.instanceLock, err = lockInstance(cfg.Instance, cfg.StateDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := ensureSharedMount(m.netnsDir); err != nil {
		return nil, errdefs.Unavailable("prepare network namespace directory: %v", err)
	}
	if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	if err := m.fw.Install(ctx); err != nil {
		return nil, err
	}
	unlock, err := lockHost()
	if err != nil {
		return nil, errdefs.Unavailable("%v", err)
	}
	defer unlock()
	m.collectDeadInstances(ctx)
	if err := m.ensureDefault(ctx); err != nil {
		return nil, err
	}
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return nil, err
	}
	// The rules first: a bridge left by an earlier run may still route
	// 127.0.0.1 (see setLocalnet), and must not do so without its guard.
	if err := m.syncNetworkRules(ctx); err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Driver != driverBridge {
			continue
		}
		if err := m.ensureHostObjects(ctx, n); err != nil {
			if n.Name == api.DefaultNetwork {
				return nil, err
			}
			m.log.Error("network is not usable", "network", n.Name, "err", err)
		}
	}
	if err := m.removeOrphanBridges(nets); err != nil {
		m.log.Warn("cannot remove left-over bridges", "err", err)
	}
	return m, nil
}

// ensureDefault creates the default network's record if it is missing,
// and moves it to cfg.DefaultSubnet when that changed and nothing is
// attached.
func (m *Manager) ensureDefault(ctx context.Context) error {
	n, err := getNetwork(ctx, m.db, api.DefaultNetwork)
	if errors.Is(err, errdefs.ErrNotFound) {
		_, err = m.create(ctx, api.NetworkCreateRequest{Name: api.DefaultNetwork, Subnet: m.cfg.DefaultSubnet}, false)
		if err != nil {
			return fmt.Errorf("create the default network: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if m.cfg.DefaultSubnet == "" {
		return m.repickDefault(ctx, n)
	}
	want, err := parseSubnet(m.cfg.DefaultSubnet)
	if err != nil {
		return fmt.Errorf("default network: %w", err)
	}
	if want == n.Subnet {
		return nil
	}
	eps, err := listEndpoints(ctx, m.db, n.ID)
	if err != nil {
		return err
	}
	if len(eps) > 0 {
		m.log.Warn("default network keeps its subnet while containers are attached", "subnet", n.Subnet, "configured", want)
		return nil
	}
	if err := m.checkSubnetFree(ctx, m.db, want, n.ID); err != nil {
		return fmt.Errorf("default network: %w", err)
	}
	if err := deleteLink(n.Bridge); err != nil {
		return errdefs.Unavailable("%v", err)
	}
	_, err = m.db.ExecContext(ctx, `UPDATE networks SET subnet = ?, gateway = ?, ip_cursor = '' WHERE id = ?`, want.String(), gatewayOf(want).String(), n.ID)
	return dbErr("update the default network", err)
}

// repickDefault moves the default network, when no subnet is configured
// for it, to a free subnet if its bridge is gone (a reboot, a purge),
// nothing is attached, and its subnet has meanwhile been taken by a host
// route (another daemon's network, a VPN): the daemon then starts instead
// of refusing to. A network that still has its bridge keeps its subnet.
func (m *Manager) repickDefault(ctx context.Context, n netRecord) error {
	if n.Driver != driverBridge || linkExists(n.Bridge) {
		return nil
	}
	if err := m.checkSubnetFree(ctx, m.db, n.Subnet, n.ID); err == nil || !errors.Is(err, errdefs.ErrConflict) {
		return err
	}
	eps, err := listEndpoints(ctx, m.db, n.ID)
	if err != nil || len(eps) > 0 {
		return err // ensureHostObjects says what overlaps
	}
	p, err := m.pickSubnet(ctx, m.db)
	if err != nil {
		return fmt.Errorf("default network: %w", err)
	}
	m.log.Warn("default network moves to a free subnet: its own was taken while its bridge was gone", "from", n.Subnet, "to", p)
	_, err = m.db.ExecContext(ctx, `UPDATE networks SET subnet = ?, gateway = ?, ip_cursor = '' WHERE id = ?`, p.String(), gatewayOf(p).String(), n.ID)
	return dbErr("update the default network", err)
}

// ensureHostObjects makes the bridge and DNS server of a bridge network.
func (m *Manager) ensureHostObjects(ctx context.Context, n netRecord) error {
	if !linkExists(n.Bridge) {
		routes, err := hostRoutes("")
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst.Overlaps(n.Subnet) {
				return errdefs.Conflict("network %s: its subnet %s overlaps the host route %s: remove the network and create it with another --subnet (for the default network, configure another default subnet)", n.Name, n.Subnet, r)
			}
		}
	}
	if _, err := ensureBridge(n.Bridge, n.Subnet, n.Gateway, m.warmName(n.Seq)); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return m.startDNS(ctx, n.ID, n.Gateway, n.Internal)
}

// startDNS starts the network's DNS server on gw:53 unless it runs.
func (m *Manager) startDNS(ctx context.Context, netID string, gw netip.Addr, internal bool) error {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	if m.closed {
		return errdefs.Unavailable("network manager is closed")
	}
	if s := m.dns[netID]; s != nil {
		return nil
	}
	var ups []string
	if !internal {
		ups = m.resolv.upstreams()
	}
	addr := netip.AddrPortFrom(gw, 53).String()
	cfg := dns.Config{Addr: addr, Upstreams: ups, Logger: m.log, Also: m.alsoDNS(netID)}
	if socks, ok := m.cfg.DNSSockets[addr]; ok {
		delete(m.cfg.DNSSockets, addr)
		defer socks.Close()
		cfg.Sockets = &socks
	}
	s, err := dns.Listen(ctx, cfg)
	if err != nil {
		return errdefs.Unavailable("start the DNS server of the network: %v", err)
	}
	m.dns[netID] = s
	return nil
}

// DNSSockets returns copies of the DNS servers' sockets by address, for
// a daemon to hand them to the one taking over; the caller closes them.
func (m *Manager) DNSSockets() (map[string]dns.Sockets, error) {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	out := make(map[string]dns.Sockets, len(m.dns))
	for _, s := range m.dns {
		f, err := s.Files()
		if err != nil {
			for _, f := range out {
				f.Close()
			}
			return nil, err
		}
		out[s.Addr()] = f
	}
	return out, nil
}

// closeUnusedDNSSockets closes the handed-over DNS sockets no network
// took.
func (m *Manager) closeUnusedDNSSockets() {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	for addr, socks := range m.cfg.DNSSockets {
		socks.Close()
		delete(m.cfg.DNSSockets, addr)
	}
}

func (m *Manager) dnsServer(netID string) *dns.Server {
	m.objMu.Lock()
	defer m.objMu.Unlock()
	return m.dns[netID]
}

func (m *Manager) stopDNS(netID string) {
	m.objMu.Lock()
	s := m.dns[netID]
	delete(m.dns, netID)
	m.objMu.Unlock()
	if s != nil {
		s.Close()
	}
}

// bridgeName is the host bridge of the network numbered seq.
func (m *Manager) bridgeName(seq int) string {
	return "skf" + m.cfg.Instance + "-" + strconv.Itoa(seq)
}

// warmName names the short-lived veth that activates a new bridge.
func (m *Manager) warmName(seq int) string {
	return "sw" + m.cfg.Instance + strconv.Itoa(seq%100000)
}

// vethPrefix starts the name of every host veth of this instance.
func (m *Manager) vethPrefix() string { return "sv" + m.cfg.Instance }

// vethName is the host side of a container's veth pair (15 characters,
// the kernel's limit).
func (m *Manager) vethName(containerID string) string {
	sum := sha256.Sum256([]byte(containerID))
	return m.vethPrefix() + hex.EncodeToString(sum[:])[:15-len(m.vethPrefix())]
}

// NetNSPath is where Setup bind-mounts the container's network namespace.
// It is deterministic, so a container spec can name it before Setup runs.
func (m *Manager) NetNSPath(containerID string) string {
	return filepath.Join(m.netnsDir, containerID)
}

// Instance returns the instance name the host objects are named with.
func (m *Manager) Instance() string { return m.cfg.Instance }

// syncNetworkRules rebuilds the firewall's network chains from the state.
func (m *Manager) syncNetworkRules(ctx context.Context) error {
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return err
	}
	var rules []firewall.Network
	for _, n := range nets {
		if n.Driver == driverBridge {
			rules = append(rules, firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal})
		}
	}
	return m.fw.SetNetworks(ctx, rules)
}

// syncPortRules rebuilds the DNAT chain from the state, leaving out the
// ports of the container exclude (being torn down), then sets
// route_localnet on the bridges as the ports need it (see setLocalnet).
func (m *Manager) syncPortRules(ctx context.Context, exclude string) error {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	eps, err := listEndpoints(ctx, m.db, "")
	if err != nil {
		return err
	}
	var ports []firewall.Port
	localNets := map[string]bool{} // network ID → a port answers on 127.0.0.1
	for _, ep := range eps {
		if ep.ContainerID == exclude || ep.Mode != driverBridge || !ep.IP.IsValid() {
			continue
		}
		for _, p := range ep.Ports {
			hip, _ := netip.ParseAddr(p.HostIP)
			ports = append(ports, firewall.Port{Owner: ep.Name + " " + shortID(ep.ContainerID), Proto: p.Protocol, HostIP: hip, HostPort: p.HostPort, IP: ep.IP, Port: p.ContainerPort})
			if !hip.IsValid() || hip.IsUnspecified() || hip.IsLoopback() {
				localNets[ep.NetworkID] = true
			}
		}
	}
	if err := m.fw.SetPorts(ctx, ports); err != nil {
		return err
	}
	return m.setLocalnet(ctx, localNets)
}

// setLocalnet turns route_localnet on for the bridges of the networks in
// local and off for the others. The kernel routes 127.0.0.1 to and from a
// bridge only with it, which DNAT from the host's loopback to a container
// needs; it is on only where a port is published on 127.0.0.1 (or on
// every address), and only for networks whose loopback guard (the raw
// rules of firewall.RawRules, applied by syncNetworkRules when the
// network was made or the daemon started) is in place.
func (m *Manager) setLocalnet(ctx context.Context, local map[string]bool) error {
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets {
		path := filepath.Join("/proc/sys/net/ipv4/conf", n.Bridge, "route_localnet")
		if n.Driver != driverBridge || !fileExists(path) {
			continue
		}
		v := "0"
		if local[n.ID] {
			v = "1"
		}
		errs = append(errs, writeSysctl(path, v))
	}
	return errors.Join(errs...)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// removeOrphanBridges deletes bridges of this instance no network owns
// (left by a crash during network rm).
func (m *Manager) removeOrphanBridges(nets []netRecord) error {
	owned := map[string]bool{}
	for _, n := range nets {
		owned[n.Bridge] = true
	}
	names, err := linkNamesWithPrefix("skf" + m.cfg.Instance + "-")
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if !owned[name] {
			m.log.Info("removing left-over bridge", "bridge", name)
			errs = append(errs, deleteLink(name))
		}
	}
	return errors.Join(errs...)
}

// Close stops the DNS servers and releases the port reservations. What
// running containers need stays on the host (their namespaces and veths,
// their networks' bridges and rules), so they keep their networking while
// no daemon runs; the bridges of networks without containers, and skiff's
// chains when no container is attached at all, are removed (New makes
// them again).
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.release() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.removeIdle(ctx)
	unlockInstance(m.instanceLock, false)
	return err
}

// release stops the DNS servers and closes the port reservations, as the
// daemon's exit would; it reports false when that was done already.
func (m *Manager) release() bool {
	m.objMu.Lock()
	servers := m.dns
	res := m.reservations
	was := m.closed
	m.dns = map[string]*dns.Server{}
	m.reservations = map[string][]*reservation{}
	m.attached = map[string][]string{}
	m.closed = true
	m.objMu.Unlock()
	for _, s := range servers {
		s.Close()
	}
	for _, rs := range res {
		for _, r := range rs {
			r.Close()
		}
	}
	return !was
}

// removeIdle deletes the host objects no attachment needs.
func (m *Manager) removeIdle(ctx context.Context) error {
	nets, err := listNetworks(ctx, m.db)
	if err != nil {
		return err
	}
	eps, err := listEndpoints(ctx, m.db, "")
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, ep := range eps {
		used[ep.NetworkID] = true
	}
	var errs []error
	var keep []firewall.Network
	for _, n := range nets {
		if n.Driver != driverBridge {
			continue
		}
		if used[n.ID] {
			keep = append(keep, firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal})
			continue
		}
		errs = append(errs, deleteLink(n.Bridge))
	}
	if len(eps) > 0 {
		return errors.Join(append(errs, m.fw.SetNetworks(ctx, keep))...)
	}
	errs = append(errs, m.fw.Uninstall(ctx), removeOrphanNetNS(m.netnsDir, nil), unmountDir(m.netnsDir))
	return errors.Join(errs...)
}
