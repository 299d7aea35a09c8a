package kubeapply

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Action says what applying (or pruning) did to one object.
type Action string

// The actions, as kubectl prints them.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
)

// Result is what happened to one object.
type Result struct {
	// Ref names the object as kubectl does (deployment.apps/shop-00001).
	Ref    string
	Action Action
	// Object is the object as the server returned it (after apply), or
	// as it was (when pruned).
	Object *unstructured.Unstructured
	// Live is the object as it was before applying; nil when created.
	Live *unstructured.Unstructured
}

// ApplyOptions change how Apply works.
type ApplyOptions struct {
	// DryRun asks the server to process every step (defaults, admission,
	// validation) without storing anything.
	DryRun bool
	// ForceConflicts takes over fields another field manager owns instead
	// of failing with a conflict.
	ForceConflicts bool
}

// Apply applies objs with server-side apply, as field manager "skiff",
// with strict field validation. Every object is first applied as a
// server-side dry run: if the server refuses any, nothing is stored and
// the error lists every refusal (a *ServerError each, joined). Objects
// are applied in dependency order (Secrets and volumes before the
// workloads that use them, routes last); an object the dry run does not
// change is not written (its Action is Unchanged). Objects without a
// namespace get the Cluster's.
func (c *Cluster) Apply(ctx context.Context, objs []*unstructured.Unstructured, o ApplyOptions) ([]Result, error) {
	objs = ordered(objs)
	dry, err := c.applyAll(ctx, objs, o.ForceConflicts, true)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		return dry, nil
	}
	// An object the dry run leaves as it is is not written: a write would
	// only churn its resourceVersion (for example a PersistentVolumeClaim,
	// whose protection finalizer an admission plugin adds on create and
	// again on each apply that does not declare it).
	var res []Result
	var errs []error
	for i, obj := range objs {
		if i < len(dry) && dry[i].Action == Unchanged && dry[i].Ref == ref(obj) {
			r := dry[i]
			r.Object = r.Live
			res = append(res, r)
			continue
		}
		r, err := c.applyOne(ctx, obj, o.ForceConflicts, false)
		if err != nil {
			var se *ServerError
			if !errors.As(err, &se) {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		res = append(res, r)
	}
	return res, errors.Join(errs...)
}

// applyAll applies every object, collecting every refusal.
func (c *Cluster) applyAll(ctx context.Context, objs []*unstructured.Unstructured, force, dryRun bool) ([]Result, error) {
	var res []Result
	var errs []error
	for _, obj := range objs {
		r, err := c.applyOne(ctx, obj, force, dryRun)
		if err != nil {
			var se *ServerError
			if !errors.As(err, &se) {
				return nil, err // the cluster, not the object: stop here
			}
			errs = append(errs, err)
			continue
		}
		res = append(res, r)
	}
	return res, errors.Join(errs...)
}

func (c *Cluster) applyOne(ctx context.Context, obj *unstructured.Unstructured, force, dryRun bool) (Result, error) {
	obj = obj.DeepCopy()
	ri, _, err := c.resource(obj)
	if err != nil {
		return Result{}, err
	}
	r := Result{Ref: ref(obj)}
	live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return r, unreachable(err)
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return r, err
	}
	po := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: &force}
	if dryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, po)
	if err != nil {
		return r, objectError(obj, err)
	}
	r.Object, r.Live = out, live
	switch {
	case live == nil:
		r.Action = Created
	case !dryRun && live.GetResourceVersion() == out.GetResourceVersion(),
		dryRun && equality.Semantic.DeepEqual(comparable(live), comparable(out)):
		r.Action = Unchanged
	default:
		r.Action = Configured
	}
	return r, nil
}

// comparable is obj without what the server changes on every write
// (managed fields, resource version, generation) and without status.
func comparable(obj *unstructured.Unstructured) map[string]any {
	c := obj.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	return c.Object
}

// kindOrder is the order kinds are applied in; kinds not named go between
// the workloads and the routes.
var kindOrder = map[string]int{
	"Namespace":               0,
	"NetworkPolicy":           1,
	"ServiceAccount":          2,
	"Secret":                  3,
	"ConfigMap":               3,
	"PersistentVolumeClaim":   4,
	"Service":                 5,
	"Deployment":              6,
	"HorizontalPodAutoscaler": 7,
	"Ingress":                 9,
	"HTTPRoute":               9,
}

// ordered returns objs sorted by kindOrder, keeping the given order
// within a kind. A Knative Service (group serving.knative.dev) goes with
// the workloads.
func ordered(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	rank := func(o *unstructured.Unstructured) int {
		gvk := o.GroupVersionKind()
		if gvk.Group == "serving.knative.dev" {
			return 6
		}
		if r, ok := kindOrder[gvk.Kind]; ok {
			return r
		}
		return 8
	}
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}
