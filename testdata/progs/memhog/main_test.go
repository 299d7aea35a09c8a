package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHog(t *testing.T) {
	tests := []struct {
		name     string
		n, step  int
		progress []string
	}{
		{"none", 0, 8, nil},
		{"one", 1, 8, []string{"allocated 1 MiB"}},
		{"steps and last", 10, 4, []string{"allocated 4 MiB", "allocated 8 MiB", "allocated 10 MiB"}},
		{"exact steps", 8, 4, []string{"allocated 4 MiB", "allocated 8 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			blocks := hog(tt.n, tt.step, &out)
			if len(blocks) != tt.n {
				t.Fatalf("%d blocks, want %d", len(blocks), tt.n)
			}
			for i, b := range blocks {
				if len(b) != mib {
					t.Fatalf("block %d is %d bytes", i, len(b))
				}
				// Every page was written.
				for p := 0; p < len(b); p += pageSize {
					if b[p] == 0 {
						t.Fatalf("block %d page %d untouched", i, p/pageSize)
					}
				}
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if !slices.Equal(lines, tt.progress) {
				t.Errorf("progress %q, want %q", lines, tt.progress)
			}
		})
	}
}

// TestMain lets the test binary run the command (MEMHOG_RUN_MAIN=1).
func TestMain(m *testing.M) {
	if os.Getenv("MEMHOG_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestMemoryLimit runs the command in a memory cgroup limited to 32 MiB:
// touching 200 MiB gets it OOM-killed, 8 MiB does not.
func TestMemoryLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestMemoryLimit makes a cgroup and must run as root")
	}
	tests := []struct {
		name   string
		mb     int
		killed bool
	}{
		{"over the limit", 200, true},
		{"under the limit", 8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cg := memoryCgroup(t, 32<<20)
			cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" -mb "$3"`, "sh", cg, os.Args[0], fmt.Sprint(tt.mb))
			cmd.Env = append(os.Environ(), "MEMHOG_RUN_MAIN=1")
			out, err := cmd.CombinedOutput()
			if tt.killed {
				ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("memhog -mb %d under 32 MiB: %v, want killed by the OOM killer\n%s", tt.mb, err, out)
				}
				return
			}
			if err != nil || !strings.Contains(string(out), fmt.Sprintf("done %d MiB", tt.mb)) {
				t.Fatalf("memhog -mb %d under 32 MiB: %v\n%s", tt.mb, err, out)
			}
		})
	}
}

// memoryCgroup makes a memory cgroup limited to limit bytes, removed at
// the end.
func memoryCgroup(t *testing.T, limit int) string {
	t.Helper()
	root, file := "/sys/fs/cgroup/memory", "memory.limit_in_bytes" // v1 and hybrid
	if _, err := os.Stat(root); err != nil {
		root, file = "/sys/fs/cgroup", "memory.max" // v2
	}
	dir := filepath.Join(root, fmt.Sprintf("skiff-memhog-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make a memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.Remove(dir); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Fatalf("set %s: %v", file, err)
	}
	return dir
}
