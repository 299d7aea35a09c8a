package kube_test

import (
	"fmt"
	"strings"

	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/internal/cli/kube"
)

// Export an App read from YAML into plain Kubernetes objects.
func ExampleExport() {
	apps, err := app.Load(strings.NewReader(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: shop}
spec:
  image: registry.example/shop:1.4
  ingress: {host: shop.example.com, external: true}
  scale: {min: 2, max: 6, cpuUtilization: 70}
  resources: {cpu: 500m, memory: 256Mi}
`))
	if err != nil {
		panic(err)
	}
	objs, warns, err := kube.Export(apps, kube.Options{Namespace: "web"})
	if err != nil {
		panic(err)
	}
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		fmt.Println(gvk.GroupVersion(), gvk.Kind)
	}
	fmt.Println(len(warns), "warnings")
	// Output:
	// apps/v1 Deployment
	// v1 Service
	// autoscaling/v2 HorizontalPodAutoscaler
	// gateway.networking.k8s.io/v1 HTTPRoute
	// networking.k8s.io/v1 NetworkPolicy
	// 1 warnings
}
