package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "skiff.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func rec(id, name string) *ContainerRecord {
	return &ContainerRecord{Container: api.Container{
		ID: id, Name: name, Created: time.Now().UTC(),
		Config:  api.ContainerConfig{Image: "localhost/hello:latest", Env: []string{"A=1"}},
		ImageID: "sha256:abc",
		State:   api.ContainerState{Status: api.StatusCreated},
	}}
}

func TestContainers(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.CreateContainer(ctx, rec("c1", "web")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate name", func() error { return s.CreateContainer(ctx, rec("c2", "web")) }, errdefs.ErrConflict},
		{"duplicate id", func() error { return s.CreateContainer(ctx, rec("c1", "other")) }, nil},
		{"state of unknown", func() error { return s.PutContainerState(ctx, &ContainerRecord{Container: api.Container{ID: "nope"}}) }, errdefs.ErrNotFound},
		{"get unknown", func() error { _, err := s.GetContainer(ctx, "nope"); return err }, errdefs.ErrNotFound},
		{"delete unknown", func() error { return s.DeleteContainer(ctx, "nope") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if tc.want == nil {
				if tc.name == "duplicate id" && err == nil {
					t.Fatal("duplicate id accepted")
				}
				if tc.name != "duplicate id" && err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	st := api.ContainerState{Status: api.StatusExited, ExitCode: 3, OOMKilled: true, RestartCount: 2}
	deadline := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	put := &ContainerRecord{Container: api.Container{ID: "c1", State: st, NetworkSettings: &api.NetworkSettings{Network: "skiff", IP: "10.89.0.2"}},
		ManuallyStopped: true, Intent: IntentStop, StopDeadline: deadline}
	if err := s.PutContainerState(ctx, put); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("a write based on no version: %v, want a conflict", err)
	}
	first, err := s.GetContainer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	put.Version = first.Version
	if err := s.PutContainerState(ctx, put); err != nil {
		t.Fatal(err)
	}
	if put.Version <= first.Version {
		t.Fatalf("version after a write: %d, was %d", put.Version, first.Version)
	}
	// A second writer that read the record before the first wrote finds
	// the conflict and writes nothing.
	stale := &ContainerRecord{Container: api.Container{ID: "c1", State: api.ContainerState{Status: api.StatusRunning}}, Version: first.Version}
	err = s.PutContainerState(ctx, stale)
	var se *StaleError
	if !errors.As(err, &se) || se.Kind != "container" || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("stale write: %v", err)
	}
	got, err := s.GetContainer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != st || !got.ManuallyStopped || got.Config.Env[0] != "A=1" || got.ImageID != "sha256:abc" || got.NetworkSettings == nil || got.NetworkSettings.IP != "10.89.0.2" ||
		got.Intent != IntentStop || !got.StopDeadline.Equal(deadline) {
		t.Fatalf("round trip: %+v", got)
	}
	all, err := s.ListContainers(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %v %d", err, len(all))
	}
	if err := s.DeleteContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetContainer(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "skiff.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateContainer(ctx, rec("c1", "web")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
}

// TestSIGKILLLosesNothingAcknowledged runs a writer in a child process that
// prints each id once its insert returned, kills it with SIGKILL midway,
// and checks that every acknowledged row is there.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skiff.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SKIFF_STORE_CHILD_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "ack "); ok {
			acked = append(acked, id)
			if len(acked) == 50 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	cmd.Wait()
	if len(acked) < 50 {
		t.Fatalf("child acknowledged only %d writes", len(acked))
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.GetContainer(context.Background(), id); err != nil {
			t.Errorf("acknowledged container %s lost: %v", id, err)
		}
	}
}

// TestMain doubles as the writer child of TestSIGKILLLosesNothingAcknowledged.
func TestMain(m *testing.M) {
	if path := os.Getenv("SKIFF_STORE_CHILD_DB"); path != "" {
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for i := 0; i < 10000; i++ {
			id := fmt.Sprintf("c%05d", i)
			if err := s.CreateContainer(context.Background(), rec(id, id)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("ack %s\n", id)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
