package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerTestcontainers runs the Testcontainers for Go module of
// test/tools/testcontainers against the Docker API: a container with a
// log and a port wait strategy, its mapped port, exec, logs, copies and
// terminate. Ryuk (Testcontainers' reaper) is off: its image cannot be
// pulled here, and the test terminates its container itself. The host
// is given as 127.0.0.1, where skiff publishes ports by default: on a
// machine that is itself a container (/.dockerenv), Testcontainers would
// otherwise look for the default network's gateway.
func TestDockerTestcontainers(t *testing.T) {
	dockerDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", ".")
	cmd.Dir = filepath.Join(env.repo, "test", "tools", "testcontainers")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerEnv.socket, "TESTCONTAINERS_RYUK_DISABLED=true",
		"SKIFF_TC_IMAGE=busybox", "TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1", "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestContainerLifecycle") {
		t.Fatalf("the Testcontainers suite failed: %v\n%s", err, out)
	}
	// It terminated its container.
	if out := dockerOK(t, "ps", "-aq", "--filter", "label=suite=testcontainers"); strings.TrimSpace(out) != "" {
		t.Errorf("the Testcontainers container is left: %q", out)
	}
}
