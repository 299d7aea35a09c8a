package kube

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"skiff.dev/skiff/api"
)

// backendShare is one weighted backend of a route, resolved to a
// revision ("" for the App's own Service).
type backendShare struct {
	revision string
	weight   int
}

// readRoutes reads the App's ingress and traffic from the HTTPRoutes (or
// else the Ingresses) that send requests to its Services.
func (s *importSet) readRoutes(a *api.App, group []*appsv1.Deployment, latest *appsv1.Deployment, svcs []*corev1.Service) {
	svcRev := map[string]string{}
	for _, svc := range svcs {
		svcRev[svc.Name] = serviceRevision(svc, group)
	}
	latestRev := latest.Labels[LabelRevision]
	if latestRev == "" {
		latestRev = latest.Name
	}
	var shares []backendShare
	tags := map[string]string{} // revision -> tag
	for _, r := range s.routes {
		if !routesTo(r, svcRev) {
			continue
		}
		ref := "HTTPRoute/" + r.Name
		s.used[ref] = true
		if tag := r.Labels[LabelTag]; tag != "" {
			for _, b := range r.Spec.Rules[0].BackendRefs {
				tags[svcRev[string(b.Name)]] = tag
			}
			continue
		}
		shares = s.readHTTPRoute(a, r, svcRev)
	}
	if shares == nil {
		shares = s.readIngresses(a, svcRev, tags)
	}
	if rev := svcRev[a.Metadata.Name]; shares == nil && rev != "" {
		shares = []backendShare{{revision: rev, weight: 1}}
	}
	a.Spec.Traffic = trafficOf(shares, tags, latestRev)
}

func routesTo(r *gwv1.HTTPRoute, svcRev map[string]string) bool {
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if _, ok := svcRev[string(b.Name)]; ok && (b.Kind == nil || *b.Kind == "Service") {
				return true
			}
		}
	}
	return false
}

// readHTTPRoute reads host, path, timeout and external from the App's
// main route and returns its weighted backends.
func (s *importSet) readHTTPRoute(a *api.App, r *gwv1.HTTPRoute, svcRev map[string]string) []backendShare {
	ref := "HTTPRoute/" + r.Name
	c := consumed{}
	c.use("parentRefs", "hostnames[0]")
	for _, p := range r.Spec.ParentRefs {
		if p.Kind == nil || *p.Kind == "Gateway" {
			a.Spec.Ingress.External = true
		}
	}
	if len(r.Spec.Hostnames) > 0 {
		a.Spec.Ingress.Host = string(r.Spec.Hostnames[0])
	}
	var shares []backendShare
	for i, rule := range r.Spec.Rules {
		if i > 0 {
			break
		}
		p := "rules[0]"
		if len(rule.Matches) > 0 && rule.Matches[0].Path != nil {
			m := rule.Matches[0].Path
			if m.Type == nil || *m.Type == gwv1.PathMatchPathPrefix {
				if m.Value != nil {
					a.Spec.Ingress.PathPrefix = *m.Value
				}
				c.use(p+".matches[0].path.type", p+".matches[0].path.value")
			}
		}
		if t := rule.Timeouts; t != nil && t.Request != nil {
			if d, err := time.ParseDuration(string(*t.Request)); err == nil {
				a.Spec.Ingress.Timeout = api.Duration{Duration: d}
				c.use(p + ".timeouts.request")
			}
		}
		for j, b := range rule.BackendRefs {
			bp := fmt.Sprintf("%s.backendRefs[%d]", p, j)
			rev, ok := svcRev[string(b.Name)]
			if !ok {
				continue
			}
			w := 1
			if b.Weight != nil {
				w = int(*b.Weight)
			}
			shares = append(shares, backendShare{revision: rev, weight: w})
			c.use(bp+".name", bp+".port", bp+".weight", bp+".kind", bp+".group")
		}
	}
	for _, l := range leftovers(&r.Spec, c, nil) {
		s.warn(a.Metadata.Name, ref+" spec."+l, "no App field for it: not imported")
	}
	return shares
}

// readIngresses reads host, path and tags from the Ingresses whose rules
// send requests to the App's Services.
func (s *importSet) readIngresses(a *api.App, svcRev map[string]string, tags map[string]string) []backendShare {
	var shares []backendShare
	for _, ing := range s.ingresses {
		ref := "Ingress/" + ing.Name
		for i, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for j, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil {
					continue
				}
				rev, ok := svcRev[p.Backend.Service.Name]
				if !ok {
					continue
				}
				s.used[ref] = true
				a.Spec.Ingress.External = true
				if rev != "" && shares != nil {
					tags[rev] = strings.TrimSuffix(strings.SplitN(rule.Host, ".", 2)[0], "-"+a.Metadata.Name)
					continue
				}
				if shares != nil {
					s.warn(a.Metadata.Name, fmt.Sprintf("%s spec.rules[%d].http.paths[%d]", ref, i, j), "an App has one host and path: not imported")
					continue
				}
				a.Spec.Ingress.Host = rule.Host
				if p.PathType == nil || *p.PathType != "Exact" {
					a.Spec.Ingress.PathPrefix = p.Path
				}
				shares = []backendShare{{revision: rev, weight: 1}}
			}
		}
		if s.used[ref] && ing.Spec.IngressClassName != nil {
			s.warn(a.Metadata.Name, ref+" spec.ingressClassName", "skiff serves every App through its own ingress: not imported")
		}
		if s.used[ref] {
			for _, k := range sortedKeys(ing.Annotations) {
				s.warn(a.Metadata.Name, ref+" metadata.annotations."+k, "an ingress controller's setting: not imported")
			}
		}
		if s.used[ref] && len(ing.Spec.TLS) > 0 && a.Spec.Ingress.TLS == nil {
			s.warn(a.Metadata.Name, ref+" spec.tls", "an App names certificate files on the machine, not Secrets: copy the certificate of Secret %s into files and set spec.ingress.tls", ing.Spec.TLS[0].SecretName)
		}
	}
	return shares
}

// trafficOf turns weighted backends into spec.traffic: weights become
// percents summing to 100; the latest revision becomes latest: true.
func trafficOf(shares []backendShare, tags map[string]string, latest string) []api.TrafficTarget {
	total := 0
	split := false
	for _, b := range shares {
		total += b.weight
		if b.revision != "" {
			split = true
		}
	}
	if !split && len(tags) == 0 {
		return nil
	}
	var out []api.TrafficTarget
	left := 100
	for i, b := range shares {
		pct := 0
		if total > 0 {
			pct = b.weight * 100 / total
		}
		if i == len(shares)-1 {
			pct = left
		}
		left -= pct
		out = append(out, target(b.revision, latest, pct, tags[b.revision]))
		delete(tags, b.revision)
	}
	for _, rev := range sortedKeys(tags) {
		out = append(out, target(rev, latest, 0, tags[rev]))
	}
	return out
}

func target(rev, latest string, pct int, tag string) api.TrafficTarget {
	t := api.TrafficTarget{Percent: pct, Tag: tag}
	if rev == "" || rev == latest {
		t.Latest = true
	} else {
		t.Revision = rev
	}
	return t
}
