package app

import (
	"maps"
	"slices"

	"skiff.dev/skiff/api"
)

// DefaultDomain is the domain of default ingress hosts when the daemon
// sets none: browsers and curl resolve *.localhost to the loopback
// address without any DNS set-up.
const DefaultDomain = "localhost"

// Host returns the host name app answers on: spec.ingress.host, or
// "NAME.DOMAIN" when that is empty. An empty domain means DefaultDomain.
func Host(app api.App, domain string) string {
	if app.Spec.Ingress.Host != "" {
		return app.Spec.Ingress.Host
	}
	return app.Metadata.Name + "." + nonEmpty(domain, DefaultDomain)
}

// TagHost returns the host name of a tagged traffic target: "TAG-NAME.DOMAIN".
// An empty domain means DefaultDomain.
func TagHost(app api.App, tag, domain string) string {
	return tag + "-" + app.Metadata.Name + "." + nonEmpty(domain, DefaultDomain)
}

// Clone returns a deep copy of app that shares no slice, map or pointer
// with it.
func Clone(app api.App) api.App {
	out := app
	out.Metadata.Labels = maps.Clone(app.Metadata.Labels)
	out.Metadata.Annotations = maps.Clone(app.Metadata.Annotations)
	s := &out.Spec
	s.Command = slices.Clone(s.Command)
	s.Args = slices.Clone(s.Args)
	s.Env = slices.Clone(s.Env)
	s.Scale.Min = clonePtr(s.Scale.Min)
	s.Scale.Max = clonePtr(s.Scale.Max)
	s.Probes = cloneProbes(s.Probes)
	s.Volumes = cloneVolumes(s.Volumes)
	s.Ingress.TLS = clonePtr(s.Ingress.TLS)
	s.Traffic = slices.Clone(s.Traffic)
	s.RevisionHistoryLimit = clonePtr(s.RevisionHistoryLimit)
	s.Network.AllowFrom = clonePeers(s.Network.AllowFrom)
	s.Network.Networks = cloneAttachments(s.Network.Networks)
	out.Status.Conditions = slices.Clone(out.Status.Conditions)
	out.Status.Traffic = slices.Clone(out.Status.Traffic)
	return out
}

func cloneVolumes(vs []api.VolumeMount) []api.VolumeMount {
	out := slices.Clone(vs)
	for i, v := range out {
		if v.Secret != nil {
			sv := *v.Secret
			sv.Items = slices.Clone(sv.Items)
			out[i].Secret = &sv
		}
	}
	return out
}

func clonePeers(ps []api.NetworkPeer) []api.NetworkPeer {
	if ps == nil {
		return nil
	}
	out := make([]api.NetworkPeer, len(ps))
	for i, p := range ps {
		out[i] = p
		if p.Selector != nil {
			out[i].Selector = &api.LabelSelector{MatchLabels: maps.Clone(p.Selector.MatchLabels)}
		}
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
