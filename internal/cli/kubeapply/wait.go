package kubeapply

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"skiff.dev/skiff/api/errdefs"
)

// Rollout is the state of one object's rollout.
type Rollout struct {
	// Done is true when the object has rolled out.
	Done bool
	// Failed is true when it never will without a change (a Deployment
	// past its progress deadline).
	Failed bool
	// Reason says what is awaited or what failed, naming the condition.
	Reason string
}

// RolloutOf evaluates obj's rollout from its status, as kubectl rollout
// status does: a Deployment has rolled out when the controller has seen
// its generation (status.observedGeneration), all replicas are updated and
// available and its Available condition is True; it has failed when its
// Progressing condition says ProgressDeadlineExceeded. A Knative Service
// has rolled out when its Ready condition is True at its generation. Other
// kinds have nothing to roll out.
func RolloutOf(obj *unstructured.Unstructured) Rollout {
	gvk := obj.GroupVersionKind()
	switch {
	case gvk.Group == "apps" && gvk.Kind == "Deployment":
		return deploymentRollout(obj)
	case gvk.Group == "serving.knative.dev" && gvk.Kind == "Service":
		return readyRollout(obj)
	}
	return Rollout{Done: true}
}

func deploymentRollout(obj *unstructured.Unstructured) Rollout {
	observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if observed < obj.GetGeneration() {
		return Rollout{Reason: fmt.Sprintf("the deployment controller has not seen generation %d yet (status.observedGeneration is %d)", obj.GetGeneration(), observed)}
	}
	if c := condition(obj, "Progressing"); c.Reason == "ProgressDeadlineExceeded" {
		return Rollout{Failed: true, Reason: fmt.Sprintf("condition Progressing is %s (%s: %s)", c.Status, c.Reason, c.Message)}
	}
	want := int64(1)
	if r, ok, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); ok {
		want = r
	}
	st := func(f string) int64 { v, _, _ := unstructured.NestedInt64(obj.Object, "status", f); return v }
	updated, total, avail := st("updatedReplicas"), st("replicas"), st("availableReplicas")
	switch {
	case updated < want:
		return Rollout{Reason: fmt.Sprintf("%d of %d replicas updated", updated, want)}
	case total > updated:
		return Rollout{Reason: fmt.Sprintf("%d old replicas pending termination", total-updated)}
	case avail < updated:
		c := condition(obj, "Available")
		return Rollout{Reason: fmt.Sprintf("%d of %d updated replicas available; condition Available is %s", avail, updated, conditionText(c))}
	}
	if c := condition(obj, "Available"); c.Status != "True" {
		return Rollout{Reason: "condition Available is " + conditionText(c)}
	}
	return Rollout{Done: true}
}

func readyRollout(obj *unstructured.Unstructured) Rollout {
	observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if observed < obj.GetGeneration() {
		return Rollout{Reason: fmt.Sprintf("its controller has not seen generation %d yet (status.observedGeneration is %d; is Knative Serving's controller running?)", obj.GetGeneration(), observed)}
	}
	c := condition(obj, "Ready")
	switch c.Status {
	case "True":
		return Rollout{Done: true}
	case "False":
		return Rollout{Failed: true, Reason: "condition Ready is " + conditionText(c)}
	}
	return Rollout{Reason: "condition Ready is " + conditionText(c)}
}

// condition returns obj's status condition of type t (Status "" when
// absent).
func condition(obj *unstructured.Unstructured, t string) metav1.Condition {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == t {
			s := func(k string) string { v, _ := m[k].(string); return v }
			return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s("status")), Reason: s("reason"), Message: s("message")}
		}
	}
	return metav1.Condition{Type: t}
}

func conditionText(c metav1.Condition) string {
	if c.Status == "" {
		return "not reported yet"
	}
	if c.Reason == "" {
		return string(c.Status)
	}
	return fmt.Sprintf("%s (%s: %s)", c.Status, c.Reason, c.Message)
}

// Wait polls every object with something to roll out until all have, and
// prints "REF rolled out" for each on w as it does. It fails, naming the
// object and the condition, when one has failed or when timeout passes.
func (c *Cluster) Wait(ctx context.Context, objs []*unstructured.Unstructured, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := map[int]Rollout{}
	for i, o := range objs {
		if hasRollout(o) {
			pending[i] = Rollout{Reason: "not read yet"}
		}
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		for i := range objs {
			if _, ok := pending[i]; !ok {
				continue
			}
			o := objs[i].DeepCopy()
			ri, _, err := c.resource(o)
			if err != nil {
				return err
			}
			live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				// The client's rate limiter refuses a request that could
				// not start before the deadline: that is the timeout too.
				if ctx.Err() != nil || strings.Contains(err.Error(), "would exceed context deadline") {
					break
				}
				return objectError(o, err)
			}
			r := RolloutOf(live)
			switch {
			case r.Done:
				delete(pending, i)
				fmt.Fprintf(w, "%s rolled out\n", ref(o))
			case r.Failed:
				return errdefs.Unavailable("%s did not roll out: %s", ref(o), r.Reason)
			default:
				pending[i] = r
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for i := range objs {
				if r, ok := pending[i]; ok {
					return errdefs.Unavailable("%s has not rolled out after %s: %s", ref(objs[i]), timeout, r.Reason)
				}
			}
		case <-tick.C:
		}
	}
	return nil
}

// hasRollout reports whether o's kind has a rollout to wait for.
func hasRollout(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return gvk.Group == "apps" && gvk.Kind == "Deployment" || gvk.Group == "serving.knative.dev" && gvk.Kind == "Service"
}
