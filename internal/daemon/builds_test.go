package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"skiff.dev/skiff/internal/image/build"
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
	rt := &deleteRecorder{}
	cleanBuilds(context.Background(), rt, dir)
	if !slices.Equal(rt.deleted, []string{"skiff-build-abc"}) {
		t.Errorf("deleted containers %v, want the step's", rt.deleted)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the build directory is still there: %v", err)
	}
}
