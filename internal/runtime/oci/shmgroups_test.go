package oci

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
)

// TestShmSize checks that /dev/shm is 64 MiB by default and ShmSize
// bytes when set.
func TestShmSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		want string
	}{
		{"default", 0, "size=65536k"},
		{"set", 256 << 20, "size=268435456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Spec(Input{ID: "x", Rootfs: testRootfs(t), Image: busyboxImage(), Config: api.ContainerConfig{ShmSize: tc.size}})
			if err != nil {
				t.Fatal(err)
			}
			var shm *specs.Mount
			for i := range s.Mounts {
				if s.Mounts[i].Destination == "/dev/shm" {
					shm = &s.Mounts[i]
				}
			}
			if shm == nil || !slices.Contains(shm.Options, tc.want) {
				t.Fatalf("/dev/shm mount = %+v, want option %s", shm, tc.want)
			}
		})
	}
}

// TestGroupAdd checks that added groups, by name or number, join the
// user's supplementary groups once each.
func TestGroupAdd(t *testing.T) {
	s, err := Spec(Input{ID: "x", Rootfs: testRootfs(t), Image: busyboxImage(),
		Config: api.ContainerConfig{User: "app", GroupAdd: []string{"staff", "4242", "audio"}}})
	if err != nil {
		t.Fatal(err)
	}
	// app is a member of wheel (10) and audio (29) in testdata's /etc/group.
	want := []uint32{10, 29, 50, 4242}
	if got := s.Process.User.AdditionalGids; !slices.Equal(got, want) {
		t.Fatalf("additional gids = %v, want %v", got, want)
	}
}
