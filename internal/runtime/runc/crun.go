package runc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
	"skiff.dev/skiff/internal/runtime/cgroups"
)

// crunWrapperName is the script, in the state directory, that runs crun
// where it cannot see the hybrid layout's cgroup2 mount.
const crunWrapperName = "crun-v1"

// setupCrun prepares crun on a hybrid cgroup layout. crun 1.x refuses to
// run when /sys/fs/cgroup/unified holds a cgroup2 mount next to the v1
// hierarchies ("cgroups in hybrid mode not supported"). Every crun call
// (create through conmon, and start, state, kill, exec, delete) then goes
// through a small script that enters a private mount namespace, lazily
// unmounts /sys/fs/cgroup/unified there and execs crun; the host's mounts
// are untouched, crun drives the v1 hierarchies and the state root is
// the same for every call.
func (r *Runtime) setupCrun(ctx context.Context) error {
	if r.runtimeName != "crun" || r.cg.Layout() != cgroups.LayoutHybrid {
		return nil
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return errdefs.NotImplemented("crun on this hybrid cgroup layout needs unshare(1) (util-linux) to hide /sys/fs/cgroup/unified, or a host with a pure v1 or pure v2 layout: %w", err)
	}
	umount, err := exec.LookPath("umount")
	if err != nil {
		return errdefs.NotImplemented("crun on this hybrid cgroup layout needs umount(8) (util-linux), or a host with a pure v1 or pure v2 layout: %w", err)
	}
	for _, p := range []string{unshare, umount, r.binaryPath} {
		if strings.ContainsAny(p, "'\"\\$` \n") {
			return errdefs.Invalid("path %q cannot be used in the crun wrapper script", p)
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
# Runs crun where the cgroup2 mount of the hybrid layout is hidden
# (private mount namespace), so crun uses the v1 hierarchies.
exec %s --mount --propagation private -- /bin/sh -c '%s -l /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"' %s "$@"
`, unshare, umount, r.binaryPath)
	wrapper := filepath.Join(r.stateDir, crunWrapperName)
	if err := fsutil.WriteFileAtomic(wrapper, []byte(script), 0o700, false); err != nil {
		return errdefs.Unavailable("write crun wrapper: %w", err)
	}
	// Check the wrapper works here before any container depends on it.
	out, err := exec.CommandContext(ctx, wrapper, "--version").CombinedOutput()
	if err != nil {
		return errdefs.NotImplemented("crun cannot run on this hybrid cgroup layout (private mount namespace failed: %s): use runc, or a host with a pure v1 or pure v2 layout", strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(wrapper); err != nil {
		return errdefs.Unavailable("crun wrapper: %w", err)
	}
	r.runtimePath = wrapper
	return nil
}
