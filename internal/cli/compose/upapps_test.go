package compose

import (
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestAppServes(t *testing.T) {
	app := func(gen, observed int64, created, ready string, conds ...api.Condition) api.App {
		return api.App{Metadata: api.ObjectMeta{Generation: gen}, Status: api.AppStatus{ObservedGeneration: observed,
			LatestCreatedRevision: created, LatestReadyRevision: ready, Conditions: conds}}
	}
	ready := api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue}
	notReady := func(reason string) api.Condition {
		return api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: "why"}
	}
	for _, tc := range []struct {
		name    string
		a       api.App
		serves  bool
		failure string
	}{
		{"ready", app(2, 2, "w-00002", "w-00002", ready), true, ""},
		{"spec not yet observed", app(3, 2, "w-00002", "w-00002", ready), false, ""},
		{"rolling out", app(2, 2, "w-00002", "w-00001", ready), false, ""},
		{"deploying", app(1, 1, "w-00001", "", notReady(api.ReasonDeploying)), false, ""},
		{"image not found", app(1, 1, "w-00001", "", notReady(api.ReasonImageNotFound)), false, "not ready: ImageNotFound: why"},
		{"network not found", app(1, 1, "w-00001", "", notReady(api.ReasonNetworkNotFound)), false, "not ready: NetworkNotFound: why"},
		{"crash loop", app(1, 1, "w-00001", "", notReady(api.ReasonCrashLoopBackOff)), false, "not ready: CrashLoopBackOff: why"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := appServes(tc.a)
			if ok != tc.serves || (err == nil) != (tc.failure == "") || err != nil && !strings.Contains(err.Error(), tc.failure) {
				t.Fatalf("appServes = %v, %v; want %v, %q", ok, err, tc.serves, tc.failure)
			}
		})
	}
}

func TestAppNetworks(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    api.ContainerConfig
		want []api.AppNetworkAttachment
	}{
		{"host", api.ContainerConfig{Network: api.NetworkHost}, nil},
		{"none", api.ContainerConfig{Network: api.NetworkNone}, nil},
		{"project networks", api.ContainerConfig{Network: "shop_front", NetworkAliases: []string{"web", "www"},
			ExtraNetworks: []api.NetworkAttachment{{Network: "shop_back", Aliases: []string{"web"}}}},
			[]api.AppNetworkAttachment{{Name: "shop_front", Aliases: []string{"web", "www"}}, {Name: "shop_back", Aliases: []string{"web"}}}},
		{"skiff's default network is left out", api.ContainerConfig{Network: api.DefaultNetwork, NetworkAliases: []string{"web"},
			ExtraNetworks: []api.NetworkAttachment{{Network: "shop_back", Aliases: []string{"web"}}}},
			[]api.AppNetworkAttachment{{Name: "shop_back", Aliases: []string{"web"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appNetworks(tc.c); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
