package kube

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/api/app"
)

// The Knative Serving names an export uses. The Service is built as
// unstructured data: knative.dev/serving's Go types bring knative.dev/pkg
// and their own pins of the k8s.io modules, which would move this
// module's client-go; the pod spec inside is built from the typed
// k8s.io/api structs and converted.
const (
	knativeAPIVersion    = "serving.knative.dev/v1"
	knativeKind          = "Service"
	kaMinScale           = "autoscaling.knative.dev/min-scale"
	kaMaxScale           = "autoscaling.knative.dev/max-scale"
	kaTarget             = "autoscaling.knative.dev/target"
	kaMetric             = "autoscaling.knative.dev/metric"
	kaClass              = "autoscaling.knative.dev/class"
	kaRetention          = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
	kaClassHPA           = "hpa.autoscaling.knative.dev"
	kaInitialScale       = "autoscaling.knative.dev/initial-scale"
	knativeContainerPort = "http1"
	// knativeMaxTimeout is Knative's default max-revision-timeout-seconds.
	knativeMaxTimeout = 600 * time.Second
)

// knative builds the Knative flavor: one serving.knative.dev/v1 Service
// whose template is the latest revision, with the traffic split by
// revision name, and the App's Secrets and PersistentVolumeClaims.
func (x *exporter) knative() error {
	revs := x.servingRevisions()
	if err := x.secretObjects(revs); err != nil {
		return err
	}
	x.volumeClaims(revs)
	if len(x.app.Spec.Volumes) > 0 {
		x.warn("spec.volumes", "Knative mounts PersistentVolumeClaims only with its features kubernetes.podspec-persistent-volume-claim and -write enabled")
	}
	rev := x.revs[x.latest]
	ps, podAnnos := x.podSpec(rev)
	// Knative admits only the pod fields it lists, and hostUsers is not
	// one: a host-users App is recorded in an annotation, and an App with
	// its own user namespace (skiff's default) loses it, warned.
	if *ps.HostUsers {
		if podAnnos == nil {
			podAnnos = map[string]string{}
		}
		podAnnos[annoHostUsers] = "true"
	} else {
		x.warn("spec.security.hostUsers", "a Knative revision has no hostUsers field: its pods run in the host's user namespace (the plain flavor writes hostUsers: false)")
	}
	ps.HostUsers = nil
	c := &ps.Containers[0]
	c.Name = ""
	c.Ports[0].Name = knativeContainerPort
	c.Env = c.Env[1:] // Knative sets PORT itself.
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ps)
	if err != nil {
		return err
	}
	spec["timeoutSeconds"] = int64(x.seconds(x.app.Spec.Ingress.Timeout.Duration, "spec.ingress.timeout", true))
	tmeta := map[string]any{"name": x.latest, "annotations": toAny(x.knativeScale())}
	labels := x.meta("", x.latest, false).Labels
	if podAnnos != nil {
		for k, v := range podAnnos {
			tmeta["annotations"].(map[string]any)[k] = v
		}
	}
	tmeta["labels"] = toAny(labels)
	var traffic []any
	for _, t := range x.app.Spec.Traffic {
		tt := map[string]any{"percent": int64(t.Percent)}
		if t.Latest {
			tt["latestRevision"] = true
		} else {
			tt["revisionName"] = t.Revision
			tt["latestRevision"] = false
			if t.Revision != x.latest {
				x.warn("spec.traffic", "revision %s: Knative routes to it only if the cluster has it (a template named %s was applied there before)", t.Revision, t.Revision)
			}
		}
		if t.Tag != "" {
			tt["tag"] = t.Tag
		}
		traffic = append(traffic, tt)
	}
	m := x.meta(x.app.Metadata.Name, "", true)
	if !x.app.Spec.Ingress.External {
		m.Labels[knativeVisibility] = knativeVisibilityLocal
	}
	if a := x.appAnnotations(); len(a) > 0 {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		for k, v := range a {
			m.Annotations[k] = v
		}
	}
	meta, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&m)
	if err != nil {
		return err
	}
	delete(meta, "creationTimestamp")
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": knativeAPIVersion,
		"kind":       knativeKind,
		"metadata":   meta,
		"spec": map[string]any{
			"template": map[string]any{"metadata": tmeta, "spec": spec},
			"traffic":  traffic,
		},
	}}
	x.add("Service", u)
	x.networkPolicy()
	x.knativeWarnings()
	return nil
}

// knativeScale returns the revision template's autoscaling annotations.
func (x *exporter) knativeScale() map[string]string {
	sc := x.app.Spec.Scale
	lo, hi := app.ScaleBounds(sc)
	a := map[string]string{kaMinScale: strconv.Itoa(lo), kaMaxScale: strconv.Itoa(hi)}
	switch {
	case sc.CPUUtilization > 0:
		a[kaClass], a[kaMetric], a[kaTarget] = kaClassHPA, "cpu", strconv.Itoa(sc.CPUUtilization)
	case sc.MemoryUtilization > 0:
		a[kaClass], a[kaMetric], a[kaTarget] = kaClassHPA, "memory", strconv.Itoa(sc.MemoryUtilization)
	case sc.RPS > 0:
		a[kaMetric], a[kaTarget] = "rps", strconv.Itoa(sc.RPS)
	default:
		a[kaMetric], a[kaTarget] = "concurrency", strconv.Itoa(sc.Concurrency)
	}
	if lo == 0 {
		a[kaRetention] = sc.IdleTimeout.String()
	}
	return a
}

// knativeWarnings warns about App fields a Knative export translates with
// a loss.
func (x *exporter) knativeWarnings() {
	in := x.app.Spec.Ingress
	if in.Host != "" {
		x.warn("spec.ingress.host", "Knative serves NAME.NAMESPACE.DOMAIN: map %s to the Service with a DomainMapping", in.Host)
	}
	if d := in.Timeout.Duration; d > knativeMaxTimeout {
		x.warn("spec.ingress.timeout", "%s is above Knative's default max-revision-timeout-seconds (600): raise it in the config-defaults ConfigMap", in.Timeout)
	}
	for _, c := range x.revs[x.latest].Spec.Security.Capabilities.Add {
		if capName(c) != "NET_BIND_SERVICE" {
			x.warn("spec.security.capabilities.add", "Knative allows adding only NET_BIND_SERVICE unless its kubernetes.containerspec-addcapabilities feature is enabled")
			break
		}
	}
	if p := x.app.Spec.Security.Profile; p != "" {
		x.warn("spec.security.profile", "a namespace setting in Kubernetes: label the namespace pod-security.kubernetes.io/enforce=%s", p)
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
