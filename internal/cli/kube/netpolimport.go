package kube

import (
	"fmt"
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/api"
)

// readNetworkPolicies imports the NetworkPolicies whose podSelector
// selects the App's pods (podLabels) into spec.network.allowFrom: a peer
// selecting one App's pods by LabelApp becomes {app: NAME}, other pod
// selectors become {selector: {matchLabels}}; the App's own pods (the
// first such peer) and the ingress namespaces (LabelIngressNamespace)
// are what skiff admits anyway. Whatever else a policy says (ports,
// other namespaces, address blocks, egress) is listed in warnings.
func (s *importSet) readNetworkPolicies(a *api.App, podLabels map[string]string) {
	self := false
	for _, np := range s.netpols {
		if !podsSelectedBy(np.Spec.PodSelector, podLabels) {
			continue
		}
		s.used[kindNetworkPolicy+"/"+np.Name] = true
		r := netpolReader{s: s, app: a.Metadata.Name, ref: kindNetworkPolicy + "/" + np.Name}
		r.read(np, &self, &a.Spec.Network)
	}
}

// netpolReader reads one NetworkPolicy for one App.
type netpolReader struct {
	s   *importSet
	app string
	ref string
}

func (r netpolReader) warn(field, format string, args ...any) {
	r.s.warn(r.app, r.ref+" "+field, format, args...)
}

func (r netpolReader) read(np *networkingv1.NetworkPolicy, self *bool, n *api.AppNetwork) {
	ingress := len(np.Spec.PolicyTypes) == 0
	for i, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		default:
			r.warn(fmt.Sprintf("spec.policyTypes[%d]", i), "skiff does not limit an App's outgoing connections (%s): not imported", t)
		}
	}
	if len(np.Spec.Egress) > 0 {
		r.warn("spec.egress", "skiff does not limit an App's outgoing connections: not imported")
	}
	if !ingress {
		return
	}
	for i, rule := range np.Spec.Ingress {
		field := fmt.Sprintf("spec.ingress[%d]", i)
		if len(rule.Ports) > 0 {
			r.warn(field+".ports", "allowFrom admits every port: the sources of this rule may connect on any port")
		}
		if len(rule.From) == 0 {
			r.warn(field, "admits every source: skiff admits only the Apps allowFrom selects; list them there")
			continue
		}
		for j, p := range rule.From {
			if peer, ok := r.peer(fmt.Sprintf("%s.from[%d]", field, j), p, self); ok {
				n.AllowFrom = append(n.AllowFrom, peer)
			}
		}
	}
}

// peer maps one source of a rule; ok is false when it adds nothing to
// allowFrom (the App itself, the ingress, or something not expressible,
// warned).
func (r netpolReader) peer(field string, p networkingv1.NetworkPolicyPeer, self *bool) (api.NetworkPeer, bool) {
	switch {
	case p.IPBlock != nil:
		r.warn(field+".ipBlock", "skiff admits Apps, not address blocks: not imported")
		return api.NetworkPeer{}, false
	case p.NamespaceSelector != nil:
		if p.PodSelector == nil && len(p.NamespaceSelector.MatchExpressions) == 0 &&
			maps.Equal(p.NamespaceSelector.MatchLabels, map[string]string{LabelIngressNamespace: "true"}) {
			return api.NetworkPeer{}, false // the ingress: skiff admits its own
		}
		r.warn(field+".namespaceSelector", "Apps have no namespaces: not imported")
		return api.NetworkPeer{}, false
	case p.PodSelector == nil:
		return api.NetworkPeer{}, false
	}
	sel := p.PodSelector
	if len(sel.MatchExpressions) == 0 && len(sel.MatchLabels) == 1 && sel.MatchLabels[LabelApp] != "" {
		name := sel.MatchLabels[LabelApp]
		if name == r.app && !*self {
			*self = true // the App's own pods, which skiff always admits
			return api.NetworkPeer{}, false
		}
		return api.NetworkPeer{App: name}, true
	}
	if len(sel.MatchExpressions) > 0 && !onlyApps(sel.MatchExpressions) {
		r.warn(field+".podSelector.matchExpressions", "allowFrom selects Apps by matchLabels only: not imported")
		return api.NetworkPeer{}, false
	}
	return api.NetworkPeer{Selector: &api.LabelSelector{MatchLabels: maps.Clone(sel.MatchLabels)}}, true
}

// onlyApps reports whether exprs is the one requirement an export adds to
// an allowFrom selector: the pod belongs to an App.
func onlyApps(exprs []metav1.LabelSelectorRequirement) bool {
	return len(exprs) == 1 && exprs[0].Key == LabelApp && exprs[0].Operator == metav1.LabelSelectorOpExists && len(exprs[0].Values) == 0
}
