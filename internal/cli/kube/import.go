package kube

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// importSet is the objects of an import, typed, by kind.
type importSet struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	ingresses   []*networkingv1.Ingress
	routes      []*gwv1.HTTPRoute
	knative     []*unstructured.Unstructured
	netpols     []*networkingv1.NetworkPolicy
	used        map[string]bool // objectRef of objects an App took
	warns       []Warning
}

// Import turns Kubernetes objects into Apps: each Deployment (the
// Deployments of one App's revisions, when skiff exported them) with the
// Services that select its pods, the HorizontalPodAutoscaler that scales
// it and the HTTPRoutes and Ingresses that route to those Services; and
// each Knative Service. Secrets and PersistentVolumeClaims are read over
// (Apps refer to them by name). Every field and object that has no App
// counterpart is named in a Warning. The Apps are defaulted and valid;
// errors are errdefs.ErrInvalid.
func Import(objs []*Object) ([]api.App, []Warning, error) {
	s := &importSet{used: map[string]bool{}}
	for _, u := range objs {
		if err := s.add(u); err != nil {
			return nil, nil, err
		}
	}
	var apps []api.App
	for _, group := range s.deploymentGroups() {
		a := s.plainApp(group)
		apps = append(apps, a)
	}
	for _, u := range s.knative {
		a, err := s.knativeApp(u)
		if err != nil {
			return nil, nil, err
		}
		apps = append(apps, a)
	}
	for _, u := range objs {
		if !s.used[objectRef(u)] && !ignoredKind(u.GetKind()) {
			s.warns = append(s.warns, Warning{App: "-", Field: objectRef(u), Message: "not part of any App: not imported"})
		}
	}
	if len(apps) == 0 {
		return nil, s.warns, errdefs.Invalid("no Deployment or Knative Service in the input: nothing to import")
	}
	seen := map[string]bool{}
	for i := range apps {
		app.SetDefaults(&apps[i])
		n := apps[i].Metadata.Name
		if seen[n] {
			return nil, s.warns, errdefs.Invalid("two objects make an App named %s: rename one", n)
		}
		seen[n] = true
		if err := app.Validate(apps[i]).Err(); err != nil {
			return nil, s.warns, fmt.Errorf("app %s, imported: %w", n, err)
		}
	}
	return apps, s.warns, nil
}

// ignoredKind reports kinds an App refers to by name without holding
// them.
func ignoredKind(k string) bool {
	return k == "Secret" || k == "PersistentVolumeClaim" || k == "Namespace" || k == kindServiceAccont
}

func (s *importSet) add(u *unstructured.Unstructured) error {
	var dst runtime.Object
	gv, kind := u.GetAPIVersion(), u.GetKind()
	switch {
	case gv == "apps/v1" && kind == "Deployment":
		d := &appsv1.Deployment{}
		s.deployments, dst = append(s.deployments, d), d
	case gv == "v1" && kind == "Service":
		v := &corev1.Service{}
		s.services, dst = append(s.services, v), v
	case gv == "autoscaling/v2" && kind == "HorizontalPodAutoscaler":
		v := &autoscalingv2.HorizontalPodAutoscaler{}
		s.hpas, dst = append(s.hpas, v), v
	case gv == "networking.k8s.io/v1" && kind == "Ingress":
		v := &networkingv1.Ingress{}
		s.ingresses, dst = append(s.ingresses, v), v
	case strings.HasPrefix(gv, "gateway.networking.k8s.io/") && kind == "HTTPRoute":
		v := &gwv1.HTTPRoute{}
		s.routes, dst = append(s.routes, v), v
	case gv == "networking.k8s.io/v1" && kind == kindNetworkPolicy:
		v := &networkingv1.NetworkPolicy{}
		s.netpols, dst = append(s.netpols, v), v
	case gv == knativeAPIVersion && kind == knativeKind:
		s.knative = append(s.knative, u)
		return nil
	default:
		return nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dst); err != nil {
		return errdefs.Invalid("%s: %v", objectRef(u), err)
	}
	return nil
}

func (s *importSet) warn(appName, field, format string, args ...any) {
	s.warns = append(s.warns, Warning{App: appName, Field: field, Message: fmt.Sprintf(format, args...)})
}

// deploymentGroups groups the Deployments by App: by the LabelApp label
// when skiff made them, else one App per Deployment.
func (s *importSet) deploymentGroups() [][]*appsv1.Deployment {
	byApp := map[string][]*appsv1.Deployment{}
	var order []string
	for _, d := range s.deployments {
		n := d.Labels[LabelApp]
		if n == "" {
			n = "\x00" + d.Name
		}
		if _, ok := byApp[n]; !ok {
			order = append(order, n)
		}
		byApp[n] = append(byApp[n], d)
	}
	var out [][]*appsv1.Deployment
	for _, n := range order {
		out = append(out, byApp[n])
	}
	return out
}

// latestOf returns the Deployment of the App's latest revision: the one
// marked AnnotationLatest, else the highest revision name.
func latestOf(group []*appsv1.Deployment) *appsv1.Deployment {
	for _, d := range group {
		if d.Annotations[AnnotationLatest] == "true" {
			return d
		}
	}
	return slices.MaxFunc(group, func(a, b *appsv1.Deployment) int { return cmp.Compare(a.Name, b.Name) })
}

// plainApp imports the Deployments of one App with their Services,
// HorizontalPodAutoscalers and routes.
func (s *importSet) plainApp(group []*appsv1.Deployment) api.App {
	latest := latestOf(group)
	name := latest.Labels[LabelApp]
	if name == "" {
		name = latest.Name
	}
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind}
	a.Metadata.Name = name
	a.Metadata.Labels = userLabels(latest.Labels)
	for _, d := range group {
		s.used["Deployment/"+d.Name] = true
		if d != latest && len(d.Spec.Template.Spec.Containers) > 0 {
			s.warn(name, "Deployment/"+d.Name, "an older revision: skiff makes revisions from the App's spec, so traffic to it needs that revision on this machine")
		}
	}
	pr := &podReader{app: name, ref: "Deployment/" + latest.Name + " spec.template.spec", warns: &s.warns, kubeDefaults: latest.Labels[LabelManagedBy] != ManagedBy}
	pr.readPod(latest.Spec.Template, &a.Spec)
	dc := consumed{}
	dc.use("template", "selector", "replicas", "revisionHistoryLimit")
	for _, l := range leftovers(&latest.Spec, dc, map[string]any{"progressDeadlineSeconds": 600, "strategy.type": "RollingUpdate", "strategy.rollingUpdate.maxSurge": "25%", "strategy.rollingUpdate.maxUnavailable": "25%"}) {
		s.warn(name, "Deployment/"+latest.Name+" spec."+l, "no App field for it: not imported")
	}
	if l := latest.Spec.RevisionHistoryLimit; l != nil {
		a.Spec.RevisionHistoryLimit = ptr(int(*l))
	}
	s.readScale(&a, group, latest)
	svcs := s.servicesOf(group)
	for _, svc := range svcs {
		s.used["Service/"+svc.Name] = true
		if svc.Name == name || svc.Labels[LabelRevision] == "" {
			readAppAnnotations(&a, svc.Annotations)
		}
		s.serviceLeftovers(name, svc)
	}
	s.readRoutes(&a, group, latest, svcs)
	s.readNetworkPolicies(&a, latest.Spec.Template.Labels)
	return a
}

// serviceDefaults are what an API server writes into a Service, and
// the values an App's Service has anyway.
var serviceDefaults = map[string]any{
	"type":                  "ClusterIP",
	"sessionAffinity":       "None",
	"internalTrafficPolicy": "Cluster",
	"ipFamilyPolicy":        "SingleStack",
	"ports[*].protocol":     "TCP",
}

// serviceLeftovers warns about what a Service has that an App's does
// not: another type, more ports, affinity.
func (s *importSet) serviceLeftovers(app string, svc *corev1.Service) {
	c := consumed{}
	c.use("selector", "clusterIP", "clusterIPs", "ipFamilies", "ports[0].name", "ports[0].port", "ports[0].targetPort")
	for _, l := range leftovers(&svc.Spec, c, serviceDefaults) {
		s.warn(app, "Service/"+svc.Name+" spec."+l, "an App is reached through skiff's ingress on one port: not imported")
	}
}

// userLabels returns the labels without skiff's own.
func userLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if k != LabelApp && k != LabelRevision && k != LabelManagedBy && k != LabelTag && k != knativeVisibility {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// readAppAnnotations reads the App's annotations and the skiff.dev/ ones
// an export keeps App fields in.
func readAppAnnotations(a *api.App, annos map[string]string) {
	for k, v := range annos {
		if !strings.HasPrefix(k, annoPrefix) {
			if k == "kubectl.kubernetes.io/last-applied-configuration" {
				continue
			}
			if a.Metadata.Annotations == nil {
				a.Metadata.Annotations = map[string]string{}
			}
			a.Metadata.Annotations[k] = v
			continue
		}
		s := &a.Spec
		switch k {
		case annoPrewarm:
			s.Scale.Prewarm, _ = strconv.Atoi(v)
		case annoMinScale:
			s.Scale.Min = ptr(0)
		case annoIdleTimeout:
			s.Scale.IdleTimeout = parseDuration(v)
		case annoTimeout:
			s.Ingress.Timeout = parseDuration(v)
		case annoProfile:
			s.Security.Profile = v
		case annoTLSCert:
			if s.Ingress.TLS == nil {
				s.Ingress.TLS = &api.IngressTLS{}
			}
			s.Ingress.TLS.CertFile = v
		case annoTLSKey:
			if s.Ingress.TLS == nil {
				s.Ingress.TLS = &api.IngressTLS{}
			}
			s.Ingress.TLS.KeyFile = v
		case annoRedirectHTTPS:
			s.Ingress.RedirectHTTPS = v == "true"
		case annoHost:
			s.Ingress.Host = v
		case annoPathPrefix:
			s.Ingress.PathPrefix = v
		case annoRevisionHistory:
			if n, err := strconv.Atoi(v); err == nil {
				s.RevisionHistoryLimit = &n
			}
		}
	}
}

func parseDuration(v string) api.Duration {
	d, _ := time.ParseDuration(v)
	return api.Duration{Duration: d}
}

// readScale reads min, max and the load target from the HPA that scales
// one of the App's Deployments, else from the latest one's replicas.
func (s *importSet) readScale(a *api.App, group []*appsv1.Deployment, latest *appsv1.Deployment) {
	names := map[string]bool{}
	for _, d := range group {
		names[d.Name] = true
	}
	var h *autoscalingv2.HorizontalPodAutoscaler
	for _, x := range s.hpas {
		if x.Spec.ScaleTargetRef.Kind == "Deployment" && names[x.Spec.ScaleTargetRef.Name] {
			s.used["HorizontalPodAutoscaler/"+x.Name] = true
			if h == nil || x.Spec.ScaleTargetRef.Name == latest.Name {
				h = x
			}
		}
	}
	if h == nil {
		n := 1
		if r := latest.Spec.Replicas; r != nil {
			n = int(*r)
		}
		a.Spec.Scale.Min, a.Spec.Scale.Max = ptr(n), ptr(max(n, 1))
		return
	}
	lo := 1
	if h.Spec.MinReplicas != nil {
		lo = int(*h.Spec.MinReplicas)
	}
	if h.Annotations[annoMinScale] == "0" {
		lo = 0
	}
	a.Spec.Scale.Min, a.Spec.Scale.Max = ptr(lo), ptr(int(h.Spec.MaxReplicas))
	ref := "HorizontalPodAutoscaler/" + h.Name
	for i, m := range h.Spec.Metrics {
		if i > 0 {
			s.warn(a.Metadata.Name, fmt.Sprintf("%s spec.metrics[%d]", ref, i), "an App scales on one target: only the first metric is imported")
			continue
		}
		switch {
		case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Target.AverageUtilization != nil:
			pct := int(*m.Resource.Target.AverageUtilization)
			switch m.Resource.Name {
			case corev1.ResourceCPU:
				a.Spec.Scale.CPUUtilization = pct
			case corev1.ResourceMemory:
				a.Spec.Scale.MemoryUtilization = pct
			}
		case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && m.Pods.Target.AverageValue != nil:
			v := int(m.Pods.Target.AverageValue.Value())
			switch m.Pods.Metric.Name {
			case metricConcurrency:
				a.Spec.Scale.Concurrency = v
			case metricRPS:
				a.Spec.Scale.RPS = v
			default:
				s.warn(a.Metadata.Name, ref+" spec.metrics[0]", "metric %s has no App counterpart (concurrency, rps, cpu or memory): the App scales on concurrency", m.Pods.Metric.Name)
			}
		default:
			s.warn(a.Metadata.Name, ref+" spec.metrics[0]", "a %s metric has no App counterpart (concurrency, rps, cpu or memory utilization): the App scales on concurrency", m.Type)
		}
	}
	if h.Spec.Behavior != nil {
		s.warn(a.Metadata.Name, ref+" spec.behavior", "skiff's autoscaler has its own windows: not imported")
	}
}

// servicesOf returns the Services whose selector selects the pods of a
// Deployment of group.
func (s *importSet) servicesOf(group []*appsv1.Deployment) []*corev1.Service {
	var out []*corev1.Service
	for _, svc := range s.services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, d := range group {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, svc)
				break
			}
		}
	}
	return out
}

// serviceRevision returns the revision whose pods only a Service selects,
// or "" for a Service of the whole App.
func serviceRevision(svc *corev1.Service, group []*appsv1.Deployment) string {
	if r := svc.Spec.Selector[LabelRevision]; r != "" {
		return r
	}
	if len(group) == 1 {
		return ""
	}
	var match []string
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for _, d := range group {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			match = append(match, d.Name)
		}
	}
	if len(match) == 1 {
		return match[0]
	}
	return ""
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
