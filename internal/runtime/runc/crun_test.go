package runc

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/runtime"
)

// TestCrun runs the main paths with crun (apt-get install crun); on a
// hybrid layout they go through the mount-namespace wrapper.
func TestCrun(t *testing.T) {
	r := newRuntime(t, WithRuntime("crun"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := r.Info(ctx)
	if err != nil || info.Name != "crun" || info.Version == "" {
		t.Fatalf("info %+v, %v", info, err)
	}

	c, st := run(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 32 << 20}}, "sh", "-c", "echo pid=$$; exit 3")
	if st.Code != 3 || !strings.Contains(logText(t, c.log, "stdout"), "pid=1") {
		t.Fatalf("exit %+v, log %q", st, logText(t, c.log, "stdout"))
	}

	c = create(t, r, api.ContainerConfig{Resources: api.Resources{MemoryBytes: 64 << 20, PidsLimit: 32}}, 0, "sleep", "60")
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if s, err := r.State(ctx, c.id); err != nil || s.Status != runtime.StatusRunning {
		t.Fatalf("state %+v, %v", s, err)
	}
	var out strings.Builder
	code, err := r.Exec(ctx, c.id, &specs.Process{Args: []string{"sh", "-c", "echo in; exit 4"}}, runtime.ExecIO{Stdout: &out})
	if err != nil || code != 4 || out.String() != "in\n" {
		t.Fatalf("exec: %d %q %v", code, out.String(), err)
	}
	s, err := r.Stats(ctx, c.id)
	if err != nil || s.MemoryLimitBytes != 64<<20 || s.PidsLimit != 32 || s.Pids < 1 {
		t.Fatalf("stats %+v, %v", s, err)
	}
	if err := r.Kill(ctx, c.id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Wait(ctx, c.id); err != nil || st.Code != 137 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := r.Delete(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	assertGone(t, r, c.id, "/skiff-test/"+c.id)
}
