package kube

import (
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"skiff.dev/skiff/api/app"
)

// route adds how requests reach the App: an HTTPRoute (or, with
// Options.Ingress, an Ingress) when the App is external or its traffic
// is split. An external App's route attaches to the Gateway; a split
// also attaches it to the App's Service, so that in-cluster callers get
// the weights too (Gateway API for service meshes).
func (x *exporter) route() {
	external := x.app.Spec.Ingress.External
	if !external && !x.split() {
		return
	}
	if x.opts.Ingress {
		x.ingress()
		return
	}
	x.httpRoute(x.app.Metadata.Name, x.host(), "", x.backends())
	for _, t := range x.targets {
		if t.Tag != "" {
			x.httpRoute(t.Tag+"-"+x.app.Metadata.Name, x.tagHost(t.Tag), t.Tag, []gwv1.HTTPBackendRef{x.backend(t.Revision, nil)})
		}
	}
}

// backends returns the weighted backends of the App's route: its
// Service, or one per traffic target when split.
func (x *exporter) backends() []gwv1.HTTPBackendRef {
	if !x.split() {
		return []gwv1.HTTPBackendRef{x.backend(x.app.Metadata.Name, nil)}
	}
	var out []gwv1.HTTPBackendRef
	for _, t := range x.targets {
		if t.Tag != "" && t.Percent == 0 {
			continue
		}
		out = append(out, x.backend(t.Revision, ptr(int32(t.Percent))))
	}
	return out
}

func (x *exporter) backend(service string, weight *int32) gwv1.HTTPBackendRef {
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(service), Port: ptr(gwv1.PortNumber(80))},
		Weight:                 weight,
	}}
}

// httpRoute adds one HTTPRoute.
func (x *exporter) httpRoute(name, host, tag string, backends []gwv1.HTTPBackendRef) {
	in := x.app.Spec.Ingress
	m := x.meta(name, "", false)
	if tag != "" {
		m.Labels[LabelTag] = tag
	}
	r := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: m,
		Spec: gwv1.HTTPRouteSpec{
			Rules: []gwv1.HTTPRouteRule{{
				Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(in.PathPrefix)}}},
				BackendRefs: backends,
				Timeouts:    &gwv1.HTTPRouteTimeouts{Request: ptr(gwv1.Duration(in.Timeout.String()))},
			}},
		},
	}
	if host != "" {
		r.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(host)}
	}
	if in.External {
		ns, gw, ok := strings.Cut(x.opts.Gateway, "/")
		ref := gwv1.ParentReference{Name: gwv1.ObjectName(ns)}
		if ok {
			ref = gwv1.ParentReference{Namespace: ptr(gwv1.Namespace(ns)), Name: gwv1.ObjectName(gw)}
		}
		r.Spec.ParentRefs = append(r.Spec.ParentRefs, ref)
	}
	if x.split() && tag == "" {
		r.Spec.ParentRefs = append(r.Spec.ParentRefs, gwv1.ParentReference{
			Group: ptr(gwv1.Group("")), Kind: ptr(gwv1.Kind("Service")), Name: gwv1.ObjectName(x.app.Metadata.Name), Port: ptr(gwv1.PortNumber(80)),
		})
	}
	x.add("HTTPRoute", r)
}

// ingress adds a networking.k8s.io/v1 Ingress: the App's host and path
// to its Service, and one rule per tag. An Ingress has no weights.
func (x *exporter) ingress() {
	in := x.app.Spec.Ingress
	if !in.External {
		x.warn("spec.traffic", "an Ingress cannot split traffic by weight and the App is not external: no Ingress exported; drop --ingress to get an HTTPRoute")
		return
	}
	if x.split() {
		x.warn("spec.traffic", "an Ingress has no weights: requests reach the revisions in proportion to their pods; drop --ingress to get a weighted HTTPRoute")
	}
	rule := func(host, service string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{
				Path: in.PathPrefix, PathType: ptr(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: service, Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}},
		}}}
	}
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: x.meta(x.app.Metadata.Name, "", false),
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule(x.host(), x.app.Metadata.Name)}},
	}
	for _, t := range x.targets {
		if t.Tag != "" {
			if h := x.tagHost(t.Tag); h != "" {
				ing.Spec.Rules = append(ing.Spec.Rules, rule(h, t.Revision))
			} else {
				x.warn("spec.traffic", "tag %s: an Ingress rule needs a host: give --domain", t.Tag)
			}
		}
	}
	if in.TLS != nil && x.host() != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{x.host()}, SecretName: x.app.Metadata.Name + "-tls"}}
	}
	x.add("Ingress", ing)
}

// appAnnotations returns the skiff.dev/ annotations of the App-level
// fields the exported objects do not express, and warns about each.
func (x *exporter) appAnnotations() map[string]string {
	s := x.app.Spec
	m := map[string]string{}
	knative := x.opts.Flavor == Knative
	routed := (s.Ingress.External || x.split()) && !knative
	httpRoute := routed && !x.opts.Ingress
	if (!routed || x.opts.Ingress) && !knative {
		if s.Ingress.Timeout.Duration != app.DefaultRequestTimeout {
			m[annoTimeout] = s.Ingress.Timeout.String()
			x.warn("spec.ingress.timeout", "no counterpart on a Service or Ingress (an HTTPRoute has timeouts.request): kept as annotation %s", annoTimeout)
		}
	}
	if !routed || !s.Ingress.External && x.opts.Ingress {
		if s.Ingress.Host != "" {
			m[annoHost] = s.Ingress.Host
			if !knative {
				x.warn("spec.ingress.host", "the App is not external, so no route carries its host: kept as annotation %s", annoHost)
			}
		}
		if s.Ingress.PathPrefix != app.DefaultPathPrefix {
			m[annoPathPrefix] = s.Ingress.PathPrefix
			x.warn("spec.ingress.pathPrefix", "no route carries the App's path (a Knative Service, or an App that is not external, answers every path): kept as annotation %s", annoPathPrefix)
		}
	}
	if t := s.Ingress.TLS; t != nil {
		m[annoTLSCert], m[annoTLSKey] = t.CertFile, t.KeyFile
		switch {
		case knative:
			x.warn("spec.ingress.tls", "certificate files on this machine: Knative serves certificates from its networking layer (auto-TLS, or a DomainMapping's TLS Secret)")
		case httpRoute || !s.Ingress.External:
			x.warn("spec.ingress.tls", "certificate files on this machine: put them in a TLS Secret and name it in the Gateway listener's certificateRefs")
		default:
			x.warn("spec.ingress.tls", "certificate files on this machine: create the Ingress' Secret with kubectl create secret tls %s-tls --cert %s --key %s", x.app.Metadata.Name, t.CertFile, t.KeyFile)
		}
	}
	if s.Ingress.RedirectHTTPS {
		m[annoRedirectHTTPS] = "true"
		x.warn("spec.ingress.redirectHTTPS", "set the redirect on the Gateway's HTTP listener (an HTTPRoute RequestRedirect filter with scheme https) or the ingress controller: kept as annotation %s", annoRedirectHTTPS)
	}
	if lo, _ := app.ScaleBounds(s.Scale); s.Scale.IdleTimeout.Duration != app.DefaultIdleTimeout && (!knative || lo > 0) {
		m[annoIdleTimeout] = s.Scale.IdleTimeout.String()
		if !knative {
			x.warn("spec.scale.idleTimeout", "plain Kubernetes does not scale to zero (use --flavor knative): kept as annotation %s", annoIdleTimeout)
		}
	}
	if s.Scale.Prewarm > 0 {
		m[annoPrewarm] = strconv.Itoa(s.Scale.Prewarm)
		x.warn("spec.scale.prewarm", "Kubernetes has no created-but-not-started pods (raise scale.min instead): kept as annotation %s", annoPrewarm)
	}
	if p := s.Security.Profile; p != "" {
		m[annoProfile] = p
	}
	if l := *s.RevisionHistoryLimit; knative && l != app.DefaultRevisionHistoryLimit {
		m[annoRevisionHistory] = strconv.Itoa(l)
		x.warn("spec.revisionHistoryLimit", "Knative keeps revisions by its cluster-wide garbage-collection settings (max-non-active-revisions): kept as annotation %s", annoRevisionHistory)
	}
	return m
}

// appWarnings warns about App fields a plain export translates with a
// loss.
func (x *exporter) appWarnings() {
	sc := x.app.Spec.Scale
	if lo, _ := app.ScaleBounds(sc); lo == 0 {
		x.warn("spec.scale.min", "plain Kubernetes cannot scale to zero: the HorizontalPodAutoscaler keeps at least 1 replica (use --flavor knative); kept as annotation %s", annoMinScale)
	}
	if sc.CPUUtilization == 0 && sc.MemoryUtilization == 0 {
		metric := metricConcurrency
		if sc.RPS > 0 {
			metric = metricRPS
		}
		x.warn("spec.scale", "the HorizontalPodAutoscaler scales on the custom pod metric %q: the cluster needs a custom-metrics adapter serving it (or use --flavor knative)", metric)
	}
	if p := x.app.Spec.Security.Profile; p != "" {
		x.warn("spec.security.profile", "a namespace setting in Kubernetes: label the namespace pod-security.kubernetes.io/enforce=%s", p)
	}
}
