package compose

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Labels docker compose puts on what it creates; skiff uses the same, so
// tools that know them find a project's containers.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelOneoff      = "com.docker.compose.oneoff"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
	// LabelAnonymous marks an anonymous volume (as the Docker engine
	// does); down -v removes those of the project.
	LabelAnonymous = "com.docker.volume.anonymous"
)

// ContainerName is the name of replica n (from 1) of service s.
func ContainerName(p *types.Project, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
}

// ImageName is the image a service runs: its image key, or for a service
// that is only built, PROJECT-SERVICE as docker compose names it.
func ImageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return p.Name + "-" + s.Name
}

// ConfigHash is a digest of what makes a service's containers: a
// container whose com.docker.compose.config-hash differs is recreated.
// The replica count is left out, so scaling keeps the others running.
func ConfigHash(s types.ServiceConfig) string {
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	s.Build = nil
	s.DependsOn = nil
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CreateRequest is the container create request of replica n of s.
func CreateRequest(p *types.Project, s types.ServiceConfig, n int) (api.ContainerCreateRequest, error) {
	cfg := api.ContainerConfig{
		Image:          ImageName(p, s),
		Cmd:            []string(s.Command),
		Env:            environment(s),
		WorkingDir:     s.WorkingDir,
		User:           s.User,
		Hostname:       s.Hostname,
		Labels:         labels(p, s, n),
		Resources:      resources(s),
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		ReadonlyRootfs: s.ReadOnly,
		Privileged:     s.Privileged,
		Init:           s.Init != nil && *s.Init,
		StopSignal:     s.StopSignal,
		Tty:            s.Tty,
		OpenStdin:      s.StdinOpen,
		Healthcheck:    healthConfig(s.HealthCheck),
	}
	if s.Entrypoint != nil {
		cfg.Entrypoint = []string(s.Entrypoint)
	}
	if s.StopGracePeriod != nil {
		secs := int(time.Duration(*s.StopGracePeriod).Seconds() + 0.5)
		if secs < 1 {
			secs = 1
		}
		cfg.StopTimeout = &secs
	}
	var err error
	if cfg.RestartPolicy, err = restartPolicy(s.Restart); err != nil {
		return api.ContainerCreateRequest{}, errdefs.Invalid("%s: service %s: %v", locate(p, s.Name, "restart"), s.Name, err)
	}
	switch s.NetworkMode {
	case "host", "none":
		cfg.Network = s.NetworkMode
	default:
		if nets := serviceNetworks(p, s); len(nets) > 0 {
			cfg.Network = networkName(p, nets[0])
			cfg.NetworkAliases = append([]string{s.Name}, aliases(s, nets[0])...)
			cfg.IP = ipv4Address(s, nets[0])
			for _, n := range nets[1:] {
				cfg.ExtraNetworks = append(cfg.ExtraNetworks, api.NetworkAttachment{Network: networkName(p, n), Aliases: append([]string{s.Name}, aliases(s, n)...), IP: ipv4Address(s, n)})
			}
		}
		for _, pc := range s.Ports {
			cfg.Ports = append(cfg.Ports, portMapping(pc))
		}
	}
	if cfg.Mounts, err = mounts(p, s, ContainerName(p, s, n)); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if err := hostsDNS(p, s, &cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if err := limits(p, s, &cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if err := runOpts(p, s, &cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	return api.ContainerCreateRequest{Name: ContainerName(p, s, n), Config: cfg}, nil
}

// hostsDNS sets cfg's extra hosts and resolver settings from s's
// extra_hosts, dns, dns_search and dns_opt, refusing bad values.
func hostsDNS(p *types.Project, s types.ServiceConfig, cfg *api.ContainerConfig) error {
	hosts := s.ExtraHosts.AsList(":")
	slices.Sort(hosts)
	for _, k := range []struct {
		key string
		c   api.ContainerConfig
	}{
		{"extra_hosts", api.ContainerConfig{ExtraHosts: hosts}}, {"dns", api.ContainerConfig{DNS: s.DNS}},
		{"dns_search", api.ContainerConfig{DNSSearch: s.DNSSearch}}, {"dns_opt", api.ContainerConfig{DNSOptions: s.DNSOpts}},
	} {
		if err := api.CheckHostsDNS(&k.c); err != nil {
			return errdefs.Invalid("%s: service %s: %v", locate(p, s.Name, k.key), s.Name, err)
		}
	}
	if len(hosts) > 0 {
		cfg.ExtraHosts = hosts
	}
	cfg.DNS, cfg.DNSSearch, cfg.DNSOptions = s.DNS, s.DNSSearch, s.DNSOpts
	return nil
}

// limits sets cfg's ulimits and sysctls from s's ulimits ("nofile: 1024"
// or "{soft, hard}") and sysctls, refusing bad ones.
func limits(p *types.Project, s types.ServiceConfig, cfg *api.ContainerConfig) error {
	for _, name := range sortedKeys(s.Ulimits) {
		u := s.Ulimits[name]
		soft, hard := u.Soft, u.Hard
		if u.Single != 0 {
			soft, hard = u.Single, u.Single
		}
		cfg.Ulimits = append(cfg.Ulimits, api.Ulimit{Name: name, Soft: int64(soft), Hard: int64(hard)})
	}
	if len(s.Sysctls) > 0 {
		cfg.Sysctls = map[string]string(s.Sysctls)
	}
	for _, k := range []struct {
		key string
		c   api.ContainerConfig
	}{
		{"ulimits", api.ContainerConfig{Ulimits: cfg.Ulimits}}, {"sysctls", api.ContainerConfig{Sysctls: cfg.Sysctls, Network: cfg.Network}},
	} {
		if err := api.CheckLimits(&k.c); err != nil {
			return errdefs.Invalid("%s: service %s: %v", locate(p, s.Name, k.key), s.Name, err)
		}
	}
	return nil
}

func environment(s types.ServiceConfig) []string {
	var env []string
	for _, k := range sortedKeys(s.Environment) {
		if v := s.Environment[k]; v != nil {
			env = append(env, k+"="+*v)
		}
	}
	return env
}

func labels(p *types.Project, s types.ServiceConfig, n int) map[string]string {
	l := map[string]string{}
	for k, v := range s.Labels {
		l[k] = v
	}
	l[LabelProject] = p.Name
	l[LabelService] = s.Name
	l[LabelNumber] = strconv.Itoa(n)
	l[LabelConfigHash] = serviceHash(p, s)
	l[LabelOneoff] = "False"
	l[LabelWorkingDir] = p.WorkingDir
	l[LabelConfigFiles] = strings.Join(p.ComposeFiles, ",")
	return l
}

func resources(s types.ServiceConfig) api.Resources {
	r := api.Resources{MemoryBytes: int64(s.MemLimit), NanoCPUs: int64(float64(s.CPUS) * 1e9), PidsLimit: s.PidsLimit}
	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		l := s.Deploy.Resources.Limits
		if l.MemoryBytes > 0 {
			r.MemoryBytes = int64(l.MemoryBytes)
		}
		if l.NanoCPUs > 0 {
			r.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
		}
		if l.Pids > 0 {
			r.PidsLimit = l.Pids
		}
	}
	if s.MemReservation > 0 {
		r.MemoryReservationBytes = int64(s.MemReservation)
	}
	if s.Deploy != nil && s.Deploy.Resources.Reservations != nil && s.Deploy.Resources.Reservations.MemoryBytes > 0 {
		r.MemoryReservationBytes = int64(s.Deploy.Resources.Reservations.MemoryBytes)
	}
	return r
}

// restartPolicy maps compose's restart values; unless-stopped becomes
// always (a container stopped by the user is not restarted by skiff
// either way).
func restartPolicy(r string) (api.RestartPolicy, error) {
	name, max, _ := strings.Cut(r, ":")
	switch name {
	case "", "no":
		return api.RestartPolicy{Name: api.RestartNo}, nil
	case "always", "unless-stopped":
		return api.RestartPolicy{Name: api.RestartAlways}, nil
	case "on-failure":
		n := 0
		if max != "" {
			var err error
			if n, err = strconv.Atoi(max); err != nil || n < 0 {
				return api.RestartPolicy{}, fmt.Errorf("restart %q: the retry count must be a number", r)
			}
		}
		return api.RestartPolicy{Name: api.RestartOnFailure, MaxRetries: n}, nil
	}
	return api.RestartPolicy{}, fmt.Errorf("restart %q: use no, always, unless-stopped or on-failure[:N]", r)
}

// networkName is the daemon's name of the project network key.
func networkName(p *types.Project, key string) string {
	if n, ok := p.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return p.Name + "_" + key
}

func aliases(s types.ServiceConfig, net string) []string {
	if c := s.Networks[net]; c != nil {
		return c.Aliases
	}
	return nil
}

// ipv4Address is the service's address on the network net (its
// ipv4_address), or empty.
func ipv4Address(s types.ServiceConfig, net string) string {
	if c := s.Networks[net]; c != nil {
		return c.Ipv4Address
	}
	return ""
}

func portMapping(pc types.ServicePortConfig) api.PortMapping {
	host, _ := strconv.Atoi(pc.Published)
	return api.PortMapping{HostIP: pc.HostIP, HostPort: host, ContainerPort: int(pc.Target), Protocol: pc.Protocol}
}

// mounts are the service's volumes, binds, secrets and configs, for its
// container named container.
func mounts(p *types.Project, s types.ServiceConfig, container string) ([]api.Mount, error) {
	var out []api.Mount
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				out = append(out, api.Mount{Type: api.MountVolume, Source: AnonymousVolume(container, v.Target), Target: v.Target, ReadOnly: v.ReadOnly})
				continue
			}
			name := v.Source
			if d, ok := p.Volumes[v.Source]; ok && d.Name != "" {
				name = d.Name
			}
			out = append(out, api.Mount{Type: api.MountVolume, Source: name, Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeBind:
			out = append(out, api.Mount{Type: api.MountBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeTmpfs:
			m := api.Mount{Type: api.MountTmpfs, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Tmpfs != nil {
				m.TmpfsSize = int64(v.Tmpfs.Size)
			}
			out = append(out, m)
		}
	}
	for _, t := range s.Tmpfs {
		if m, err := parseTmpfs(t); err == nil {
			out = append(out, m)
		}
	}
	for _, sec := range s.Secrets {
		d, ok := p.Secrets[sec.Source]
		if !ok || d.File == "" || copiedSecret(p, s, sec) {
			continue
		}
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !path.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		out = append(out, api.Mount{Type: api.MountBind, Source: d.File, Target: target, ReadOnly: true})
	}
	for _, c := range s.Configs {
		d, ok := p.Configs[c.Source]
		if !ok || d.File == "" || copiedConfig(p, c) {
			continue
		}
		out = append(out, api.Mount{Type: api.MountBind, Source: d.File, Target: configTarget(c), ReadOnly: true})
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return ks
}

// OneoffRequest is the request of a `compose run` container of s: the
// service's configuration with cmd (when given) and env added, no
// published ports, named PROJECT-SERVICE-run-SUFFIX and labelled oneoff.
func OneoffRequest(p *types.Project, s types.ServiceConfig, cmd, env []string) (api.ContainerCreateRequest, error) {
	req, err := CreateRequest(p, s, 1)
	if err != nil {
		return req, err
	}
	var b [6]byte
	rand.Read(b[:])
	req.Name = fmt.Sprintf("%s-%s-run-%s", p.Name, s.Name, hex.EncodeToString(b[:]))
	req.Config.Labels[LabelOneoff] = "True"
	for i, m := range req.Config.Mounts {
		if m.Type == api.MountVolume && m.Source == AnonymousVolume(ContainerName(p, s, 1), m.Target) {
			req.Config.Mounts[i].Source = AnonymousVolume(req.Name, m.Target)
		}
	}
	delete(req.Config.Labels, LabelNumber)
	req.Config.Ports = nil
	req.Config.NetworkAliases = nil
	req.Config.RestartPolicy = api.RestartPolicy{Name: api.RestartNo}
	if len(cmd) > 0 {
		req.Config.Cmd = cmd
	}
	req.Config.Env = append(req.Config.Env, env...)
	return req, nil
}

// parseTmpfs reads a tmpfs entry, "PATH" or "PATH:size=BYTES[k|m|g]".
func parseTmpfs(t string) (api.Mount, error) {
	target, opts, _ := strings.Cut(t, ":")
	m := api.Mount{Type: api.MountTmpfs, Target: target}
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		k, v, _ := strings.Cut(o, "=")
		if k != "size" {
			return m, fmt.Errorf("%s: only the size option is supported", t)
		}
		var b types.UnitBytes
		if err := b.DecodeMapstructure(v); err != nil {
			return m, fmt.Errorf("%s: %v", t, err)
		}
		m.TmpfsSize = int64(b)
	}
	return m, nil
}

// AnonymousVolume names the anonymous volume a service's container
// mounts at target: CONTAINER_<12 hex digits of target's hash>. A
// replica recreated under its number gets its volume back, as docker
// compose keeps a container's anonymous volumes across a recreate.
func AnonymousVolume(container, target string) string {
	sum := sha256.Sum256([]byte(target))
	return container + "_" + hex.EncodeToString(sum[:])[:12]
}

// anonymousMounts are the mounts of req that are anonymous volumes of
// service s's replicas or one-off containers.
func anonymousMounts(req api.ContainerCreateRequest) []api.Mount {
	var out []api.Mount
	for _, m := range req.Config.Mounts {
		if m.Type == api.MountVolume && m.Source == AnonymousVolume(req.Name, m.Target) {
			out = append(out, m)
		}
	}
	return out
}

// hasAnonymousVolumes reports whether s mounts an anonymous volume.
func hasAnonymousVolumes(s types.ServiceConfig) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "" {
			return true
		}
	}
	return false
}
