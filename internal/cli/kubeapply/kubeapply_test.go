package kubeapply

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"skiff.dev/skiff/api/errdefs"
)

func TestAppField(t *testing.T) {
	for _, tc := range []struct{ kind, path, want string }{
		{"Deployment", "spec.template.spec.containers[0].image", "spec.image"},
		{"Deployment", `.spec.template.spec.containers[name="app"].imagePullPolicyy`, ""},
		{"Deployment", "spec.template.spec.containers[0].env[2].name", "spec.env[2]"},
		{"Deployment", `.spec.template.spec.containers[name="app"].env[name="MODE"].valueFrom`, "spec.env[MODE]"},
		{"Deployment", "spec.template.spec.containers[0].resources.limits[memory]", "spec.resources.memory"},
		{"Deployment", "spec.template.spec.containers[0].resources.requests.cpu", "spec.resources.cpu"},
		{"Deployment", "spec.template.spec.containers[0].readinessProbe.httpGet.port", "spec.probes.readiness"},
		{"Deployment", "spec.template.spec.containers[0].securityContext.runAsUser", "spec.security.runAsUser"},
		{"Deployment", "spec.template.spec.securityContext.runAsUser", "spec.security.runAsUser"},
		{"Deployment", "spec.template.spec.containers[0].volumeMounts[1].mountPath", "spec.volumes[1]"},
		{"Deployment", "spec.replicas", "spec.scale.min"},
		{"Deployment", "metadata.labels", "metadata.labels"},
		{"Deployment", "spec.strategy", ""},
		{"Service", "spec.ports[0].port", "spec.port"},
		{"Service", "spec.traffic[1].percent", "spec.traffic[1]"},
		{"HorizontalPodAutoscaler", "spec.maxReplicas", "spec.scale.max"},
		{"Ingress", "spec.rules[0].host", "spec.ingress.host"},
		{"HTTPRoute", "spec.hostnames[0]", "spec.ingress.host"},
		{"HTTPRoute", "spec.rules[0].backendRefs[1].weight", "spec.traffic[1]"},
		{"PersistentVolumeClaim", "metadata.name", "spec.volumes"},
		{"NetworkPolicy", "spec.ingress[0]", "spec.network.allowFrom"},
	} {
		if got := AppField(tc.kind, tc.path); got != tc.want {
			t.Errorf("AppField(%s, %s) = %q, want %q", tc.kind, tc.path, got, tc.want)
		}
	}
}

func deployment(name, app string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	u.SetName(name)
	u.SetNamespace("web")
	u.SetLabels(map[string]string{LabelApp: app, LabelManagedBy: ManagedByValue})
	return u
}

func TestObjectErrorMapsCausesToAppFields(t *testing.T) {
	obj := deployment("shop-00001", "shop")
	err := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "shop-00001", field.ErrorList{
		field.Invalid(field.NewPath("spec", "template", "spec", "containers").Index(0).Child("securityContext", "runAsUser"), int64(3000000000), "must be between 0 and 2147483647, inclusive"),
	})
	got := objectError(obj, err)
	var se *ServerError
	if !errors.As(got, &se) {
		t.Fatalf("not a ServerError: %v", got)
	}
	if !errors.Is(got, errdefs.ErrInvalid) || !apierrors.IsInvalid(got) {
		t.Errorf("category lost: %v", got)
	}
	msg := got.Error()
	for _, want := range []string{`app "shop"`, "deployment.apps/shop-00001", "spec.security.runAsUser: ", "must be between 0 and 2147483647", "(spec.template.spec.containers[0].securityContext.runAsUser)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestObjectErrorStrictValidation(t *testing.T) {
	obj := deployment("shop-00001", "shop")
	err := apierrors.NewBadRequest(`failed to create typed patch object (web/shop-00001; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="app"].imagee: field not declared in schema`)
	msg := objectError(obj, err).Error()
	if !strings.Contains(msg, `field not declared in schema (.spec.template.spec.containers[name="app"].imagee)`) {
		t.Errorf("strict validation field not named: %q", msg)
	}
	if !errors.Is(objectError(obj, err), errdefs.ErrInvalid) {
		t.Error("a bad request is not Invalid")
	}
	conflict := apierrors.NewApplyConflict([]metav1.StatusCause{{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl"`, Field: ".spec.replicas"}}, "Apply failed with 1 conflict")
	got := objectError(obj, conflict)
	if !errors.Is(got, errdefs.ErrConflict) || !strings.Contains(got.Error(), "--force-conflicts") || !strings.Contains(got.Error(), "spec.scale.min") {
		t.Errorf("conflict: %v", got)
	}
}

func managed(u *unstructured.Unstructured, manager string, op metav1.ManagedFieldsOperationType) *unstructured.Unstructured {
	u.SetManagedFields(append(u.GetManagedFields(), metav1.ManagedFieldsEntry{Manager: manager, Operation: op}))
	return u
}

func TestPruneSelect(t *testing.T) {
	declared := []*unstructured.Unstructured{deployment("shop-00002", "shop")}
	nsLess := deployment("shop-extra", "shop")
	nsLess.SetNamespace("")
	declared = append(declared, nsLess)
	old := managed(deployment("shop-00001", "shop"), FieldManager, metav1.ManagedFieldsOperationApply)
	listed := []*unstructured.Unstructured{
		old,
		managed(deployment("shop-00002", "shop"), FieldManager, metav1.ManagedFieldsOperationApply),   // declared
		managed(deployment("shop-extra", "shop"), FieldManager, metav1.ManagedFieldsOperationApply),   // declared, namespace by default
		managed(deployment("shop-hand", "shop"), "kubectl", metav1.ManagedFieldsOperationApply),       // another manager
		managed(deployment("shop-upd", "shop"), FieldManager, metav1.ManagedFieldsOperationUpdate),    // not applied
		managed(deployment("other-00001", "other"), FieldManager, metav1.ManagedFieldsOperationApply), // another App
	}
	nolabel := managed(deployment("shop-nolabel", "shop"), FieldManager, metav1.ManagedFieldsOperationApply)
	nolabel.SetLabels(map[string]string{LabelApp: "shop"})
	listed = append(listed, nolabel)
	got := pruneSelect(listed, []string{"shop"}, declared, "web")
	if len(got) != 1 || got[0] != old {
		var names []string
		for _, g := range got {
			names = append(names, g.GetName())
		}
		t.Fatalf("pruned %v, want exactly shop-00001", names)
	}
}

func TestRolloutOf(t *testing.T) {
	dep := func(gen, observed, replicas, updated, total, avail int64, conds ...map[string]any) *unstructured.Unstructured {
		u := deployment("d", "a")
		u.SetGeneration(gen)
		u.Object["spec"] = map[string]any{"replicas": replicas}
		cs := make([]any, len(conds))
		for i, c := range conds {
			cs[i] = c
		}
		u.Object["status"] = map[string]any{"observedGeneration": observed, "updatedReplicas": updated, "replicas": total, "availableReplicas": avail, "conditions": cs}
		return u
	}
	availTrue := map[string]any{"type": "Available", "status": "True"}
	availFalse := map[string]any{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}
	deadline := map[string]any{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
	for _, tc := range []struct {
		name         string
		obj          *unstructured.Unstructured
		done, failed bool
		reason       string
	}{
		{"not observed", dep(2, 1, 1, 1, 1, 1, availTrue), false, false, "has not seen generation 2"},
		{"updating", dep(1, 1, 3, 1, 3, 1, availTrue), false, false, "1 of 3 replicas updated"},
		{"old pending", dep(1, 1, 1, 1, 2, 1, availTrue), false, false, "1 old replicas pending termination"},
		{"unavailable", dep(1, 1, 1, 1, 1, 0, availFalse), false, false, "condition Available is False (MinimumReplicasUnavailable"},
		{"deadline", dep(1, 1, 1, 1, 1, 0, deadline), false, true, "ProgressDeadlineExceeded"},
		{"zero replicas", dep(1, 1, 0, 0, 0, 0, availTrue), true, false, ""},
		{"done", dep(3, 3, 2, 2, 2, 2, availTrue), true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := RolloutOf(tc.obj)
			if r.Done != tc.done || r.Failed != tc.failed || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("got %+v, want done=%v failed=%v reason ~ %q", r, tc.done, tc.failed, tc.reason)
			}
		})
	}
	svc := &unstructured.Unstructured{Object: map[string]any{}}
	svc.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Service"})
	if !RolloutOf(svc).Done || hasRollout(svc) {
		t.Error("a Service has nothing to roll out")
	}
}

func TestOrdered(t *testing.T) {
	mk := func(group, kind string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: kind})
		return u
	}
	in := []*unstructured.Unstructured{mk("gateway.networking.k8s.io", "HTTPRoute"), mk("apps", "Deployment"), mk("", "Secret"), mk("", "Service"), mk("", "PersistentVolumeClaim")}
	var got []string
	for _, o := range ordered(in) {
		got = append(got, o.GetKind())
	}
	if strings.Join(got, " ") != "Secret PersistentVolumeClaim Service Deployment HTTPRoute" {
		t.Errorf("order %v", got)
	}
}

func TestDiffYAMLLeavesOutServerFields(t *testing.T) {
	u := deployment("d", "a")
	u.SetResourceVersion("42")
	u.SetUID("u-1")
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "skiff"}})
	u.Object["status"] = map[string]any{"replicas": int64(1)}
	y := diffYAML(u)
	for _, bad := range []string{"resourceVersion", "uid", "managedFields", "status"} {
		if strings.Contains(y, bad) {
			t.Errorf("diff form keeps %s:\n%s", bad, y)
		}
	}
	if !strings.Contains(y, "name: d") || diffYAML(nil) != "" {
		t.Errorf("diff form:\n%s", y)
	}
}
