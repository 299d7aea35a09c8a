package dockerapi

import (
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// createConfig maps a Docker create request onto skiff's container
// config. A field skiff cannot honour is refused with ErrInvalid naming
// it, never dropped.
func createConfig(req container.CreateRequest) (api.ContainerConfig, error) {
	if req.Config == nil {
		return api.ContainerConfig{}, errdefs.Invalid("the create request has no container config: send Image and the rest at the top level of the body")
	}
	c := req.Config
	if c.Image == "" {
		return api.ContainerConfig{}, errdefs.Invalid("Config.Image is empty: name the image to run")
	}
	cfg := api.ContainerConfig{
		Image: c.Image, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		Hostname: c.Hostname, Labels: c.Labels, Tty: c.Tty, OpenStdin: c.OpenStdin,
		StopSignal: c.StopSignal, StopTimeout: c.StopTimeout,
	}
	if c.Entrypoint != nil {
		// --entrypoint "" arrives as [""]: no entrypoint at all.
		cfg.Entrypoint = []string{}
		if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "" {
			cfg.Entrypoint = c.Entrypoint
		}
	}
	var err error
	if cfg.Healthcheck, err = healthConfigIn(c.Healthcheck); err != nil {
		return api.ContainerConfig{}, fmt.Errorf("Config.Healthcheck: %w", err)
	}
	for target := range c.Volumes {
		// An anonymous volume (-v /data): a fresh named volume.
		cfg.Mounts = append(cfg.Mounts, api.Mount{Type: api.MountVolume, Source: api.AnonymousVolume(), Target: target})
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := hostConfig(&cfg, hc, c.ExposedPorts); err != nil {
		return api.ContainerConfig{}, err
	}
	if err := networkingConfig(&cfg, hc.NetworkMode, req.NetworkingConfig); err != nil {
		return api.ContainerConfig{}, err
	}
	return cfg, nil
}

// hostConfig maps HostConfig onto cfg.
func hostConfig(cfg *api.ContainerConfig, hc *container.HostConfig, exposed network.PortSet) error {
	if err := unsupportedHostConfig(hc); err != nil {
		return err
	}
	cfg.AutoRemove = hc.AutoRemove
	cfg.Privileged = hc.Privileged
	cfg.CapAdd, cfg.CapDrop = hc.CapAdd, hc.CapDrop
	cfg.ReadonlyRootfs = hc.ReadonlyRootfs
	cfg.ShmSize, cfg.GroupAdd = hc.ShmSize, hc.GroupAdd
	cfg.ExtraHosts = hc.ExtraHosts
	for _, a := range hc.DNS {
		cfg.DNS = append(cfg.DNS, a.String())
	}
	cfg.DNSSearch, cfg.DNSOptions = hc.DNSSearch, hc.DNSOptions
	cfg.Sysctls = hc.Sysctls
	if hc.Init != nil {
		cfg.Init = *hc.Init
	}
	if hc.ConsoleSize[0] > 0 && hc.ConsoleSize[1] > 0 {
		cfg.ConsoleSize = &api.ConsoleSize{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}
	for _, u := range hc.Ulimits {
		cfg.Ulimits = append(cfg.Ulimits, api.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	switch p := hc.RestartPolicy; p.Name {
	case "", container.RestartPolicyDisabled:
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		cfg.RestartPolicy = api.RestartPolicy{Name: api.RestartAlways}
	case container.RestartPolicyOnFailure:
		cfg.RestartPolicy = api.RestartPolicy{Name: api.RestartOnFailure, MaxRetries: p.MaximumRetryCount}
	default:
		return errdefs.Invalid("HostConfig.RestartPolicy.Name %q: use no, always, unless-stopped or on-failure", p.Name)
	}
	if err := resources(cfg, hc.Resources); err != nil {
		return err
	}
	if err := securityDevicesLog(cfg, hc); err != nil {
		return err
	}
	if err := binds(cfg, hc); err != nil {
		return err
	}
	return portBindings(cfg, hc, exposed)
}

// unsupportedHostConfig refuses the HostConfig fields skiff has nothing
// underneath for, naming each.
func unsupportedHostConfig(hc *container.HostConfig) error {
	bad := func(field, hint string) error {
		return errdefs.Invalid("HostConfig.%s is not supported by skiff: %s", field, hint)
	}
	switch {
	case len(hc.VolumesFrom) > 0:
		return bad("VolumesFrom (--volumes-from)", "mount the same named volumes instead")
	case len(hc.Links) > 0:
		return bad("Links (--link)", "put the containers on one network and use their names")
	case hc.PidMode != "" && hc.PidMode != "private":
		return bad("PidMode (--pid)", "each container has its own PID namespace")
	case hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable":
		return bad("IpcMode (--ipc)", "each container has its own IPC namespace")
	case hc.UTSMode != "":
		return bad("UTSMode (--uts)", "each container has its own host name")
	case hc.UsernsMode != "":
		return bad("UsernsMode (--userns)", "leave it out")
	case hc.OomScoreAdj != 0:
		return bad("OomScoreAdj (--oom-score-adj)", "leave it out")
	case hc.CgroupParent != "":
		return bad("CgroupParent (--cgroup-parent)", "skiff places every container's cgroup itself")
	case len(hc.DeviceRequests) > 0:
		return bad("DeviceRequests (--gpus)", "give the device nodes with --device instead")
	case len(hc.DeviceCgroupRules) > 0:
		return bad("DeviceCgroupRules (--device-cgroup-rule)", "give each device with --device, which allows it")
	case hc.CpusetCpus != "" || hc.CpusetMems != "":
		return bad("CpusetCpus (--cpuset-cpus)", "limit CPU time with --cpus instead")
	case hc.CPUShares != 0:
		return bad("CpuShares (--cpu-shares)", "limit CPU time with --cpus instead")
	case hc.BlkioWeight != 0 || len(hc.BlkioDeviceReadBps)+len(hc.BlkioDeviceWriteBps)+len(hc.BlkioDeviceReadIOps)+len(hc.BlkioDeviceWriteIOps)+len(hc.BlkioWeightDevice) > 0:
		return bad("Blkio* (--blkio-weight, --device-read-bps, ...)", "leave them out")
	case hc.MemoryReservation != 0:
		return bad("MemoryReservation (--memory-reservation)", "set a hard limit with --memory")
	case hc.Runtime != "" && hc.Runtime != "runc" && hc.Runtime != "crun":
		return bad("Runtime (--runtime)", "the daemon's --runtime runs every container")
	}
	return nil
}

// resources maps the cgroup limits.
func resources(cfg *api.ContainerConfig, r container.Resources) error {
	cfg.Resources.MemoryBytes = r.Memory
	cfg.Resources.NanoCPUs = r.NanoCPUs
	if r.CPUQuota > 0 {
		if r.NanoCPUs > 0 {
			return errdefs.Invalid("HostConfig.NanoCpus (--cpus) and CpuQuota (--cpu-quota) are both set: give one")
		}
		period := r.CPUPeriod
		if period <= 0 {
			period = 100000
		}
		cfg.Resources.NanoCPUs = r.CPUQuota * 1e9 / period
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		cfg.Resources.PidsLimit = *r.PidsLimit
	}
	return nil
}

// binds maps Binds ("SRC:DST[:OPTS]"), Mounts and Tmpfs.
func binds(cfg *api.ContainerConfig, hc *container.HostConfig) error {
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !filepath.IsAbs(parts[1]) {
			return errdefs.Invalid("HostConfig.Binds %q: use SOURCE:/path[:ro], SOURCE being a volume name or an absolute host path", b)
		}
		m := api.Mount{Type: api.MountVolume, Source: parts[0], Target: parts[1]}
		if filepath.IsAbs(parts[0]) {
			m.Type = api.MountBind
		}
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					m.ReadOnly = true
				case "shared", "rshared", "slave", "rslave", "private", "rprivate":
					if m.Type == api.MountBind {
						m.BindPropagation = o
					}
				case "nocopy":
					m.VolumeNoCopy = m.Type == api.MountVolume
				case "rw", "z", "Z", "":
				default:
					return errdefs.Invalid("HostConfig.Binds %q: option %q is not supported: use ro, rw, nocopy or a propagation such as rslave", b, o)
				}
			}
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	for _, m := range hc.Mounts {
		am, err := mountOf(m)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, am)
	}
	for target, opts := range hc.Tmpfs {
		m, err := api.ParseTmpfs(target, opts)
		if err != nil {
			return fmt.Errorf("HostConfig.Tmpfs: %w", err)
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	return nil
}

// portBindings maps PortBindings, and with PublishAllPorts the image's
// exposed ports, onto published ports. A binding without a host address
// listens on 127.0.0.1, skiff's default (docs/networking.md).
func portBindings(cfg *api.ContainerConfig, hc *container.HostConfig, exposed network.PortSet) error {
	for port, bs := range hc.PortBindings {
		if len(bs) == 0 {
			bs = []network.PortBinding{{}}
		}
		for _, b := range bs {
			pm := api.PortMapping{ContainerPort: int(port.Num()), Protocol: string(port.Proto())}
			if pm.Protocol != "tcp" && pm.Protocol != "udp" {
				return errdefs.Invalid("HostConfig.PortBindings %s: protocol %s is not supported: use tcp or udp", port, pm.Protocol)
			}
			if b.HostIP.IsValid() {
				if !b.HostIP.Is4() {
					continue // Docker's [::] twin of 0.0.0.0
				}
				pm.HostIP = b.HostIP.String()
			}
			if b.HostPort != "" {
				n, err := strconv.Atoi(b.HostPort)
				if err != nil || n < 0 || n > 65535 {
					return errdefs.Invalid("HostConfig.PortBindings %s: host port %q is not a port number (ranges are not supported)", port, b.HostPort)
				}
				pm.HostPort = n
			}
			cfg.Ports = append(cfg.Ports, pm)
		}
	}
	if hc.PublishAllPorts {
		for port := range exposed {
			if _, bound := hc.PortBindings[port]; !bound {
				cfg.Ports = append(cfg.Ports, api.PortMapping{ContainerPort: int(port.Num()), Protocol: string(port.Proto())})
			}
		}
	}
	return nil
}

// networkingConfig maps NetworkMode and the endpoints: the one of
// NetworkMode (or the only one) is the container's first network, the
// others its further networks (docker run --network a --network b), each
// with its aliases and address (--ip).
func networkingConfig(cfg *api.ContainerConfig, mode container.NetworkMode, nc *network.NetworkingConfig) error {
	switch {
	case mode == "" || mode == "default" || mode == "bridge":
	case mode.IsContainer():
		return errdefs.Invalid("HostConfig.NetworkMode %q: sharing another container's network is not supported by skiff", mode)
	default:
		cfg.Network = string(mode)
	}
	if nc == nil || len(nc.EndpointsConfig) == 0 {
		return nil
	}
	isDefault := func(name string) bool { return name == "bridge" || name == "default" || name == api.DefaultNetwork }
	if cfg.Network == "" && len(nc.EndpointsConfig) == 1 {
		for name := range nc.EndpointsConfig {
			if !isDefault(name) {
				cfg.Network = name
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(nc.EndpointsConfig)) {
		ep := nc.EndpointsConfig[name]
		var aliases []string
		ip := ""
		if ep != nil {
			aliases = ep.Aliases
			if ep.IPAMConfig != nil {
				if ep.IPAMConfig.IPv6Address.IsValid() {
					return errdefs.Invalid("NetworkingConfig.EndpointsConfig[%s].IPAMConfig.IPv6Address (--ip6): skiff networks are IPv4 only", name)
				}
				if ep.IPAMConfig.IPv4Address.IsValid() {
					ip = ep.IPAMConfig.IPv4Address.String()
				}
			}
		}
		if name == cfg.Network || cfg.Network == "" && isDefault(name) {
			cfg.NetworkAliases = append(cfg.NetworkAliases, aliases...)
			cfg.IP = ip
			continue
		}
		if isDefault(name) {
			name = api.DefaultNetwork
		}
		cfg.ExtraNetworks = append(cfg.ExtraNetworks, api.NetworkAttachment{Network: name, Aliases: aliases, IP: ip})
	}
	return nil
}

// unixMode is the permission bits of a Go file mode in the kernel's form
// (sticky 01000, setgid 02000, setuid 04000).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	return u
}
