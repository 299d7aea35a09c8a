package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/userns"
)

// TestUserNSRanges: replicas of one owner share its range; a range
// freed by its owner is not given out while a container maps it; a
// container's own range goes with it.
func TestUserNSRanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes user namespaces and idmapped mounts: run it as root (make test does)")
	}
	// t.TempDir's parent is private: make one container root can search.
	dir, err := os.MkdirTemp("", "userns-ranges-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, newFakeRuntime(), dir)
	ctx := context.Background()
	create := func(owner string) api.Container {
		t.Helper()
		c, err := m.Create(ctx, api.ContainerCreateRequest{IDRangeOwner: owner,
			Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, UserNS: api.UserNSAuto}})
		if err != nil {
			t.Fatal(err)
		}
		if c.IDMap == nil {
			t.Fatalf("container of %q has no id map", owner)
		}
		return c
	}
	index := func(c api.Container) int {
		n, ok := userns.RangeIndex(*c.IDMap)
		if !ok {
			t.Fatalf("id map %+v is not a range", *c.IDMap)
		}
		return n
	}
	x1, x2 := create("app/x"), create("app/x")
	if index(x1) != 0 || index(x2) != 0 {
		t.Fatalf("replicas of app/x got ranges %d and %d, want 0 for both", index(x1), index(x2))
	}
	// The App goes; its replicas still run.
	if err := m.cfg.Store.ReleaseIDRange(ctx, "app/x"); err != nil {
		t.Fatal(err)
	}
	if y := create("app/y"); index(y) != 1 {
		t.Fatalf("app/y got range %d, want 1: range 0 is still mapped by app/x's replicas", index(y))
	}
	own := create("")
	if index(own) != 2 {
		t.Fatalf("a container's own range is %d, want 2", index(own))
	}
	if err := m.Remove(ctx, own.ID, true); err != nil {
		t.Fatal(err)
	}
	if again := create(""); index(again) != 2 {
		t.Fatalf("after removal the next container got range %d, want the freed 2", index(again))
	}
	// The container's directory is reachable by its root's group only.
	st, err := os.Stat(filepath.Join(dir, "containers", x1.ID))
	if err != nil || st.Mode().Perm() != 0o710 {
		t.Fatalf("container directory mode %v (%v), want 0710", st.Mode().Perm(), err)
	}
}

func TestUserNSRefusals(t *testing.T) {
	dir := t.TempDir() // under a 0700 directory: container root could not reach its rootfs
	m := newTestManager(t, newFakeRuntime(), dir)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  api.ContainerConfig
		cat  error
		want string
	}{
		{"unknown mode", api.ContainerConfig{UserNS: "private"}, errdefs.ErrInvalid, "use auto or host"},
		{"host network", api.ContainerConfig{UserNS: api.UserNSAuto, Network: api.NetworkHost}, errdefs.ErrInvalid, "--network host conflict"},
		{"privileged", api.ContainerConfig{UserNS: api.UserNSAuto, Privileged: true}, errdefs.ErrInvalid, "--privileged conflict"},
		{"unsearchable root", api.ContainerConfig{UserNS: api.UserNSAuto, Network: api.NetworkNone}, errdefs.ErrUnavailable, "chmod o+x " + filepath.Dir(dir)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Image, tc.cfg.Cmd = "img", []string{"x"}
			_, err := m.Create(ctx, api.ContainerCreateRequest{Config: tc.cfg})
			if !errors.Is(err, tc.cat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v containing %q", err, tc.cat, tc.want)
			}
		})
	}
	if got := m.List(ctx, true); len(got) != 0 {
		t.Fatalf("refused creates left containers: %v", got)
	}
}
