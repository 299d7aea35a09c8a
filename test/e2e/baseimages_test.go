package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// baseImageMu serialises the making of base images: their tars are made
// once (and cached) by the first test that needs one.
var baseImageMu sync.Mutex

// baseImage makes sure the Debian base image localhost/NAME:bookworm
// (NAME: debian, debian-golang or debian-postgresql) is in d's store, as
// `make base-images` makes it, and returns its reference. The root
// filesystem tar comes from ${SKIFF_CACHE:-/var/cache/skiff}/base when it
// is there; otherwise scripts/base-images.sh makes it there with
// mmdebstrap from Debian's archive (a few minutes, once per machine).
func baseImage(t *testing.T, d *Daemon, name string) string {
	t.Helper()
	ref := "localhost/" + name + ":bookworm"
	baseImageMu.Lock()
	defer baseImageMu.Unlock()
	if d.Run("", "image", "inspect", ref).Code == 0 {
		return ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(env.repo, "scripts", "base-images.sh"), name)
	cmd.Env = append(os.Environ(), "SKIFF="+env.skiff, "SKIFF_SOCKET="+d.Socket)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/base-images.sh %s: %v\n%s", name, err, out)
	}
	return ref
}

// runLong runs the skiff CLI against d like Daemon.Run, with a longer
// bound, for builds that compile.
func runLong(d *Daemon, limit time.Duration, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.skiff, append([]string{"--socket", d.Socket}, args...)...)
	out, err := cmd.Output()
	r := Result{Stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code, r.Stderr = ee.ExitCode(), string(ee.Stderr)
	} else if err != nil {
		r.Code, r.Stderr = -1, err.Error()
	}
	return r
}
