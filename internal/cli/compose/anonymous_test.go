package compose

import (
	"context"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestAnonymousVolumes checks that an anonymous volume is supported: each
// replica mounts its own, named after it (so a recreate under the same
// number finds it again), a one-off container gets a fresh one, and the
// service is recreated stop-first.
func TestAnonymousVolumes(t *testing.T) {
	p, err := Load(context.Background(), LoadOptions{WorkDir: "testdata/config/worker"})
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range Unsupported(p) {
		if strings.Contains(is.String(), "volume") {
			t.Errorf("reported unsupported: %v", is)
		}
	}
	s := p.Services["queue"]
	source := func(req api.ContainerCreateRequest) string {
		t.Helper()
		for _, m := range req.Config.Mounts {
			if m.Target == "/data" && m.Type == api.MountVolume {
				return m.Source
			}
		}
		t.Fatalf("no volume at /data in %+v", req.Config.Mounts)
		return ""
	}
	r1, err := CreateRequest(p, s, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := CreateRequest(p, s, 2)
	one, _ := OneoffRequest(p, s, nil, nil)
	v1, v2, vo := source(r1), source(r2), source(one)
	if !strings.HasPrefix(v1, "jobs-queue-1_") || !strings.HasPrefix(v2, "jobs-queue-2_") || !strings.HasPrefix(vo, one.Name+"_") {
		t.Fatalf("anonymous volumes %q, %q, %q: want one per container, named after it", v1, v2, vo)
	}
	if again, _ := CreateRequest(p, s, 1); source(again) != v1 {
		t.Fatalf("replica 1's anonymous volume changed: %q then %q", v1, source(again))
	}
	if len(anonymousMounts(r1)) != 1 || len(anonymousMounts(one)) != 1 {
		t.Fatalf("anonymous mounts: %v, %v", anonymousMounts(r1), anonymousMounts(one))
	}
	if rolling(s) || !rolling(p.Services["migrate"]) {
		t.Fatal("a service with an anonymous volume must be recreated stop-first, others rolling")
	}
}
