package runc

import (
	"context"

	"skiff.dev/skiff/internal/runtime/cgroups"
)

// setupCrun prepares crun on a hybrid cgroup layout (see doc.go).
func (r *Runtime) setupCrun(ctx context.Context) error {
	if r.runtimeName != "crun" || r.cg.Layout() != cgroups.LayoutHybrid {
		return nil
	}
	return nil
}
