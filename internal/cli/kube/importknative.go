package kube

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// knativeApp imports a serving.knative.dev/v1 Service: its template is
// the App's latest revision, its traffic the App's.
func (s *importSet) knativeApp(u *unstructured.Unstructured) (api.App, error) {
	ref := objectRef(u)
	s.used[ref] = true
	name := u.GetName()
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind}
	a.Metadata.Name = name
	a.Metadata.Labels = userLabels(u.GetLabels())
	readAppAnnotations(&a, u.GetAnnotations())
	a.Spec.Ingress.External = u.GetLabels()[knativeVisibility] != knativeVisibilityLocal
	tmpl, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
	tmeta, _, _ := unstructured.NestedMap(tmpl, "metadata")
	tspec, _, _ := unstructured.NestedMap(tmpl, "spec")
	tspec = maps.Clone(tspec)
	if t, ok := tspec["timeoutSeconds"]; ok {
		if n, ok := asInt(t); ok {
			a.Spec.Ingress.Timeout = api.Duration{Duration: time.Duration(n) * time.Second}
		}
		delete(tspec, "timeoutSeconds")
	}
	for _, k := range []string{"containerConcurrency", "responseStartTimeoutSeconds", "idleTimeoutSeconds"} {
		if _, ok := tspec[k]; ok {
			s.warn(name, ref+" spec.template.spec."+k, "no App field for it (scale.concurrency is a target, not a limit): not imported")
			delete(tspec, k)
		}
	}
	var tpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tspec, &tpl.Spec); err != nil {
		return api.App{}, errdefs.Invalid("%s: spec.template.spec: %v", ref, err)
	}
	annos := map[string]string{}
	if m, ok := tmeta["annotations"].(map[string]any); ok {
		for k, v := range m {
			annos[k] = fmt.Sprint(v)
		}
	}
	tpl.Annotations = annos
	pr := &podReader{app: name, ref: ref + " spec.template.spec", warns: &s.warns}
	pr.readPod(tpl, &a.Spec)
	if a.Spec.Port == 0 && len(tpl.Spec.Containers) > 0 {
		a.Spec.Port = 8080 // Knative's default, as skiff's
	}
	s.readKnativeScale(&a, annos, ref)
	latest, _ := tmeta["name"].(string)
	traffic, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic")
	for i, t := range traffic {
		m, _ := t.(map[string]any)
		tt := api.TrafficTarget{}
		if n, ok := asInt(m["percent"]); ok {
			tt.Percent = n
		}
		tt.Tag, _ = m["tag"].(string)
		rev, _ := m["revisionName"].(string)
		if lr, _ := m["latestRevision"].(bool); lr || (rev == "" && m["configurationName"] == nil) || (rev != "" && rev == latest) {
			tt.Latest = true
		} else {
			tt.Revision = rev
		}
		if _, ok := m["url"]; ok {
			s.warn(name, fmt.Sprintf("%s spec.traffic[%d].url", ref, i), "set by Knative in status only: not imported")
		}
		a.Spec.Traffic = append(a.Spec.Traffic, tt)
	}
	podLabels := map[string]string{knativeServiceLabel: name}
	if m, ok := tmeta["labels"].(map[string]any); ok {
		for k, v := range m {
			podLabels[k] = fmt.Sprint(v)
		}
	}
	s.readNetworkPolicies(&a, podLabels)
	return a, nil
}

// readKnativeScale reads the autoscaling annotations of a Knative
// revision template.
func (s *importSet) readKnativeScale(a *api.App, annos map[string]string, ref string) {
	sc := &a.Spec.Scale
	sc.Min = ptr(0) // Knative scales to zero unless told otherwise
	target := 0
	metric := "concurrency"
	for _, k := range sortedKeys(annos) {
		v := annos[k]
		n, err := strconv.Atoi(v)
		switch k {
		case kaMinScale:
			sc.Min = ptr(n)
		case kaMaxScale:
			if n > 0 {
				sc.Max = ptr(n)
			}
		case kaTarget:
			target = n
		case kaMetric:
			metric = v
		case kaRetention:
			if d, err := time.ParseDuration(v); err == nil {
				sc.IdleTimeout = api.Duration{Duration: d}
			}
		case kaClass:
		case annoPids, annoImage, annoIdentityAud, annoHostUsers:
		default:
			if strings.HasPrefix(k, "autoscaling.knative.dev/") {
				s.warn(a.Metadata.Name, ref+" spec.template.metadata.annotations."+k, "skiff's autoscaler has no such setting: not imported")
			} else if !strings.HasPrefix(k, annoPrefix) {
				s.warn(a.Metadata.Name, ref+" spec.template.metadata.annotations."+k, "revision annotations have no App counterpart: not imported")
			}
			continue
		}
		if err != nil && (k == kaMinScale || k == kaMaxScale || k == kaTarget) {
			s.warn(a.Metadata.Name, ref+" spec.template.metadata.annotations."+k, "not a whole number: %q", v)
		}
	}
	if target > 0 {
		switch metric {
		case "concurrency":
			sc.Concurrency = target
		case "rps":
			sc.RPS = target
		case "cpu":
			sc.CPUUtilization = target
		case "memory":
			sc.MemoryUtilization = target
		default:
			s.warn(a.Metadata.Name, ref+" spec.template.metadata.annotations."+kaMetric, "metric %s has no App counterpart: the App scales on concurrency", metric)
		}
	}
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case int:
		return n, true
	case float64:
		return int(n), true
	}
	return 0, false
}
