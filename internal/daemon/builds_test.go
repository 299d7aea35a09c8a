package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// deleteRecorder is a build.Runtime that records Delete calls.
type deleteRecorder struct {
	build.Runtime
	deleted []string
}

func (r *deleteRecorder) Delete(_ context.Context, id string) error {
	r.deleted = append(r.deleted, id)
	return nil
}

var _ build.Runtime = (*deleteRecorder)(nil)

// TestCleanBuilds checks a daemon start removes the step containers and
// directories of builds a crash interrupted.
func TestCleanBuilds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "build")
	step := filepath.Join(dir, "run-123", "steps", "skiff-build-abc")
	if err := os.MkdirAll(filepath.Join(step, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "run-123", "layers", "0"), 0o755)
	// A RUN --mount overlay left mounted: its lower must not be emptied.
	lower := t.TempDir()
	os.WriteFile(filepath.Join(lower, "kept"), []byte("x"), 0o644)
	mnt := filepath.Join(step, "mounts", "0")
	if err := rootfs.Mount([]string{lower}, filepath.Join(mnt, "upper"), filepath.Join(mnt, "work"), filepath.Join(mnt, "merged")); err != nil {
		t.Fatal(err)
	}
	rt := &deleteRecorder{}
	cleanBuilds(context.Background(), rt, dir)
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), mnt) {
		rootfs.Unmount(filepath.Join(mnt, "merged"))
		t.Errorf("a RUN --mount overlay is still mounted")
	}
	if _, err := os.Stat(filepath.Join(lower, "kept")); err != nil {
		t.Errorf("the mount's source lost its file: %v", err)
	}
	if !slices.Equal(rt.deleted, []string{"skiff-build-abc"}) {
		t.Errorf("deleted containers %v, want the step's", rt.deleted)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the build directory is still there: %v", err)
	}
}
