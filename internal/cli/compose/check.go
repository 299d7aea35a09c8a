package compose

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api/errdefs"
)

// supportedKeys are the service keys skiff honours, as paths in the
// resolved model: "a.b" is key b under a, "a[]" an item of the list a. A
// path listed covers everything under it.
var supportedKeys = set(
	"name", "image", "command", "entrypoint", "environment", "env_file",
	"build.context", "build.dockerfile", "build.args", "build.target",
	"ports[].mode", "ports[].host_ip", "ports[].target", "ports[].published", "ports[].protocol", "ports[].name",
	"expose", "volumes[].type", "volumes[].source", "volumes[].target", "volumes[].read_only",
	"volumes[].volume", "volumes[].bind.create_host_path", "volumes[].tmpfs.size", "tmpfs",
	"depends_on", "healthcheck", "restart", "hostname", "user", "working_dir",
	"stop_signal", "stop_grace_period", "labels", "profiles", "container_name",
	"networks", "network_mode", "deploy.replicas", "deploy.resources.limits.cpus",
	"deploy.resources.limits.memory", "deploy.resources.limits.pids", "deploy.placement",
	"deploy.resources.reservations.memory", "mem_reservation",
	"scale", "cap_add", "cap_drop", "read_only", "privileged", "mem_limit", "cpus", "pids_limit",
	"secrets[].source", "secrets[].target", "secrets[].mode", "secrets[].uid", "secrets[].gid", "configs[].source", "configs[].target", "configs[].mode", "configs[].uid", "configs[].gid",
	"tty", "stdin_open", "extra_hosts", "dns", "dns_search", "dns_opt", "ulimits", "sysctls", "init", "x-skiff",
	"logging.driver", "logging.options", "devices", "security_opt",
)

// unsupportedWhy says, for some keys skiff does not honour, why or what
// it does instead.
var unsupportedWhy = map[string]string{
	"deploy.resources.reservations.cpus":    "a CPU reservation places containers on the nodes of a swarm; on one machine nothing is reserved",
	"deploy.resources.reservations.devices": "devices are not reserved",
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// Issue is a key of one service that skiff does not honour.
type Issue struct {
	Service string
	Key     string // path in the model, e.g. "deploy.resources.reservations"
	Why     string // empty, or what skiff does instead
}

func (i Issue) String() string {
	s := i.Key
	if i.Service != "" {
		s = i.Service + ": " + i.Key
	}
	if i.Why != "" {
		s += " (" + i.Why + ")"
	}
	return s
}

// Unsupported lists, service by service and in a stable order, the keys
// of p that skiff does not honour.
func Unsupported(p *types.Project) []Issue {
	var out []Issue
	for _, name := range sortedServices(p) {
		s := p.Services[name]
		for _, k := range keysOutside(s, supportedKeys) {
			out = append(out, Issue{Service: name, Key: k, Why: unsupportedWhy[k]})
		}
		out = append(out, valueIssues(p, s)...)
	}
	return append(out, networkIssues(p)...)
}

// networkIssues lists what skiff does not honour in the project's own
// networks: a bridge network with at most one IPv4 subnet, whose gateway
// is its first address (external networks exist already: nothing of
// theirs is read).
func networkIssues(p *types.Project) []Issue {
	var out []Issue
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[key]
		if bool(n.External) {
			continue
		}
		at := "networks." + key + "."
		add := func(k, why string) { out = append(out, Issue{Key: at + k, Why: why}) }
		if n.Driver != "" && n.Driver != "bridge" {
			add("driver", "skiff networks are bridges on this machine, not "+n.Driver)
		}
		if len(n.DriverOpts) > 0 {
			add("driver_opts", "")
		}
		if n.EnableIPv6 != nil && *n.EnableIPv6 {
			add("enable_ipv6", "skiff networks are IPv4 only")
		}
		if n.Ipam.Driver != "" && n.Ipam.Driver != "default" {
			add("ipam.driver", "skiff leases the addresses itself")
		}
		if len(n.Ipam.Options) > 0 {
			add("ipam.options", "")
		}
		for i, c := range n.Ipam.Config {
			if c == nil {
				continue
			}
			if i > 0 {
				add("ipam.config", "a skiff network has one subnet: the first is used")
				break
			}
			if _, err := subnetOf(c); err != nil {
				add("ipam.config.subnet", err.Error())
			}
			if c.IPRange != "" {
				add("ipam.config.ip_range", "addresses are leased from the whole subnet")
			}
			if len(c.AuxiliaryAddresses) > 0 {
				add("ipam.config.aux_addresses", "")
			}
		}
	}
	return out
}

// subnetOf reads an IPAM pool skiff can make: an IPv4 subnet whose
// gateway, if given, is its first address (the bridge's).
func subnetOf(c *types.IPAMPool) (string, error) {
	if c.Subnet == "" {
		if c.Gateway != "" {
			return "", fmt.Errorf("a gateway needs a subnet")
		}
		return "", nil
	}
	sub, err := netip.ParsePrefix(c.Subnet)
	if err != nil || !sub.Addr().Is4() {
		return "", fmt.Errorf("%q is not an IPv4 subnet (CIDR, such as 172.28.0.0/16)", c.Subnet)
	}
	if c.Gateway != "" {
		gw, err := netip.ParseAddr(c.Gateway)
		if want := sub.Masked().Addr().Next(); err != nil || gw != want {
			return "", fmt.Errorf("the gateway of a skiff network is the first address of its subnet, %s, not %s", want, c.Gateway)
		}
	}
	return c.Subnet, nil
}

// networkSubnet is the subnet to make the project network key with:
// empty lets the daemon pick one.
func networkSubnet(p *types.Project, key string) string {
	for _, c := range p.Networks[key].Ipam.Config {
		if c != nil {
			sub, _ := subnetOf(c)
			return sub
		}
	}
	return ""
}

// keysOutside lists the paths of the keys s sets that supported does
// not cover.
func keysOutside(s types.ServiceConfig, supported map[string]bool) []string {
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var keys []string
	walkKeys(m, "", supported, &keys)
	return keys
}

// walkKeys appends the paths under v that supported does not cover.
func walkKeys(v any, prefix string, supported map[string]bool, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		ks := make([]string, 0, len(v))
		for k := range v {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			if isEmpty(v[k]) || supported[path] {
				continue
			}
			if !hasSupportedUnder(supported, path) {
				*out = append(*out, path)
				continue
			}
			walkKeys(v[k], path, supported, out)
		}
	case []any:
		seen := map[string]bool{}
		for _, item := range v {
			var sub []string
			walkKeys(item, prefix+"[]", supported, &sub)
			for _, s := range sub {
				if !seen[s] {
					seen[s] = true
					*out = append(*out, s)
				}
			}
		}
	default:
		*out = append(*out, prefix)
	}
}

func hasSupportedUnder(supported map[string]bool, path string) bool {
	for k := range supported {
		if strings.HasPrefix(k, path+".") || strings.HasPrefix(k, path+"[]") {
			return true
		}
	}
	return false
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	case bool:
		return !v
	}
	return false
}

// appKeys are the service keys an App service carries (see AppFor), or
// that up honours for it (depends_on, build, profiles).
var appKeys = set(
	"name", "image", "command", "entrypoint", "environment", "env_file",
	"build.context", "build.dockerfile", "build.args", "build.target",
	"ports[].mode", "ports[].target", "ports[].protocol", "ports[].name", "expose",
	"volumes[].type", "volumes[].source", "volumes[].target", "volumes[].read_only", "volumes[].volume",
	"depends_on", "healthcheck", "restart", "profiles", "networks", "deploy.replicas",
	"deploy.resources.limits.cpus", "deploy.resources.limits.memory", "deploy.resources.limits.pids",
	"mem_limit", "cpus", "pids_limit", "scale", "x-skiff",
)

// AppIssues lists the keys of the services apps (those run as Apps) that
// skiff supports for containers but an App does not carry: an App is
// reached through the ingress, not on a host port, its replicas get
// named volumes only, and it has no per-service user, capabilities,
// secrets and the like. Keys Unsupported lists are not repeated.
func AppIssues(p *types.Project, apps []string) []Issue {
	var out []Issue
	for _, name := range apps {
		s, ok := p.Services[name]
		if !ok {
			continue
		}
		anywhere := keysOutside(s, supportedKeys)
		for _, k := range keysOutside(s, appKeys) {
			if slices.ContainsFunc(anywhere, func(u string) bool { return u == k || strings.HasPrefix(u, k+".") || strings.HasPrefix(u, k+"[]") }) {
				continue
			}
			why := "an App does not carry it: leave x-skiff.app out to run the service as containers"
			if strings.HasPrefix(k, "ports[]") {
				why = "an App is reached through the ingress at " + name + "." + p.Name + ".localhost, not on a host port"
			}
			out = append(out, Issue{Service: name, Key: k, Why: why})
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				out = append(out, Issue{Service: name, Key: "volumes", Why: "an App's replicas mount named volumes only, not the " + v.Type + " mount at " + v.Target})
			}
		}
		for _, n := range slices.Sorted(maps.Keys(s.Networks)) {
			if c := s.Networks[n]; c != nil && c.Ipv4Address != "" {
				out = append(out, Issue{Service: name, Key: "networks." + n + ".ipv4_address", Why: "an App's replicas each take the next free address"})
			}
		}
	}
	return out
}

// valueIssues are keys that are supported only with some values.
func valueIssues(p *types.Project, s types.ServiceConfig) []Issue {
	var out []Issue
	for name, n := range s.Networks {
		if n != nil && (n.Ipv6Address != "" || n.MacAddress != "" || len(n.LinkLocalIPs) > 0 || n.InterfaceName != "" || len(n.DriverOpts) > 0) {
			out = append(out, Issue{s.Name, "networks." + name, "only aliases, ipv4_address and priorities are supported"})
		}
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeTmpfs:
		case types.VolumeTypeVolume, types.VolumeTypeBind:
		default:
			out = append(out, Issue{s.Name, "volumes", v.Type + " volume " + v.Target})
		}
	}
	for _, sec := range s.Secrets {
		d, ok := p.Secrets[sec.Source]
		if ok && d.File == "" && d.Environment == "" && !storeSecret(d) {
			out = append(out, Issue{s.Name, "secrets." + sec.Source, "only secrets from a file, the environment or skiff's store are supported"})
		}
	}
	for _, c := range s.Configs {
		if d, ok := p.Configs[c.Source]; ok && bool(d.External) {
			out = append(out, Issue{s.Name, "configs." + c.Source, "external configs are not supported: give the config a file, environment or content"})
		}
	}
	for _, t := range s.Tmpfs {
		if _, err := parseTmpfs(t); err != nil {
			out = append(out, Issue{s.Name, "tmpfs", err.Error()})
		}
	}
	if s.NetworkMode != "" && s.NetworkMode != "host" && s.NetworkMode != "none" {
		out = append(out, Issue{s.Name, "network_mode", s.NetworkMode})
	}
	return append(out, loggingIssues(s)...)
}

// checkProject refuses what compose-go accepts but cannot run: a
// dependency cycle and two containers publishing the same host port.
func checkProject(p *types.Project) error {
	if err := graph.CheckCycle(p); err != nil {
		return loadError(p.ComposeFiles, err)
	}
	type hostPort struct{ ip, port, proto string }
	owner := map[hostPort]string{}
	for _, name := range sortedServices(p) {
		s := p.Services[name]
		for _, pc := range s.Ports {
			if pc.Published == "" {
				continue
			}
			proto := pc.Protocol
			if proto == "" {
				proto = "tcp"
			}
			k := hostPort{pc.HostIP, pc.Published, proto}
			if k.ip == "" || k.ip == "0.0.0.0" {
				k.ip = "*"
			}
			what := fmt.Sprintf("service %s", name)
			if prev, ok := owner[k]; ok {
				return errdefs.Invalid("%s: port %s/%s is published twice, by %s and %s: change one of them",
					locate(p, name, "ports"), pc.Published, proto, prev, what)
			}
			if replicas(s) > 1 {
				return errdefs.Invalid("%s: service %s publishes host port %s with %d replicas: they cannot all bind it; leave the host port out (\"%d\")",
					locate(p, name, "ports"), name, pc.Published, replicas(s), pc.Target)
			}
			owner[k] = what
		}
	}
	return nil
}

// replicas is how many containers a service runs.
func replicas(s types.ServiceConfig) int {
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	if s.Scale != nil {
		return *s.Scale
	}
	return 1
}

func sortedServices(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// serviceNetworks are the networks a service joins, by priority then
// name, except the first: the container's first network carries its
// default route and published ports, so it is the one Docker would take
// as the gateway (highest gw_priority, then not internal), ties broken
// by the same order.
func serviceNetworks(p *types.Project, s types.ServiceConfig) []string {
	names := s.NetworksByPriority()
	gwPrio := func(n string) int {
		if c := s.Networks[n]; c != nil {
			return c.GatewayPriority
		}
		return 0
	}
	internal := func(n string) bool { return p != nil && p.Networks[n].Internal }
	gw := 0
	for i, n := range names {
		g, best := gwPrio(n), names[gw]
		if g > gwPrio(best) || g == gwPrio(best) && internal(best) && !internal(n) {
			gw = i
		}
	}
	if gw > 0 {
		names = append([]string{names[gw]}, slices.Delete(slices.Clone(names), gw, gw+1)...)
	}
	return names
}

func sortStrings(s []string) { sort.Strings(s) }
