package kubeapply

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PruneKinds are the kinds Prune looks at: every kind skiff's export
// makes. Kinds the cluster does not serve are skipped.
var PruneKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "PersistentVolumeClaim"},
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
	{Group: "serving.knative.dev", Version: "v1", Kind: "Service"},
}

// objectKey identifies an object whatever version it is read in.
type objectKey struct{ group, kind, namespace, name string }

func keyOf(o *unstructured.Unstructured) objectKey {
	gvk := o.GroupVersionKind()
	return objectKey{gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName()}
}

// Prune deletes the objects of the Apps named in apps (of the kinds in
// PruneKinds, labelled with LabelManagedBy=skiff and LabelApp=one of apps,
// last applied by the field manager "skiff") that are not among declared.
// It looks in the Cluster's namespace and in every namespace a declared
// object names. With o.DryRun the server checks the deletions but keeps
// the objects. The results are sorted by Ref.
func (c *Cluster) Prune(ctx context.Context, apps []string, declared []*unstructured.Unstructured, o ApplyOptions) ([]Result, error) {
	cands, err := c.PruneCandidates(ctx, apps, declared)
	if err != nil {
		return nil, err
	}
	var res []Result
	for _, obj := range cands {
		ri, _, err := c.resource(obj)
		if err != nil {
			return res, err
		}
		uid := obj.GetUID()
		bg := metav1.DeletePropagationBackground
		do := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &bg}
		if o.DryRun {
			do.DryRun = []string{metav1.DryRunAll}
		}
		if err := ri.Delete(ctx, obj.GetName(), do); err != nil && !apierrors.IsNotFound(err) {
			return res, objectError(obj, err)
		}
		res = append(res, Result{Ref: ref(obj), Action: Pruned, Object: obj})
	}
	return res, nil
}

// PruneCandidates returns what Prune would delete, without deleting it.
func (c *Cluster) PruneCandidates(ctx context.Context, apps []string, declared []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	nss := map[string]bool{c.Namespace: true}
	for _, d := range declared {
		if d.GetNamespace() != "" {
			nss[d.GetNamespace()] = true
		}
	}
	sel := fmt.Sprintf("%s=%s,%s in (%s)", LabelManagedBy, ManagedByValue, LabelApp, strings.Join(apps, ","))
	var listed []*unstructured.Unstructured
	for _, gvk := range PruneKinds {
		ok, err := c.Serves(gvk)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		for ns := range nss {
			probe := &unstructured.Unstructured{}
			probe.SetGroupVersionKind(gvk)
			probe.SetNamespace(ns)
			ri, _, err := c.resource(probe)
			if err != nil {
				return nil, err
			}
			l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return nil, unreachable(err)
			}
			for i := range l.Items {
				it := &l.Items[i]
				it.SetGroupVersionKind(gvk)
				listed = append(listed, it)
			}
		}
	}
	return pruneSelect(listed, apps, declared, c.Namespace), nil
}

// pruneSelect returns the objects of listed that Prune deletes: those
// labelled for one of apps, applied by FieldManager and not declared
// (declared objects without a namespace are in ns).
func pruneSelect(listed []*unstructured.Unstructured, apps []string, declared []*unstructured.Unstructured, ns string) []*unstructured.Unstructured {
	keep := map[objectKey]bool{}
	for _, d := range declared {
		k := keyOf(d)
		if k.namespace == "" {
			k.namespace = ns
		}
		keep[k] = true
	}
	want := map[string]bool{}
	for _, a := range apps {
		want[a] = true
	}
	var out []*unstructured.Unstructured
	for _, o := range listed {
		l := o.GetLabels()
		if l[LabelManagedBy] != ManagedByValue || !want[l[LabelApp]] || keep[keyOf(o)] || !appliedBy(o, FieldManager) {
			continue
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return ref(out[i])+out[i].GetNamespace() < ref(out[j])+out[j].GetNamespace() })
	return out
}

// appliedBy reports whether manager owns fields of o through apply.
func appliedBy(o *unstructured.Unstructured, manager string) bool {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}
