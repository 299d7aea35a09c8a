package kube

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/api/app"
)

// The custom metrics a plain export's HorizontalPodAutoscaler scales on
// for concurrency and rps targets, named as Knative's HPA class names
// them. They need a custom-metrics adapter in the cluster.
const (
	metricConcurrency = "concurrency"
	metricRPS         = "rps"
)

// plain builds the plain flavor: a Deployment, HorizontalPodAutoscaler
// and (for splits) Service per revision, a Service per App, a route, and
// the App's Secrets and PersistentVolumeClaims.
func (x *exporter) plain() error {
	revs := x.servingRevisions()
	if err := x.secretObjects(revs); err != nil {
		return err
	}
	x.volumeClaims(revs)
	for _, r := range revs {
		x.add("Deployment", x.deployment(r))
		if x.hasTraffic(r) {
			x.add("HorizontalPodAutoscaler", x.hpa(r))
		}
		if x.split() {
			x.add("Service", x.service(r, r))
		}
	}
	x.add("Service", x.appService())
	x.route()
	x.networkPolicy()
	x.appWarnings()
	return nil
}

// deployment returns the Deployment of revision name. A revision that
// receives requests leaves its replicas to its HorizontalPodAutoscaler;
// one that receives none is kept at zero.
func (x *exporter) deployment(name string) *appsv1.Deployment {
	rev := x.revs[name]
	m := x.meta(name, name, false)
	if name == x.latest {
		m.Annotations = map[string]string{AnnotationLatest: "true"}
	}
	tm := x.meta("", name, false)
	tm.Name, tm.Namespace = "", ""
	ps, annos := x.podSpec(rev)
	tm.Annotations = annos
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Selector:             &metav1.LabelSelector{MatchLabels: x.selector(name)},
			RevisionHistoryLimit: ptr(int32(*x.app.Spec.RevisionHistoryLimit)),
			Template:             corev1.PodTemplateSpec{ObjectMeta: tm, Spec: ps},
		},
	}
	if !x.hasTraffic(name) {
		d.Spec.Replicas = ptr(int32(0))
	}
	return d
}

// hpa returns the HorizontalPodAutoscaler of revision name: the App's
// bounds and its load target.
func (x *exporter) hpa(name string) *autoscalingv2.HorizontalPodAutoscaler {
	lo, hi := app.ScaleBounds(x.app.Spec.Scale)
	m := x.meta(name, name, false)
	if lo == 0 {
		lo = 1
		m.Annotations = map[string]string{annoMinScale: "0"}
	}
	h := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: m,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr(int32(lo)),
			MaxReplicas:    int32(hi),
			Metrics:        []autoscalingv2.MetricSpec{x.metric()},
		},
	}
	return h
}

// metric returns the HPA metric of the App's load target.
func (x *exporter) metric() autoscalingv2.MetricSpec {
	sc := x.app.Spec.Scale
	resourceMetric := func(n corev1.ResourceName, pct int) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   n,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(pct))},
		}}
	}
	podsMetric := func(name string, v int) autoscalingv2.MetricSpec {
		q := mustQuantity(strconv.Itoa(v))
		return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q},
		}}
	}
	switch {
	case sc.CPUUtilization > 0:
		return resourceMetric(corev1.ResourceCPU, sc.CPUUtilization)
	case sc.MemoryUtilization > 0:
		return resourceMetric(corev1.ResourceMemory, sc.MemoryUtilization)
	case sc.RPS > 0:
		return podsMetric(metricRPS, sc.RPS)
	default:
		return podsMetric(metricConcurrency, sc.Concurrency)
	}
}

// service returns a ClusterIP Service named name for the pods of
// revision rev, or of the whole App when rev is empty.
func (x *exporter) service(name, rev string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: x.meta(name, rev, rev == ""),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: x.selector(rev),
			Ports: []corev1.ServicePort{{
				Name: portName, Port: 80, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromString(portName),
			}},
		},
	}
}

// appService returns the App's Service, named after it: the pods of its
// only revision, or of all its revisions when traffic is split (the
// route then weighs the revisions' own Services). It carries the App's
// annotations and the skiff.dev/ annotations of App fields that have no
// Kubernetes counterpart.
func (x *exporter) appService() *corev1.Service {
	rev := ""
	if !x.split() && len(x.targets) == 1 {
		rev = x.targets[0].Revision
	}
	s := x.service(x.app.Metadata.Name, "")
	s.Spec.Selector = x.selector(rev)
	if a := x.appAnnotations(); len(a) > 0 {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range a {
			s.Annotations[k] = v
		}
	}
	return s
}
