package kubeapply

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakedisc "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

// TestServes: a kind of a served group is found, a group the server does
// not know (the Gateway API without its CRDs) is no error.
func TestServes(t *testing.T) {
	fd := &fakedisc.FakeDiscovery{Fake: &clienttesting.Fake{Resources: []*metav1.APIResourceList{
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Kind: "Deployment", Namespaced: true}}},
	}}}
	c := &Cluster{disc: memory.NewMemCacheClient(fd)}
	for _, tc := range []struct {
		gvk  schema.GroupVersionKind
		want bool
	}{
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, true},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, false},
		{schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}, false},
	} {
		got, err := c.Serves(tc.gvk)
		if err != nil || got != tc.want {
			t.Errorf("Serves(%s) = %v, %v; want %v", tc.gvk, got, err, tc.want)
		}
	}
}
