package controller

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestSecretVolumes: a secret volume becomes a secret mount of the
// version the revision pins (no value, no named volume), and counts among
// the secrets the App uses, so a new version of it rolls the App.
func TestSecretVolumes(t *testing.T) {
	vol := api.VolumeMount{Name: "creds", MountPath: "/run/secrets/db", Secret: &api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "password", Path: "pw"}}}}
	a := api.App{Metadata: api.ObjectMeta{Name: "shop"}, Spec: api.AppSpec{Image: "x",
		Env:     []api.EnvVar{{Name: "TOKEN", SecretRef: "api/token"}},
		Volumes: []api.VolumeMount{vol, {Name: "data", MountPath: "/data"}}}}
	if got := secretNames(a); !reflect.DeepEqual(got, []string{"api", "db"}) {
		t.Fatalf("secretNames = %v", got)
	}
	rev := api.Revision{Name: "shop-00001", Spec: api.RevisionSpec{Image: "x", Volumes: a.Spec.Volumes, SecretVersions: map[string]int64{"api": 1}}}
	if _, err := containerRequest(a, rev, "sha256:abc", "x"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "skiff secret create db") {
		t.Fatalf("secret volume without a pinned version: %v", err)
	}
	rev.Spec.SecretVersions["db"] = 4
	req, err := containerRequest(a, rev, "sha256:abc", "x")
	if err != nil {
		t.Fatal(err)
	}
	want := []api.SecretMount{{Target: "/run/secrets/db", Secret: "db", Version: 4, Items: []api.SecretItem{{Key: "password", Path: "pw"}}}}
	if !reflect.DeepEqual(req.Config.SecretMounts, want) {
		t.Fatalf("secret mounts = %+v, want %+v", req.Config.SecretMounts, want)
	}
	if m := req.Config.Mounts; len(m) != 1 || m[0].Source != "data" {
		t.Fatalf("mounts = %+v: want the named volume only", m)
	}
}
