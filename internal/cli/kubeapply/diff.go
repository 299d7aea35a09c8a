package kubeapply

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api/app"
)

// Diff returns what applying objs would change, as kubectl diff shows it:
// for each object, a unified diff of its live YAML and the YAML a
// server-side dry run of the apply returns (new objects diff against
// nothing), followed, when pruneApps names Apps, by the objects Prune
// would delete (diffed against nothing). Fields the server rewrites on
// every write (managedFields, resourceVersion, uid, creationTimestamp) and
// status are left out. The result is "" when nothing would change.
func (c *Cluster) Diff(ctx context.Context, objs []*unstructured.Unstructured, pruneApps []string, o ApplyOptions) (string, error) {
	o.DryRun = true
	res, err := c.Apply(ctx, objs, o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range res {
		b.WriteString(app.UnifiedDiff(r.Ref+" (live)", r.Ref+" (applied)", diffYAML(r.Live), diffYAML(r.Object)))
	}
	gone, err := c.PruneCandidates(ctx, pruneApps, objs)
	if err != nil {
		return "", err
	}
	for _, g := range gone {
		b.WriteString(app.UnifiedDiff(ref(g)+" (live)", ref(g)+" (pruned)", diffYAML(g), ""))
	}
	return b.String(), nil
}

// diffYAML is obj's YAML as Diff compares it ("" for nil).
func diffYAML(obj *unstructured.Unstructured) string {
	if obj == nil {
		return ""
	}
	c := obj.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	b, err := yaml.Marshal(c.Object)
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	return string(b)
}
