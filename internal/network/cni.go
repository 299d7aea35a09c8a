package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// cniInfo is what skiff reads from a CNI configuration list for display
// and checks; the plugins remain the authority.
type cniInfo struct {
	subnet       netip.Prefix
	gateway      netip.Addr
	bridge       string
	portMappings bool // a plugin takes the portMappings capability
}

// parseCNI parses a configuration list and reads its bridge, subnet,
// gateway and capabilities.
func parseCNI(conf string) (*libcni.NetworkConfigList, cniInfo, error) {
	list, err := libcni.NetworkConfFromBytes([]byte(conf))
	if err != nil {
		return nil, cniInfo{}, errdefs.Invalid("the CNI configuration is not a valid configuration list: %v", err)
	}
	if len(list.Plugins) == 0 {
		return nil, cniInfo{}, errdefs.Invalid("the CNI configuration list %q has no plugins", list.Name)
	}
	var info cniInfo
	for _, p := range list.Plugins {
		var c struct {
			Bridge string `json:"bridge"`
			IPAM   struct {
				Subnet  string `json:"subnet"`
				Gateway string `json:"gateway"`
				Ranges  [][]struct {
					Subnet  string `json:"subnet"`
					Gateway string `json:"gateway"`
				} `json:"ranges"`
			} `json:"ipam"`
		}
		json.Unmarshal(p.Bytes, &c)
		if info.bridge == "" {
			info.bridge = c.Bridge
		}
		subnet, gw := c.IPAM.Subnet, c.IPAM.Gateway
		if len(c.IPAM.Ranges) > 0 && len(c.IPAM.Ranges[0]) > 0 {
			subnet, gw = c.IPAM.Ranges[0][0].Subnet, c.IPAM.Ranges[0][0].Gateway
		}
		if !info.subnet.IsValid() {
			if s, err := netip.ParsePrefix(subnet); err == nil && s.Addr().Is4() {
				info.subnet = s.Masked()
				info.gateway = gatewayOf(info.subnet)
				if g, err := netip.ParseAddr(gw); err == nil {
					info.gateway = g
				}
			}
		}
		if p.Network.Capabilities["portMappings"] {
			info.portMappings = true
		}
	}
	return list, info, nil
}

// validateCNI checks a configuration list and that its plugins are
// installed and speak its version.
func (m *Manager) validateCNI(ctx context.Context, conf string) (cniInfo, error) {
	list, info, err := parseCNI(conf)
	if err != nil {
		return info, err
	}
	if _, err := m.cni.ValidateNetworkList(ctx, list); err != nil {
		return info, errdefs.Invalid("the CNI configuration list %q cannot run here: %v (plugins are looked for in %s)", list.Name, err, strings.Join(m.cfg.CNIPath, ", "))
	}
	return info, nil
}

func (m *Manager) cniRuntime(ep endpointRecord) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: ep.ContainerID, NetNS: m.NetNSPath(ep.ContainerID), IfName: "eth0"}
	if len(ep.Ports) > 0 {
		var pm []map[string]any
		for _, p := range ep.Ports {
			pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": p.Protocol, "hostIP": p.HostIP})
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

func (m *Manager) setupCNI(ctx context.Context, req SetupRequest, n netRecord, ports []api.PortMapping) (*api.NetworkSettings, error) {
	list, info, err := parseCNI(n.CNIConfig)
	if err != nil {
		return nil, err
	}
	if len(ports) > 0 && !info.portMappings {
		return nil, errdefs.Invalid("network %s cannot publish ports: its CNI configuration has no plugin with the portMappings capability (add the portmap plugin)", n.Name)
	}
	res, err := reservePorts(ports)
	if err != nil {
		return nil, err
	}
	ep := endpointRecord{
		ContainerID: req.ContainerID, NetworkID: n.ID, Mode: driverCNI, Name: req.Name, Hostname: req.Hostname,
		Aliases: req.Aliases, Ports: ports, Created: time.Now().UTC(),
	}
	if err := m.tx(ctx, func(tx *sql.Tx) error { return insertEndpoint(ctx, tx, ep) }); err != nil {
		for _, r := range res {
			r.Close()
		}
		return nil, err
	}
	m.holdPorts(req.ContainerID, res)
	if err := m.plumbCNI(ctx, &ep, list, req.FilesDir, req.Files, req.makeNetNS); err != nil {
		m.teardownEndpoint(ctx, ep, false)
		return nil, setupErr(err)
	}
	return &api.NetworkSettings{Network: n.Name, IP: addrString(ep.IP), Gateway: addrString(ep.Gateway), MAC: ep.MAC, Ports: ports, NetNS: m.NetNSPath(ep.ContainerID)}, nil
}

// plumbCNI runs the plugins' ADD and records the address they chose.
func (m *Manager) plumbCNI(ctx context.Context, ep *endpointRecord, list *libcni.NetworkConfigList, filesDir string, files Files, makeNetNS func(string) error) error {
	path := m.NetNSPath(ep.ContainerID)
	if err := makeNetNS(path); err != nil {
		return err
	}
	// The bridge plugin leaves lo down unless the loopback plugin runs.
	if err := bringLoopbackUp(path); err != nil {
		return err
	}
	r, err := m.cni.AddNetworkList(ctx, list, m.cniRuntime(*ep))
	if err != nil {
		return errdefs.Unavailable("CNI plugins of network %s failed: %v", list.Name, err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return errdefs.Unavailable("read the CNI result: %v", err)
	}
	for _, ipc := range res.IPs {
		ip, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		ep.IP = ip.Unmap()
		if g, ok := netip.AddrFromSlice(ipc.Gateway); ok {
			ep.Gateway = g.Unmap()
		}
		if ipc.Interface != nil && *ipc.Interface < len(res.Interfaces) {
			ep.MAC = res.Interfaces[*ipc.Interface].Mac
		}
		break
	}
	if !ep.IP.IsValid() {
		return errdefs.Unavailable("the CNI plugins of network %s gave the container no IPv4 address", list.Name)
	}
	if err := updateEndpointAddress(ctx, m.db, ep.ContainerID, ep.IP, ep.Gateway, ep.MAC); err != nil {
		return err
	}
	nameserver := netip.Addr{}
	if ep.Gateway.IsValid() {
		if err := m.register(ctx, *ep, ep.Gateway, false); err != nil {
			m.log.Warn("no DNS server on the CNI network's gateway; containers use the host's resolvers", "network", list.Name, "err", err)
		} else {
			nameserver = ep.Gateway
		}
	}
	resolv, servers := resolvConf(m.resolv, nameserver), []netip.Addr{nameserver}
	if !nameserver.IsValid() {
		servers = m.resolv.Nameservers
		if len(m.resolv.Raw) > 0 {
			resolv = m.resolv.Raw
		}
	}
	hosts, err := files.hosts(hostsFile(ep.IP, ep.Hostname, ep.Name), ep.Gateway)
	if err != nil {
		return err
	}
	return writeFiles(filesDir, hosts, files.resolv(resolv, m.resolv, servers), ep.Hostname)
}

// cniDel runs the plugins' DEL for an endpoint.
func (m *Manager) cniDel(ctx context.Context, ep endpointRecord) error {
	n, err := getNetwork(ctx, m.db, ep.NetworkID)
	if err != nil {
		return err
	}
	list, _, err := parseCNI(n.CNIConfig)
	if err != nil {
		return err
	}
	if err := m.cni.DelNetworkList(ctx, list, m.cniRuntime(ep)); err != nil {
		return fmt.Errorf("CNI plugins of network %s failed to delete: %w", n.Name, err)
	}
	return nil
}
