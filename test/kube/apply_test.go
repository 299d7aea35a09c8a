//go:build kube

package kube

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/cli/kubeapply"
)

// exportApps are App files covering every App field, from the export's
// golden tests.
var exportApps = []string{"full", "minimal", "internal-cpu"}

func appFile(name string) string {
	return filepath.Join(env.repo, "internal/cli/kube/testdata/export", name+".yaml")
}

// writeApp writes an App document to a file of the test and returns its
// path.
func writeApp(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// exported runs skiff kube export and returns the refs of its objects in
// the form apply prints them (kind.group/name).
func exported(t *testing.T, args ...string) []string {
	t.Helper()
	r := skiff("", append([]string{"kube", "export"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("export: %s", r)
	}
	objs := objects(t, r.Stdout)
	var refs []string
	for _, o := range objs {
		refs = append(refs, refOf(o))
	}
	sort.Strings(refs)
	return refs
}

func refOf(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k + "/" + o.GetName()
}

var applyLine = regexp.MustCompile(`(?m)^(\S+) (created|configured|unchanged|pruned)( \(server dry run\))?$`)

// applied parses apply's output into ref -> action.
func applied(out string) map[string]string {
	m := map[string]string{}
	for _, l := range applyLine.FindAllStringSubmatch(out, -1) {
		m[l[1]] = l[2]
	}
	return m
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mustSkiff(t *testing.T, args ...string) Result {
	t.Helper()
	r := skiff("", args...)
	if r.Code != 0 {
		t.Fatalf("skiff %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// dyn is a dynamic client of the test cluster.
func dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", env.cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	services    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	pvcs        = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	ingresses   = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	httproutes  = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	hpas        = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	configmaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	ksvcs       = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
)

// versions returns the resourceVersion of every object of the App in ns,
// by kind/name.
func versions(t *testing.T, ns, app string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range []schema.GroupVersionResource{deployments, services, pvcs, ingresses, hpas, httproutes, netpols} {
		l, err := dyn(t).Resource(r).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubeapply.LabelApp + "=" + app})
		if err != nil {
			if strings.Contains(err.Error(), "could not find") || strings.Contains(err.Error(), "not found") {
				continue
			}
			t.Fatal(err)
		}
		for _, o := range l.Items {
			out[r.Resource+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	return out
}

// TestApplyTwiceChangesNothing: a second apply of the same Apps reports
// every object unchanged and leaves every resourceVersion as it was; diff
// shows the objects before the first apply and nothing after.
func TestApplyTwiceChangesNothing(t *testing.T) {
	ns := namespace(t, "twice")
	f := appFile("full")
	d := skiff("", "kube", "diff", "-f", f, "-n", ns, "--ingress")
	if d.Code != 1 || !strings.Contains(d.Stdout, "+++ deployment.apps/shop-00001 (applied)") || !strings.Contains(d.Stdout, "+kind: Deployment") {
		t.Fatalf("diff before the first apply: %s", d)
	}
	first := applied(mustSkiff(t, "kube", "apply", "-f", f, "-n", ns, "--ingress").Stdout)
	want := exported(t, "-f", f, "--ingress")
	if got := keys(first); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("applied %v, exported %v", got, want)
	}
	for ref, a := range first {
		if a != "created" {
			t.Errorf("%s %s on the first apply", ref, a)
		}
	}
	before := versions(t, ns, "shop")
	if len(before) < 4 {
		t.Fatalf("objects in the cluster: %v", before)
	}
	second := applied(mustSkiff(t, "kube", "apply", "-f", f, "-n", ns, "--ingress").Stdout)
	for ref, a := range second {
		if a != "unchanged" {
			t.Errorf("%s %s on the second apply", ref, a)
		}
	}
	if len(second) != len(first) {
		t.Errorf("second apply: %v", second)
	}
	after := versions(t, ns, "shop")
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: resourceVersion %s became %s", k, v, after[k])
		}
	}
	if d := skiff("", "kube", "diff", "-f", f, "-n", ns, "--ingress"); d.Code != 0 || d.Stdout != "" {
		t.Errorf("diff after apply: %s", d)
	}
	// A change shows as a diff of just that field, and the dry run stores
	// nothing.
	changed := writeApp(t, strings.Replace(readFile(t, f), "memory: 256Mi", "memory: 300Mi", 1))
	d = skiff("", "kube", "diff", "-f", changed, "-n", ns, "--ingress")
	if d.Code != 1 || !strings.Contains(d.Stdout, "-            memory: 256Mi\n+            memory: 300Mi") {
		t.Errorf("diff of a changed memory: %s", d)
	}
	dry := applied(mustSkiff(t, "kube", "apply", "-f", changed, "-n", ns, "--ingress", "--dry-run=server").Stdout)
	if dry["deployment.apps/shop-00001"] != "configured" || dry["service/shop"] != "unchanged" {
		t.Errorf("server dry run: %v", dry)
	}
	if v := versions(t, ns, "shop"); v["deployments/shop-00001"] != before["deployments/shop-00001"] {
		t.Errorf("the dry run changed the Deployment")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeploymentsGetReplicaSetsAndPods: the controller manager makes a
// ReplicaSet and Pods for an applied App; without a kubelet the Pods stay
// Pending, and --wait says which condition it waits for. Once the Pods
// are marked ready (standing in for a kubelet), --wait sees the rollout.
func TestDeploymentsGetReplicaSetsAndPods(t *testing.T) {
	ns := namespace(t, "pods")
	f := writeApp(t, `apiVersion: skiff.dev/v1
kind: App
metadata: {name: web}
spec:
  image: localhost/web:1
  port: 8080
  scale: {min: 2, max: 2}
`)
	r := skiff("", "kube", "apply", "-f", f, "-n", ns, "--wait", "--timeout", "4s")
	if r.Code == 0 || !strings.Contains(r.Stderr, "deployment.apps/web-00001 has not rolled out after 4s") || !strings.Contains(r.Stderr, "Available") {
		t.Fatalf("--wait without a kubelet: %s", r)
	}
	sel := metav1.ListOptions{LabelSelector: kubeapply.LabelApp + "=web"}
	eventually(t, 60*time.Second, "a ReplicaSet with 2 replicas", func() bool {
		l, err := env.kube.AppsV1().ReplicaSets(ns).List(context.Background(), sel)
		return err == nil && len(l.Items) == 1 && l.Items[0].Status.Replicas == 2
	})
	var pods *corev1.PodList
	eventually(t, 60*time.Second, "2 Pods", func() bool {
		var err error
		pods, err = env.kube.CoreV1().Pods(ns).List(context.Background(), sel)
		return err == nil && len(pods.Items) == 2
	})
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodPending || p.Spec.Containers[0].Image != "localhost/web:1" {
			t.Errorf("pod %s: phase %s image %s", p.Name, p.Status.Phase, p.Spec.Containers[0].Image)
		}
	}
	done := make(chan Result)
	go func() { done <- skiff("", "kube", "apply", "-f", f, "-n", ns, "--wait", "--timeout", "60s") }()
	for _, p := range pods.Items {
		markReady(t, ns, p.Name)
	}
	select {
	case r = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("--wait did not return")
	}
	if r.Code != 0 || !strings.Contains(r.Stdout, "deployment.apps/web-00001 rolled out") {
		t.Errorf("--wait with ready pods: %s", r)
	}
}

// markReady sets a Pod Running and Ready, as a kubelet would.
func markReady(t *testing.T, ns, name string) {
	t.Helper()
	p, err := env.kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if _, err := env.kube.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestPruneRemovesExactlyWhatItShould: after an App drops its volumes and
// its ingress, apply --prune deletes their objects and nothing else:
// not the objects still declared, not another App's, not those another
// field manager made with the App's labels, not unlabelled ones.
func TestPruneRemovesExactlyWhatItShould(t *testing.T) {
	ns := namespace(t, "prune")
	full := `apiVersion: skiff.dev/v1
kind: App
metadata: {name: shop}
spec:
  image: localhost/shop:1
  port: 8080
  ingress: {host: shop.example.com, external: true}
  volumes: [{name: data, mountPath: /data}]
`
	other := writeApp(t, strings.ReplaceAll(strings.ReplaceAll(full, "shop", "other"), "name: data", "name: cache"))
	mustSkiff(t, "kube", "apply", "-f", writeApp(t, full), "-n", ns, "--ingress")
	mustSkiff(t, "kube", "apply", "-f", other, "-n", ns, "--ingress")
	// The App's labels on an object skiff never applied.
	hand := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-notes", Labels: map[string]string{kubeapply.LabelApp: "shop", kubeapply.LabelManagedBy: "skiff"}}}
	if _, err := env.kube.CoreV1().ConfigMaps(ns).Create(context.Background(), hand, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	before := versions(t, ns, "shop")
	if before["ingresses/shop"] == "" || before["persistentvolumeclaims/data"] == "" {
		t.Fatalf("before: %v", before)
	}
	slim := writeApp(t, `apiVersion: skiff.dev/v1
kind: App
metadata: {name: shop}
spec:
  image: localhost/shop:1
  port: 8080
`)
	d := skiff("", "kube", "diff", "-f", slim, "-n", ns, "--ingress", "--prune")
	if d.Code != 1 || !strings.Contains(d.Stdout, "+++ ingress.networking.k8s.io/shop (pruned)") {
		t.Errorf("diff --prune: %s", d)
	}
	dry := mustSkiff(t, "kube", "apply", "-f", slim, "-n", ns, "--ingress", "--prune", "--dry-run=server")
	if !strings.Contains(dry.Stdout, "ingress.networking.k8s.io/shop pruned (server dry run)") {
		t.Errorf("dry run prune: %s", dry)
	}
	if v := versions(t, ns, "shop"); v["ingresses/shop"] == "" {
		t.Fatal("the dry run deleted the Ingress")
	}
	r := mustSkiff(t, "kube", "apply", "-f", slim, "-n", ns, "--ingress", "--prune")
	got := map[string]bool{}
	for ref, a := range applied(r.Stdout) {
		if a == "pruned" {
			got[ref] = true
		}
	}
	want := []string{"ingress.networking.k8s.io/shop", "persistentvolumeclaim/data"}
	if len(got) != len(want) || !got[want[0]] || !got[want[1]] {
		t.Fatalf("pruned %v, want %v\n%s", got, want, r)
	}
	after := versions(t, ns, "shop")
	for k := range before {
		gone := k == "ingresses/shop" || k == "persistentvolumeclaims/data"
		if _, ok := after[k]; ok == gone && !(gone && pvcTerminating(t, ns, k)) {
			t.Errorf("%s: present after prune = %v", k, ok)
		}
	}
	if _, err := env.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "shop-notes", metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap another manager made was pruned: %v", err)
	}
	if v := versions(t, ns, "other"); v["ingresses/other"] == "" || v["persistentvolumeclaims/cache"] == "" || v["deployments/other-00001"] == "" {
		t.Errorf("the other App's objects: %v", v)
	}
}

// pvcTerminating reports whether a PersistentVolumeClaim k is being
// deleted (held by its protection finalizer) or is gone by now (the
// controller took the finalizer off since it was listed): pruned all the
// same.
func pvcTerminating(t *testing.T, ns, k string) bool {
	name, ok := strings.CutPrefix(k, "persistentvolumeclaims/")
	if !ok {
		return false
	}
	p, err := env.kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	return err == nil && p.DeletionTimestamp != nil
}

// TestRefusedFieldNamesTheAppField: a valid App whose translation the
// API server refuses gets the server's message with the App field it
// comes from, and nothing of it is applied.
func TestRefusedFieldNamesTheAppField(t *testing.T) {
	ns := namespace(t, "refused")
	f := writeApp(t, `apiVersion: skiff.dev/v1
kind: App
metadata: {name: big}
spec:
  image: localhost/big:1
  port: 8080
  security: {runAsUser: 3000000000}
`)
	r := skiff("", "kube", "apply", "-f", f, "-n", ns)
	if r.Code == 0 {
		t.Fatalf("applied: %s", r)
	}
	for _, want := range []string{`app "big"`, "deployment.apps/big-00001", "spec.security.runAsUser: ", "2147483647", "securityContext.runAsUser)"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r)
		}
	}
	if v := versions(t, ns, "big"); len(v) != 0 {
		t.Errorf("something was applied: %v", v)
	}
}

// TestStrictValidation: an unknown field is refused by the server (strict
// field validation), named with its path, not dropped.
func TestStrictValidation(t *testing.T) {
	ns := namespace(t, "strict")
	c := cluster(t, ns)
	objs := objects(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: x-00001, labels: {skiff.dev/app: x, app.kubernetes.io/managed-by: skiff}}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: app, image: localhost/x:1, imagee: typo}]
`)
	_, err := c.Apply(context.Background(), objs, kubeapply.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "imagee") || !strings.Contains(err.Error(), "field not declared in schema") || !strings.Contains(err.Error(), `app "x"`) {
		t.Fatalf("strict validation: %v", err)
	}
}
