package compose

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// skiffExtension is a service's x-skiff key.
type skiffExtension struct {
	// App makes the service an App (revisions, ingress, autoscaling).
	App bool `json:"app"`
	// Port is the port the App serves; default the first of ports or expose.
	Port int `json:"port"`
	// Scale is the App's autoscaling (api.Scale); default the replicas.
	Scale *api.Scale `json:"scale"`
}

func extension(s types.ServiceConfig) (skiffExtension, error) {
	var x skiffExtension
	raw, ok := s.Extensions["x-skiff"]
	if !ok {
		return x, nil
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, &x)
	}
	if err != nil {
		return x, errdefs.Invalid("service %s: x-skiff: %v", s.Name, err)
	}
	return x, nil
}

// AppServices are the services that become Apps: those marked
// x-skiff: {app: true}, or every service with all.
func AppServices(p *types.Project, all bool) ([]string, error) {
	var out []string
	for _, name := range sortedServices(p) {
		x, err := extension(p.Services[name])
		if err != nil {
			return nil, err
		}
		if all || x.App {
			out = append(out, name)
		}
	}
	return out, nil
}

// AppFor is the App service s becomes: named PROJECT-SERVICE, served on
// the ingress at SERVICE.PROJECT.localhost, on the service's networks
// with the service's name and aliases, its healthcheck as the readiness
// probe, its named volumes as App volumes named PROJECT-VOLUME (DNS
// labels, so not the containers' PROJECT_VOLUME).
func AppFor(p *types.Project, s types.ServiceConfig) (api.App, error) {
	x, err := extension(s)
	if err != nil {
		return api.App{}, err
	}
	req, err := CreateRequest(p, s, 1)
	if err != nil {
		return api.App{}, err
	}
	c := req.Config
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind,
		Metadata: api.ObjectMeta{Name: p.Name + "-" + s.Name, Labels: map[string]string{LabelProject: p.Name, LabelService: s.Name}},
		Spec: api.AppSpec{Image: c.Image, Command: c.Entrypoint, Args: c.Cmd, Port: appPort(s, x),
			Ingress: api.Ingress{Host: s.Name + "." + p.Name + ".localhost"}}}
	a.Spec.Network.Networks = appNetworks(c)
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		a.Spec.Env = append(a.Spec.Env, api.EnvVar{Name: k, Value: v})
	}
	if r := c.Resources; r.NanoCPUs > 0 || r.MemoryBytes > 0 || r.PidsLimit > 0 {
		if r.NanoCPUs > 0 {
			a.Spec.Resources.CPU = strconv.FormatInt(r.NanoCPUs/1e6, 10) + "m"
		}
		if r.MemoryBytes > 0 {
			a.Spec.Resources.Memory = strconv.FormatInt(r.MemoryBytes, 10)
		}
		a.Spec.Resources.Pids = r.PidsLimit
	}
	if x.Scale != nil {
		a.Spec.Scale = *x.Scale
	} else {
		n := replicas(s)
		a.Spec.Scale = api.Scale{Min: &n, Max: &n}
	}
	if h := s.HealthCheck; healthTest(h) != nil {
		pr := &api.Probe{Exec: &api.ExecAction{Command: healthTest(h)}}
		if h.Interval != nil {
			pr.Period = api.Duration{Duration: durationOr(h.Interval, 0)}
		}
		if h.Timeout != nil {
			pr.Timeout = api.Duration{Duration: durationOr(h.Timeout, 0)}
		}
		if h.StartPeriod != nil {
			pr.InitialDelay = api.Duration{Duration: durationOr(h.StartPeriod, 0)}
		}
		if h.Retries != nil {
			pr.FailureThreshold = int(*h.Retries)
		}
		a.Spec.Probes.Readiness = pr
	}
	for _, m := range c.Mounts {
		if m.Type == api.MountVolume {
			// App volume names are DNS labels: PROJECT-VOLUME.
			name := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(m.Source, "_", "-"), ".", "-"))
			a.Spec.Volumes = append(a.Spec.Volumes, api.VolumeMount{Name: name, MountPath: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	return a, nil
}

func appPort(s types.ServiceConfig, x skiffExtension) int {
	if x.Port > 0 {
		return x.Port
	}
	if len(s.Ports) > 0 {
		return int(s.Ports[0].Target)
	}
	if len(s.Expose) > 0 {
		n, _ := strconv.Atoi(s.Expose[0])
		return n
	}
	return 0
}

// appNetworks is the networks of the container config c as an App's
// further networks (an App's replicas are on skiff's default network
// first): none for network modes host and none.
func appNetworks(c api.ContainerConfig) []api.AppNetworkAttachment {
	if c.Network == "" || c.Network == api.NetworkHost || c.Network == api.NetworkNone {
		return nil
	}
	var out []api.AppNetworkAttachment
	for _, x := range append([]api.NetworkAttachment{{Network: c.Network, Aliases: c.NetworkAliases}}, c.ExtraNetworks...) {
		if x.Network != api.DefaultNetwork {
			out = append(out, api.AppNetworkAttachment{Name: x.Network, Aliases: x.Aliases})
		}
	}
	return out
}
