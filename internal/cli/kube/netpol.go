package kube

import (
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The NetworkPolicy an export makes for each App: skiff isolates every
// App's replicas, so every App gets one.
const (
	kindNetworkPolicy = "NetworkPolicy"
	// LabelIngressNamespace marks the namespaces whose pods carry the
	// cluster's ingress (the Gateway or Ingress controller; Knative's
	// activator and networking layer): every App's NetworkPolicy admits
	// their pods, as skiff's firewall admits its ingress. A cluster
	// administrator sets it with
	// `kubectl label namespace NS skiff.dev/ingress=true`.
	LabelIngressNamespace = "skiff.dev/ingress"
	// knativeServiceLabel is the label Knative puts on a Service's pods.
	knativeServiceLabel = "serving.knative.dev/service"
)

// networkPolicy adds the App's NetworkPolicy, named after it: its pods
// (podSelector) admit connections from the App's own pods, from the
// pods of the Apps spec.network.allowFrom selects, and from the pods of
// the namespaces labelled LabelIngressNamespace=true; everything else is
// refused (policyTypes Ingress). Knative pods are selected by Knative's
// Service label. Connections from the node (the kubelet's probes) are
// always admitted by Kubernetes, as skiff admits its probes.
func (x *exporter) networkPolicy() {
	name := x.app.Metadata.Name
	sel := x.selector("")
	if x.opts.Flavor == Knative {
		sel = map[string]string{knativeServiceLabel: name}
	}
	from := []networkingv1.NetworkPolicyPeer{appPeer(name)}
	for _, p := range x.app.Spec.Network.AllowFrom {
		if p.App != "" {
			from = append(from, appPeer(p.App))
			continue
		}
		// A selector selects Apps: pods of other workloads with the same
		// labels are not among them.
		from = append(from, networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{
			MatchLabels:      maps.Clone(p.Selector.MatchLabels),
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelApp, Operator: metav1.LabelSelectorOpExists}},
		}})
	}
	from = append(from, ingressPeer())
	x.add(kindNetworkPolicy, &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: kindNetworkPolicy},
		ObjectMeta: x.meta(name, "", false),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: sel},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: from}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	})
	switch {
	case x.opts.Flavor == Knative:
		x.warn("spec.network", "the NetworkPolicy %s admits requests only from the namespaces labelled %s=true: label knative-serving (Knative's activator) and the namespace of Knative's networking layer (kubectl label namespace NS %s=true)", name, LabelIngressNamespace, LabelIngressNamespace)
	case x.app.Spec.Ingress.External:
		x.warn("spec.network", "the NetworkPolicy %s admits requests only from the namespaces labelled %s=true: label the namespace of the Gateway's or ingress controller's pods (kubectl label namespace NS %s=true)", name, LabelIngressNamespace, LabelIngressNamespace)
	}
}

// appPeer selects the pods of the App name, whichever flavor made them.
func appPeer(name string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: name}}}
}

// ingressPeer selects every pod of the ingress namespaces.
func ingressPeer() networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelIngressNamespace: "true"}}}
}

// podsSelectedBy reports whether a policy's podSelector selects pods
// with labels podLabels (matchLabels only: a selector with expressions
// is not an App's).
func podsSelectedBy(sel metav1.LabelSelector, podLabels map[string]string) bool {
	if len(sel.MatchExpressions) > 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}
