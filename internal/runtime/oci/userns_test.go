package oci

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestSpecUserNamespace(t *testing.T) {
	idm := &api.IDMap{HostID: 165536, Size: 65536}
	s, err := Spec(Input{ID: "u1", Rootfs: testRootfs(t), Image: busyboxImage(), IDMap: idm, UserNS: "/var/lib/skiff/containers/u1/userns"})
	if err != nil {
		t.Fatal(err)
	}
	var user *specs.LinuxNamespace
	for i, n := range s.Linux.Namespaces {
		if n.Type == specs.UserNamespace {
			user = &s.Linux.Namespaces[i]
		}
	}
	if user == nil || user.Path != "/var/lib/skiff/containers/u1/userns" {
		t.Fatalf("user namespace = %+v, want one joining the pinned path", user)
	}
	want := specs.LinuxIDMapping{ContainerID: 0, HostID: 165536, Size: 65536}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != want || len(s.Linux.GIDMappings) != 1 || s.Linux.GIDMappings[0] != want {
		t.Fatalf("mappings uid %+v gid %+v, want %+v for both", s.Linux.UIDMappings, s.Linux.GIDMappings, want)
	}

	// Without an IDMap, no user namespace.
	s, err = Spec(Input{ID: "u2", Rootfs: testRootfs(t), Image: busyboxImage()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.UserNamespace {
			t.Fatal("a container without an IDMap got a user namespace")
		}
	}
	if s.Linux.UIDMappings != nil {
		t.Fatalf("uid mappings without an IDMap: %+v", s.Linux.UIDMappings)
	}

	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"root on the host", Input{IDMap: &api.IDMap{HostID: 0, Size: 65536}}, "unprivileged host id"},
		{"privileged", Input{IDMap: idm, Config: api.ContainerConfig{Privileged: true}}, "--userns host"},
		{"path without mapping", Input{UserNS: "/x/userns"}, "without its id mapping"},
		{"relative path", Input{IDMap: idm, UserNS: "userns"}, "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ID, tc.in.Rootfs, tc.in.Image = "u3", testRootfs(t), busyboxImage()
			_, err := Spec(tc.in)
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}
