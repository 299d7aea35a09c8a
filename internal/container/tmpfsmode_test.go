package container

import (
	"errors"
	"slices"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestTmpfsMountMode checks that a tmpfs is mode 1777 unless TmpfsMode
// says otherwise, and that a mode beyond the permission bits is refused.
func TestTmpfsMountMode(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, newFakeRuntime(), dir)
	rootfs := dir + "/c/rootfs"
	for _, tc := range []struct {
		mode uint32
		want string
	}{{0, "mode=1777"}, {0o750, "mode=750"}, {0o1700, "mode=1700"}} {
		out, err := m.mounts(rootfs, []api.Mount{{Type: api.MountTmpfs, Target: "/t", TmpfsSize: 1024, TmpfsMode: tc.mode}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || !slices.Contains(out[0].Options, tc.want) || !slices.Contains(out[0].Options, "size=1024") {
			t.Errorf("mode %#o: mount %+v, want %s and size=1024", tc.mode, out, tc.want)
		}
	}
	_, err := m.mounts(rootfs, []api.Mount{{Type: api.MountTmpfs, Target: "/t", TmpfsMode: 0o10000}}, nil)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("mode 010000: got %v, want ErrInvalid", err)
	}
}
