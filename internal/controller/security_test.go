package controller

import (
	"reflect"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

// TestContainerRequestSecurity: spec.security reaches the replica's
// container config, and changing it makes a new revision.
func TestContainerRequestSecurity(t *testing.T) {
	uid := int64(1000)
	spec := api.AppSpec{Image: "shop:1", Security: api.AppSecurity{Profile: "restricted", RunAsUser: &uid, ReadOnlyRootFilesystem: true,
		Capabilities: api.Capabilities{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}}}}
	rev := api.Revision{Name: "shop-00001", Spec: app.RevisionSpecOf(spec)}
	if rev.Spec.Security.Profile != "" {
		t.Fatalf("the profile is part of the revision: %+v", rev.Spec.Security)
	}
	req, err := containerRequest(api.App{Metadata: api.ObjectMeta{Name: "shop"}}, rev, "sha256:abc", "x")
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	if c.User != "1000" || !c.ReadonlyRootfs || !reflect.DeepEqual(c.CapDrop, []string{"ALL"}) || !reflect.DeepEqual(c.CapAdd, []string{"NET_BIND_SERVICE"}) {
		t.Fatalf("config %+v does not carry spec.security", c)
	}
	looser := spec
	looser.Security.ReadOnlyRootFilesystem = false
	if !app.NeedsNewRevision(spec, looser) {
		t.Fatal("changing readOnlyRootFilesystem makes no new revision")
	}
	other := spec
	other.Security.Profile = "baseline"
	if app.NeedsNewRevision(spec, other) {
		t.Fatal("changing only the profile makes a new revision")
	}
	plain, _ := containerRequest(api.App{Metadata: api.ObjectMeta{Name: "shop"}}, api.Revision{Spec: app.RevisionSpecOf(api.AppSpec{Image: "shop:1"})}, "sha256:abc", "x")
	if plain.Config.User != "" || plain.Config.ReadonlyRootfs || plain.Config.CapAdd != nil || plain.Config.CapDrop != nil {
		t.Fatalf("an App without spec.security changed its container: %+v", plain.Config)
	}
}
