package dockerapi

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/api"
)

// dockerTime formats t as Docker does, the zero time included.
func dockerTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// dockerState is a skiff status in Docker's words.
func dockerState(status string) container.ContainerState {
	switch status {
	case api.StatusCreated:
		return container.StateCreated
	case api.StatusRunning, api.StatusStopping:
		return container.StateRunning
	case api.StatusRestarting:
		return container.StateRestarting
	}
	return container.StateExited
}

// statusLine is the human status of docker ps: "Up 3 seconds",
// "Exited (1) 2 minutes ago", "Created".
func statusLine(c api.Container, now time.Time) string {
	switch dockerState(c.State.Status) {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(c.State.StartedAt)) + healthSuffix(c.State.Health)
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	case container.StateExited:
		if c.State.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.State.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	}
	return "Created"
}

// networkName is the Docker name of a container's network.
func networkName(c api.Container) string {
	switch {
	case c.NetworkSettings != nil && c.NetworkSettings.Network != "":
		return c.NetworkSettings.Network
	case c.Config.Network != "":
		return c.Config.Network
	}
	return api.DefaultNetwork
}

// portMap is the container's published ports, with the host ports
// chosen once it runs.
func portMap(c api.Container) network.PortMap {
	ports := c.Config.Ports
	if c.NetworkSettings != nil && len(c.NetworkSettings.Ports) > 0 {
		ports = c.NetworkSettings.Ports
	}
	pm := network.PortMap{}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, ok := network.PortFrom(uint16(p.ContainerPort), network.IPProtocol(proto))
		if !ok {
			continue
		}
		ip := p.HostIP
		if ip == "" {
			ip = api.DefaultHostIP
		}
		b := network.PortBinding{HostPort: strconv.Itoa(p.HostPort)}
		b.HostIP, _ = netip.ParseAddr(ip)
		if p.HostPort == 0 {
			b.HostPort = ""
		}
		pm[port] = append(pm[port], b)
	}
	return pm
}

// endpoints is the container's network attachment in Docker's form.
func endpoints(c api.Container) map[string]*network.EndpointSettings {
	name := networkName(c)
	if name == "none" || name == "host" {
		return map[string]*network.EndpointSettings{name: {NetworkID: name}}
	}
	ep := &network.EndpointSettings{NetworkID: name, Aliases: c.Config.NetworkAliases,
		DNSNames: append([]string{c.Name, shortID(c.ID)}, c.Config.NetworkAliases...)}
	if ns := c.NetworkSettings; ns != nil {
		ep.IPAddress, _ = netip.ParseAddr(ns.IP)
		ep.Gateway, _ = netip.ParseAddr(ns.Gateway)
		if mac, err := net.ParseMAC(ns.MAC); err == nil {
			ep.MacAddress = network.HardwareAddr(mac)
		}
		if ep.IPAddress.IsValid() {
			ep.IPPrefixLen = 16
			ep.EndpointID = c.ID
		}
	}
	return map[string]*network.EndpointSettings{name: ep}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// mountPoints lists the container's mounts in Docker's form.
func mountPoints(c api.Container) []container.MountPoint {
	var out []container.MountPoint
	for _, m := range c.Config.Mounts {
		mp := container.MountPoint{Type: mount.Type(m.Type), Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if m.Type == api.MountVolume {
			mp.Name, mp.Driver = m.Source, "local"
		}
		if m.ReadOnly {
			mp.Mode = "ro"
		}
		out = append(out, mp)
	}
	return out
}

// inspectResponse is c as GET /containers/{id}/json answers it.
func inspectResponse(c api.Container) container.InspectResponse {
	var path string
	var args []string
	if len(c.Process) > 0 {
		path, args = c.Process[0], c.Process[1:]
	}
	st := c.State
	state := dockerState(st.Status)
	res := container.InspectResponse{
		ID: c.ID, Created: dockerTime(c.Created), Path: path, Args: args,
		State: &container.State{
			Status: state, Running: state == container.StateRunning || state == container.StateRestarting,
			Restarting: state == container.StateRestarting, OOMKilled: st.OOMKilled, Pid: st.Pid,
			ExitCode: st.ExitCode, Error: st.Error, StartedAt: dockerTime(st.StartedAt), FinishedAt: dockerTime(st.FinishedAt),
			Health: healthOut(st.Health),
		},
		Image: c.ImageID, LogPath: c.LogPath, Name: "/" + c.Name, RestartCount: st.RestartCount,
		Driver: "overlay2", Platform: "linux",
		HostConfig: hostConfigOf(c),
		Mounts:     mountPoints(c),
		Config:     configOf(c),
		NetworkSettings: &container.NetworkSettings{
			Ports:    portMap(c),
			Networks: endpoints(c),
		},
	}
	if c.NetworkSettings != nil {
		res.NetworkSettings.SandboxKey = c.NetworkSettings.NetNS
	}
	return res
}

// configOf is c's Config in Docker's form.
func configOf(c api.Container) *container.Config {
	cc := c.Config
	out := &container.Config{
		Hostname: cc.Hostname, User: cc.User, Tty: cc.Tty, OpenStdin: cc.OpenStdin,
		AttachStdin: cc.OpenStdin, AttachStdout: true, AttachStderr: true, StdinOnce: cc.OpenStdin,
		Env: cc.Env, Cmd: cc.Cmd, Image: cc.Image, WorkingDir: cc.WorkingDir, Entrypoint: cc.Entrypoint,
		Labels: cc.Labels, StopSignal: cc.StopSignal, StopTimeout: cc.StopTimeout,
		Healthcheck: healthConfigOut(cc.Healthcheck),
	}
	if out.Hostname == "" {
		out.Hostname = shortID(c.ID)
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if len(cc.Ports) > 0 {
		out.ExposedPorts = network.PortSet{}
		for port := range portMap(c) {
			out.ExposedPorts[port] = struct{}{}
		}
	}
	return out
}

// hostConfigOf is c's HostConfig in Docker's form.
func hostConfigOf(c api.Container) *container.HostConfig {
	cc := c.Config
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(networkName(c)), PortBindings: network.PortMap{},
		AutoRemove: cc.AutoRemove, CapAdd: cc.CapAdd, CapDrop: cc.CapDrop, Privileged: cc.Privileged,
		ReadonlyRootfs: cc.ReadonlyRootfs, ExtraHosts: cc.ExtraHosts, DNSSearch: cc.DNSSearch, DNSOptions: cc.DNSOptions,
		Sysctls: cc.Sysctls, LogConfig: logConfigOf(cc.Log), SecurityOpt: api.SecurityOpts(cc),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(cc.RestartPolicy.Name), MaximumRetryCount: cc.RestartPolicy.MaxRetries},
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if cc.Network == "" {
		hc.NetworkMode = "bridge"
	}
	for _, p := range cc.Ports {
		port, ok := network.PortFrom(uint16(p.ContainerPort), network.IPProtocol(orTCP(p.Protocol)))
		if !ok {
			continue
		}
		b := network.PortBinding{}
		b.HostIP, _ = netip.ParseAddr(p.HostIP)
		if p.HostPort > 0 {
			b.HostPort = strconv.Itoa(p.HostPort)
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	for _, d := range cc.DNS {
		if a, err := netip.ParseAddr(d); err == nil {
			hc.DNS = append(hc.DNS, a)
		}
	}
	if cc.Init {
		t := true
		hc.Init = &t
	}
	if cc.ConsoleSize != nil {
		hc.ConsoleSize = [2]uint{cc.ConsoleSize.Height, cc.ConsoleSize.Width}
	}
	hc.Memory, hc.NanoCPUs = cc.Resources.MemoryBytes, cc.Resources.NanoCPUs
	hc.ShmSize, hc.GroupAdd = cc.ShmSize, cc.GroupAdd
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	if cc.Resources.PidsLimit > 0 {
		n := cc.Resources.PidsLimit
		hc.PidsLimit = &n
	}
	for _, d := range cc.Devices {
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	for _, u := range cc.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, m := range cc.Mounts {
		switch m.Type {
		case api.MountTmpfs:
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			opts := "rw"
			if m.ReadOnly {
				opts = "ro"
			}
			if m.TmpfsSize > 0 {
				opts += ",size=" + strconv.FormatInt(m.TmpfsSize, 10)
			}
			if m.TmpfsMode != 0 {
				opts += ",mode=" + strconv.FormatUint(uint64(m.TmpfsMode), 8)
			}
			hc.Tmpfs[m.Target] = opts
		default:
			b := m.Source + ":" + m.Target
			if m.ReadOnly {
				b += ":ro"
			}
			hc.Binds = append(hc.Binds, b)
		}
	}
	return hc
}

func orTCP(proto string) string {
	if proto == "" {
		return "tcp"
	}
	return proto
}

// summary is c as GET /containers/json lists it.
func summary(c api.Container, now time.Time) container.Summary {
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.ImageID,
		Command: strings.Join(c.Process, " "), Created: c.Created.Unix(), Labels: c.Config.Labels,
		State: dockerState(c.State.Status), Status: statusLine(c, now), Health: healthSummary(c.State.Health),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: endpoints(c)},
		Mounts:          mountPoints(c),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(hostConfigOf(c).NetworkMode)
	for port, bs := range portMap(c) {
		for _, b := range bs {
			ps := container.PortSummary{PrivatePort: port.Num(), Type: string(port.Proto())}
			if b.HostPort != "" {
				n, _ := strconv.Atoi(b.HostPort)
				ps.PublicPort, ps.IP = uint16(n), b.HostIP
			}
			s.Ports = append(s.Ports, ps)
		}
	}
	if s.Ports == nil {
		s.Ports = []container.PortSummary{}
	}
	return s
}
