//go:build kube

package kube

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/cli/kubeapply"
)

// TestNetworkPolicy: an App's spec.network.allowFrom becomes a
// NetworkPolicy the server accepts with strict validation (on a server
// dry run and for real), selecting the App's pods and admitting its own
// pods, the Apps it names or selects and the ingress namespaces; an edit
// of allowFrom configures it; the import of what the cluster holds gives
// allowFrom back; and prune deletes it once its App no longer declares
// it.
func TestNetworkPolicy(t *testing.T) {
	ns := namespace(t, "netpol")
	doc := `apiVersion: skiff.dev/v1
kind: App
metadata: {name: orders, labels: {team: shop}}
spec:
  image: localhost/orders:1
  port: 8080
  network:
    allowFrom: [{app: web}, {selector: {matchLabels: {team: shop}}}]
`
	f := writeApp(t, doc)
	dry := applied(mustSkiff(t, "kube", "apply", "-f", f, "-n", ns, "--dry-run=server").Stdout)
	if dry["networkpolicy.networking.k8s.io/orders"] != "created" {
		t.Fatalf("server dry run: %v", dry)
	}
	first := applied(mustSkiff(t, "kube", "apply", "-f", f, "-n", ns).Stdout)
	if first["networkpolicy.networking.k8s.io/orders"] != "created" {
		t.Fatalf("apply: %v", first)
	}
	np, err := env.kube.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "orders", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := np.Spec.PodSelector.MatchLabels; len(got) != 1 || got[kubeapply.LabelApp] != "orders" {
		t.Errorf("podSelector: %v", got)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || len(np.Spec.Ingress) != 1 {
		t.Fatalf("policy: %+v", np.Spec)
	}
	from := np.Spec.Ingress[0].From
	if len(from) != 4 ||
		from[0].PodSelector.MatchLabels[kubeapply.LabelApp] != "orders" ||
		from[1].PodSelector.MatchLabels[kubeapply.LabelApp] != "web" ||
		from[2].PodSelector.MatchLabels["team"] != "shop" || from[2].PodSelector.MatchExpressions[0].Key != kubeapply.LabelApp ||
		from[3].NamespaceSelector.MatchLabels["skiff.dev/ingress"] != "true" {
		t.Fatalf("peers: %+v", from)
	}

	// The import of what the cluster holds gives allowFrom back.
	imp := skiff(clusterObjects(t, ns, "orders"), "kube", "import", "-f", "-", "-o", "yaml")
	if imp.Code != 0 || !strings.Contains(imp.Stdout, "allowFrom:\n      - app: web\n      - selector:\n          matchLabels:\n            team: shop\n") {
		t.Errorf("import of the cluster's objects: %s", imp)
	}

	edited := writeApp(t, strings.Replace(doc, "{app: web}", "{app: billing}", 1))
	second := applied(mustSkiff(t, "kube", "apply", "-f", edited, "-n", ns).Stdout)
	if second["networkpolicy.networking.k8s.io/orders"] != "configured" || second["deployment.apps/orders-00001"] != "unchanged" {
		t.Errorf("apply of an edited allowFrom: %v", second)
	}
	np, err = env.kube.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "orders", metav1.GetOptions{})
	if err != nil || np.Spec.Ingress[0].From[1].PodSelector.MatchLabels[kubeapply.LabelApp] != "billing" {
		t.Fatalf("after the edit: %v %+v", err, np)
	}

	// Prune deletes the policy of an App that no longer declares one
	// (as an export made before NetworkPolicies did), and nothing else.
	r := mustSkiff(t, "kube", "export", "-f", edited, "--namespace", ns)
	var declared []*unstructured.Unstructured
	for _, o := range objects(t, r.Stdout) {
		if o.GetKind() != "NetworkPolicy" {
			declared = append(declared, o)
		}
	}
	pruned, err := cluster(t, ns).Prune(context.Background(), []string{"orders"}, declared, kubeapply.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 1 || pruned[0].Ref != "networkpolicy.networking.k8s.io/orders" {
		t.Fatalf("pruned %+v", pruned)
	}
	if _, err := env.kube.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "orders", metav1.GetOptions{}); err == nil {
		t.Error("the NetworkPolicy is still there after prune")
	}
	if _, err := env.kube.AppsV1().Deployments(ns).Get(context.Background(), "orders-00001", metav1.GetOptions{}); err != nil {
		t.Errorf("prune took the Deployment: %v", err)
	}
}

var netpols = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}

// clusterObjects returns the App's Deployments, Services, autoscalers and
// NetworkPolicies as the cluster holds them, as a stream of JSON
// documents.
func clusterObjects(t *testing.T, ns, app string) string {
	t.Helper()
	var docs []string
	for _, r := range []schema.GroupVersionResource{deployments, services, hpas, netpols} {
		l, err := dyn(t).Resource(r).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubeapply.LabelApp + "=" + app})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			b, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(b))
		}
	}
	return strings.Join(docs, "\n---\n")
}
