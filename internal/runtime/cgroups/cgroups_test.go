package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		root string
		want Layout
	}{
		{"testdata/v1", LayoutV1},
		{"testdata/v2", LayoutV2},
		{"testdata/hybrid", LayoutHybrid},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			got, err := Detect(tt.root)
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := Detect("testdata/empty"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("empty tree: got %v, want ErrUnavailable", err)
	}
}

func TestReadFakeTrees(t *testing.T) {
	limited := Stats{CPUUsageNanos: 123456789, MemoryUsageBytes: 41943040 - 8388608, MemoryLimitBytes: 64 << 20, Pids: 3, PidsLimit: 64, OOMKills: 2}
	unlimited := Stats{CPUUsageNanos: 0, MemoryUsageBytes: 0, MemoryLimitBytes: 0, Pids: 1, PidsLimit: 0, OOMKills: 0}
	v2limited := limited
	v2limited.CPUUsageNanos = 123456000
	tests := []struct {
		name, root, path string
		want             Stats
	}{
		{"v1 limited", "testdata/v1", "/skiff/c1", limited},
		{"v1 unlimited", "testdata/v1", "/skiff/c2", unlimited},
		{"hybrid limited", "testdata/hybrid", "skiff/c1", limited},
		{"v2 limited", "testdata/v2", "/skiff/c1", v2limited},
		{"v2 unlimited", "testdata/v2", "/skiff/c2", unlimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(tt.root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Read(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			ooms, err := r.OOMKills(tt.path)
			if err != nil || ooms != tt.want.OOMKills {
				t.Fatalf("OOMKills = %d, %v; want %d", ooms, err, tt.want.OOMKills)
			}
			if !r.Exists(tt.path) {
				t.Fatal("Exists is false for an existing cgroup")
			}
			if _, err := r.Read("/skiff/missing"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("missing cgroup: got %v, want ErrNotFound", err)
			}
			if r.Exists("/skiff/missing") {
				t.Fatal("Exists is true for a missing cgroup")
			}
		})
	}
}

// TestReadReal makes a cgroup on this host, puts a process in it and
// reads it back.
func TestReadReal(t *testing.T) {
	r, err := NewReader("")
	if err != nil {
		t.Fatal(err)
	}
	path := "/skiff-cgtest-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)

	type setting struct{ file, value string }
	var dirs []string
	write := func(dir string, settings ...setting) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		for _, s := range settings {
			if err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0o644); err != nil {
				t.Fatalf("write %s: %v", s.file, err)
			}
		}
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	}()
	if r.Layout() == LayoutV2 {
		write(filepath.Join(DefaultRoot, path), setting{"memory.max", "67108864"}, setting{"pids.max", "10"}, setting{"cgroup.procs", pid})
	} else {
		write(filepath.Join(DefaultRoot, "memory", path), setting{"memory.limit_in_bytes", "67108864"}, setting{"cgroup.procs", pid})
		write(filepath.Join(DefaultRoot, "pids", path), setting{"pids.max", "10"}, setting{"cgroup.procs", pid})
		write(filepath.Join(DefaultRoot, "cpuacct", path), setting{"cgroup.procs", pid})
	}
	s, err := r.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids != 1 || s.PidsLimit != 10 || s.MemoryLimitBytes != 64<<20 {
		t.Fatalf("read %+v, want 1 pid of 10 and a 64 MiB limit", s)
	}
	// v1 does not move a process's charges with it, so usage may be 0.
	if s.MemoryUsageBytes > 64<<20 {
		t.Fatalf("memory usage %d is over the limit", s.MemoryUsageBytes)
	}
	if !r.Exists(path) {
		t.Fatal("Exists is false")
	}
}
