//go:build kube

package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/cli/kubeapply"
)

// The published CRDs, copied from the Go modules that hold them (see the
// head of each file for its version and source).
const (
	gatewayCRDs = "testdata/gateway-api-v1.6.3-standard-install.yaml"
	knativeCRDs = "testdata/knative-serving-v0.51.0-crds.yaml"
)

var crds = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestDiscoveryThenCRDs runs in order: on a cluster without the Gateway
// API, routes become Ingresses with a warning, and the knative flavor is
// refused naming the CRDs to install; then the Gateway API and Knative
// Serving CRDs are installed from their published YAML, and every object
// exported from a table of Apps, in every flavor, is accepted by
// server-side apply with strict validation against them.
func TestDiscoveryThenCRDs(t *testing.T) {
	t.Run("without the Gateway API routes become Ingresses", func(t *testing.T) {
		ns := namespace(t, "no-gateway")
		r := mustSkiff(t, "kube", "apply", "-f", appFile("full"), "-n", ns)
		if !strings.Contains(r.Stderr, "does not serve the Gateway API") || !strings.Contains(r.Stdout, "ingress.networking.k8s.io/shop created") {
			t.Fatalf("fallback: %s", r)
		}
		if strings.Contains(r.Stdout, "httproute") {
			t.Errorf("HTTPRoutes applied without the Gateway API: %s", r)
		}
	})
	t.Run("knative without Knative Serving is refused", func(t *testing.T) {
		ns := namespace(t, "no-knative")
		r := skiff("", "kube", "apply", "-f", appFile("minimal"), "-n", ns, "--flavor", "knative")
		if r.Code == 0 || !strings.Contains(r.Stderr, "serving.knative.dev") || !strings.Contains(r.Stderr, "serving-crds.yaml") {
			t.Fatalf("knative without its CRDs: %s", r)
		}
		if v := versions(t, ns, "hello"); len(v) != 0 {
			t.Errorf("applied anyway: %v", v)
		}
	})
	installCRDs(t, gatewayCRDs, knativeCRDs)
	for _, app := range exportApps {
		for _, flavor := range [][]string{{"--flavor", "plain"}, {"--flavor", "plain", "--ingress"}, {"--flavor", "knative"}} {
			name := app + " " + strings.Join(flavor, " ")
			t.Run(name, func(t *testing.T) {
				ns := namespace(t, strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(strings.ReplaceAll(name, "--", "")), " ", "-"), "flavor-", ""))
				args := append([]string{"-f", appFile(app)}, flavor...)
				want := exported(t, args...)
				r := mustSkiff(t, append([]string{"kube", "apply", "-n", ns}, args...)...)
				got := applied(r.Stdout)
				if strings.Join(keys(got), " ") != strings.Join(want, " ") {
					t.Fatalf("applied %v, exported %v\n%s", keys(got), want, r)
				}
				for ref, a := range got {
					if a != "created" {
						t.Errorf("%s %s", ref, a)
					}
				}
				if strings.Contains(r.Stderr, "unknown field") || strings.Contains(r.Stderr, "does not serve") {
					t.Errorf("warnings from the server: %s", r.Stderr)
				}
				if flavor[1] == "knative" {
					l, err := dyn(t).Resource(ksvcs).Namespace(ns).List(context.Background(), metav1.ListOptions{})
					if err != nil || len(l.Items) == 0 {
						t.Errorf("no Knative Service stored: %v", err)
					}
				}
			})
		}
	}
	t.Run("an HTTPRoute the CRD schema refuses names the App field", func(t *testing.T) {
		ns := namespace(t, "route-refused")
		c := cluster(t, ns)
		objs := objects(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, labels: {skiff.dev/app: shop, app.kubernetes.io/managed-by: skiff}}
spec:
  parentRefs: [{name: skiff}]
  hostnames: ["Not_A_Host"]
`)
		_, err := c.Apply(context.Background(), objs, kubeapply.ApplyOptions{})
		if err == nil || !strings.Contains(err.Error(), "spec.ingress.host: ") {
			t.Fatalf("an invalid hostname: %v", err)
		}
	})
}

// installCRDs applies CRD files with skiff's apply machinery and waits
// until each CRD is Established.
func installCRDs(t *testing.T, files ...string) {
	t.Helper()
	c := cluster(t, "default")
	var objs []*unstructured.Unstructured
	for _, f := range files {
		fh, err := os.Open(filepath.Clean(f))
		if err != nil {
			t.Fatal(err)
		}
		o, err := decodeObjects(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		objs = append(objs, o...)
	}
	if _, err := c.Apply(context.Background(), objs, kubeapply.ApplyOptions{}); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		eventually(t, 60*time.Second, "CRD "+o.GetName()+" Established", func() bool {
			crd, err := dyn(t).Resource(crds).Get(context.Background(), o.GetName(), metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
}
