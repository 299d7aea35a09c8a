package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

const composeKeys = `name: ckeys
services:
  app:
    image: busybox
    command: ["sh", "-c", "exec sleep 1001"]
    stop_grace_period: 1s
    environment: [CHANGE=1]
    volumes:
      - /data
    deploy:
      resources:
        reservations: {memory: 32M}
  other:
    image: busybox
    command: ["sleep", "1002"]
    stop_grace_period: 1s
`

// TestComposeTopAndAnonymousVolumes: compose top lists each running
// container's processes; a memory reservation is the cgroup's soft
// limit; an anonymous volume keeps its data across a recreate of the
// service and is removed by down -v, with no warning.
func TestComposeTopAndAnonymousVolumes(t *testing.T) {
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeKeys})
	t.Cleanup(func() { skiff(append(base, "down", "-v")...) })
	out := composeRun(t, base, "up", "-d")
	if strings.Contains(out, "WARNING") {
		t.Errorf("up warns about a supported key:\n%s", out)
	}

	top := composeRun(t, base, "top")
	for _, want := range []string{"ckeys-app-1\n", "ckeys-other-1\n", "UID", "PID", "CMD", "sleep 1001", "sleep 1002"} {
		if !strings.Contains(top, want) {
			t.Fatalf("compose top lacks %q:\n%s", want, top)
		}
	}
	if only := composeRun(t, base, "top", "other"); strings.Contains(only, "sleep 1001") || !strings.Contains(only, "sleep 1002") {
		t.Fatalf("compose top other:\n%s", only)
	}
	app := inspect(t, env.daemon, "ckeys-app-1")
	if !strings.Contains(top, " "+strconv.Itoa(app.State.Pid)+" ") {
		t.Fatalf("compose top does not show app's pid %d:\n%s", app.State.Pid, top)
	}
	fails(t, env.daemon, []string{"no such service"}, append(base, "top", "nope")...)

	// The memory reservation is the cgroup's soft limit.
	if got := composeRun(t, base, "exec", "app", "cat", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes"); strings.TrimSpace(got) != "33554432" {
		t.Fatalf("memory soft limit %q, want 33554432", got)
	}

	composeRun(t, base, "exec", "app", "sh", "-c", "echo kept > /data/f")
	var vol string
	for _, m := range app.Config.Mounts {
		if m.Target == "/data" {
			vol = m.Source
		}
	}
	if !strings.HasPrefix(vol, "ckeys-app-1_") {
		t.Fatalf("app's mounts: %+v", app.Config.Mounts)
	}
	var vs []api.Volume
	if err := json.Unmarshal([]byte(must(t, env.daemon, "volume", "inspect", vol)), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("volume inspect %s: %v", vol, err)
	}
	v := vs[0]
	if _, ok := v.Labels["com.docker.volume.anonymous"]; !ok || v.Labels["com.docker.compose.project"] != "ckeys" {
		t.Fatalf("anonymous volume labels: %v", v.Labels)
	}

	// A one-off container gets its own anonymous volume, removed with it
	// by run --rm.
	if out := composeRun(t, base, "run", "--rm", "app", "sh", "-c", "ls /data; echo ran"); strings.Contains(out, "f\n") || !strings.Contains(out, "ran") {
		t.Fatalf("compose run sees app's anonymous volume or did not run: %q", out)
	}
	if vols := must(t, env.daemon, "volume", "ls", "-q"); strings.Contains(vols, "ckeys-app-run-") {
		t.Fatalf("run --rm left its anonymous volume:\n%s", vols)
	}

	// A changed service is recreated; its anonymous volume follows.
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(composeKeys, "CHANGE=1", "CHANGE=2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out = composeRun(t, base, "up", "-d")
	if !strings.Contains(out, "ckeys-app-1  Recreated") {
		t.Fatalf("second up did not recreate app:\n%s", out)
	}
	if got := composeRun(t, base, "exec", "app", "cat", "/data/f"); !strings.Contains(got, "kept") {
		t.Fatalf("anonymous volume data after recreate: %q", got)
	}
	composeRun(t, base, "down", "-v")
	if r := skiff("volume", "inspect", vol); r.Code == 0 {
		t.Fatalf("down -v left the anonymous volume %s", vol)
	}
}
