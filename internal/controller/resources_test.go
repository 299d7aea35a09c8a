package controller

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/autoscale"
)

func ptr(n int) *int { return &n }

func TestDesiredReplicas(t *testing.T) {
	app := func(lo, hi int) api.App {
		return api.App{Spec: api.AppSpec{Scale: api.Scale{Min: ptr(lo), Max: ptr(hi)}}}
	}
	tests := []struct {
		name          string
		app           api.App
		targets       []target
		latest        string
		latestIsReady bool
		want          map[string]int
		got           map[string]int
	}{
		{"min when no autoscaler word", app(2, 5), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-1", true, nil, map[string]int{"a-1": 2}},
		{"autoscaler within bounds", app(1, 5), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-1", true, map[string]int{"a-1": 4}, map[string]int{"a-1": 4}},
		{"autoscaler capped", app(1, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-1", true, map[string]int{"a-1": 9}, map[string]int{"a-1": 3}},
		{"zero allowed with min 0", app(0, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-1", true, map[string]int{"a-1": 0}, map[string]int{"a-1": 0}},
		{"rollout: new revision gets one while not ready", app(0, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-2", false, map[string]int{"a-1": 2}, map[string]int{"a-1": 2, "a-2": 1}},
		{"rollout with min 2", app(2, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}}, "a-2", false, nil, map[string]int{"a-1": 2, "a-2": 2}},
		{"0% revisions get none", app(1, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}, {Revision: "a-2", Percent: 0, Tag: ""}}, "a-1", true, nil, map[string]int{"a-1": 1}},
		{"tagged 0% revision is kept", app(1, 3), []target{{Revision: "a-1", Percent: 100, Tag: ""}, {Revision: "a-2", Percent: 0, Tag: "next"}}, "a-2", true, nil, map[string]int{"a-1": 1, "a-2": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := desiredReplicas(tc.app, tc.targets, tc.latest, tc.latestIsReady, tc.want)
			if !reflect.DeepEqual(got, tc.got) {
				t.Fatalf("got %v, want %v", got, tc.got)
			}
		})
	}
}

func TestContainerRequest(t *testing.T) {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop"}}
	rev := api.Revision{Name: "shop-00002", Spec: api.RevisionSpec{
		Image: "shop:1", Command: []string{"/srv"}, Args: []string{"-v"}, Port: 9000,
		Env:       []api.EnvVar{{Name: "MODE", Value: "prod"}},
		Resources: api.AppResources{CPU: "500m", Memory: "64Mi", Pids: 50},
		Volumes:   []api.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}},
	}}
	req, err := containerRequest(a, rev, "sha256:abc", "shop-00002-xyz12")
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	want := api.ContainerConfig{
		Image: "sha256:abc", Entrypoint: []string{"/srv"}, Cmd: []string{"-v"},
		Env:            []string{"PORT=9000", "SKIFF_APP=shop", "SKIFF_REVISION=shop-00002", "MODE=prod"},
		Labels:         map[string]string{LabelApp: "shop", LabelRevision: "shop-00002"},
		Resources:      api.Resources{NanoCPUs: 5e8, MemoryBytes: 64 << 20, PidsLimit: 50},
		RestartPolicy:  api.RestartPolicy{Name: api.RestartAlways},
		Network:        api.DefaultNetwork,
		NetworkAliases: []string{"shop", "shop-00002"},
		Mounts:         []api.Mount{{Type: api.MountVolume, Source: "data", Target: "/data", ReadOnly: true}},
		UserNS:         api.UserNSAuto,
		Healthcheck:    &api.HealthConfig{Test: []string{"NONE"}},
	}
	if !reflect.DeepEqual(c, want) || req.Name != "shop-00002-xyz12" {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if req.IDRangeOwner != "app/shop" {
		t.Fatalf("id range owner %q, want app/shop: every replica of an App shares its range", req.IDRangeOwner)
	}
	// hostUsers: true keeps the host's user namespace.
	yes := true
	hostRev := rev
	hostRev.Spec.Security.HostUsers = &yes
	if req, err := containerRequest(a, hostRev, "sha256:abc", "x"); err != nil || req.Config.UserNS != "" || req.IDRangeOwner != "" {
		t.Fatalf("hostUsers: true gave userns %q owner %q (%v), want neither", req.Config.UserNS, req.IDRangeOwner, err)
	}
	rev.Spec.Env = []api.EnvVar{{Name: "PW", SecretRef: "db/password"}}
	if _, err := containerRequest(a, rev, "sha256:abc", "x"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "skiff secret create db") {
		t.Fatalf("secret ref without a pinned version: %v", err)
	}
	// The revision pins the version; the value stays out of the request.
	rev.Spec.SecretVersions = map[string]int64{"db": 3}
	req, err = containerRequest(a, rev, "sha256:abc", "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Config.SecretEnv; len(got) != 1 || got[0] != (api.SecretEnvVar{Name: "PW", Secret: "db", Key: "password", Version: 3}) {
		t.Fatalf("secret env = %+v", got)
	}
	for _, kv := range req.Config.Env {
		if strings.HasPrefix(kv, "PW=") {
			t.Fatalf("the secret variable is in the plain env: %q", kv)
		}
	}
}

// TestNextRevisionSecretVersions: a new version of a secret the App uses
// makes a new revision, pinning it; the same version makes none.
func TestNextRevisionSecretVersions(t *testing.T) {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop"}, Spec: api.AppSpec{Image: "x", Env: []api.EnvVar{{Name: "PW", SecretRef: "db/pw"}}}}
	t0 := time.Now()
	r1, err := nextRevision(a, nil, map[string]int64{"db": 1}, t0)
	if err != nil || r1 == nil || r1.Spec.SecretVersions["db"] != 1 {
		t.Fatalf("first revision = %+v, %v", r1, err)
	}
	if r, err := nextRevision(a, []api.Revision{*r1}, map[string]int64{"db": 1}, t0); err != nil || r != nil {
		t.Fatalf("same version: %+v, %v", r, err)
	}
	r2, err := nextRevision(a, []api.Revision{*r1}, map[string]int64{"db": 2}, t0)
	if err != nil || r2 == nil || r2.Name != "shop-00002" || r2.Spec.SecretVersions["db"] != 2 || r2.Hash == r1.Hash {
		t.Fatalf("new version: %+v, %v", r2, err)
	}
	if got := secretNames(a); len(got) != 1 || got[0] != "db" {
		t.Fatalf("secretNames = %v", got)
	}
}

func TestScaleSpec(t *testing.T) {
	a := api.App{
		Metadata: api.ObjectMeta{Annotations: map[string]string{AnnotationWindow: "6s", AnnotationPanicWindow: "500ms"}},
		Spec:     api.AppSpec{Scale: api.Scale{Min: ptr(0), Max: ptr(4), RPS: 20, IdleTimeout: api.Duration{Duration: 5 * time.Second}}},
	}
	got := scaleSpec(a)
	want := autoscale.Spec{Min: 0, Max: 4, Metric: autoscale.RPS, Target: 20, StableWindow: 6 * time.Second, PanicWindow: 500 * time.Millisecond, IdleTimeout: 5 * time.Second}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// TestContainerRequestNetworks: a replica joins the revision's further
// networks as the App's name and the aliases given, after the default
// network, which stays its first.
func TestContainerRequestNetworks(t *testing.T) {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop-web"}}
	rev := api.Revision{Name: "shop-web-00001", Spec: api.RevisionSpec{Image: "web:1",
		Networks: []api.AppNetworkAttachment{{Name: "shop_default", Aliases: []string{"web"}}, {Name: "shop_back"}}}}
	req, err := containerRequest(a, rev, "sha256:abc", "shop-web-00001-xyz12")
	if err != nil {
		t.Fatal(err)
	}
	if req.Config.Network != api.DefaultNetwork {
		t.Fatalf("first network %q, want %q", req.Config.Network, api.DefaultNetwork)
	}
	want := []api.NetworkAttachment{{Network: "shop_default", Aliases: []string{"shop-web", "web"}}, {Network: "shop_back", Aliases: []string{"shop-web"}}}
	if !reflect.DeepEqual(req.Config.ExtraNetworks, want) {
		t.Fatalf("extra networks %+v, want %+v", req.Config.ExtraNetworks, want)
	}
	if rev.Spec.Networks[0].Aliases[0] != "web" || len(rev.Spec.Networks[0].Aliases) != 1 {
		t.Fatalf("the revision's aliases were changed: %v", rev.Spec.Networks[0].Aliases)
	}
}
