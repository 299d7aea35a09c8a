package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

// layers makes n lower directories under dir, each holding a file named
// after it, and a file "top" whose content names the layer.
func layers(t *testing.T, dir string, n int, nameLen int) []string {
	t.Helper()
	var out []string
	for i := range n {
		name := fmt.Sprintf("%0*d", nameLen, i)
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, content := range map[string]string{"f" + name: name, "top": name} {
			if err := os.WriteFile(filepath.Join(d, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, d)
	}
	return out
}

func isMounted(t *testing.T, target string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == target {
			return true
		}
	}
	return false
}

func TestMount(t *testing.T) {
	tests := []struct {
		name       string
		layers     int
		nameLen    int
		noNewAPI   bool
		wantMounts bool
	}{
		{name: "one layer", layers: 1, nameLen: 2},
		{name: "three layers", layers: 3, nameLen: 2},
		{name: "no layers", layers: 0},
		{name: "options longer than a page", layers: 40, nameLen: 120},
		{name: "longer than a page without lowerdir+", layers: 40, nameLen: 120, noNewAPI: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noNewAPI {
				old := mountNewAPI
				mountNewAPI = func(_ []string, _, _, _ string) error { return unix.EINVAL }
				t.Cleanup(func() { mountNewAPI = old })
			}
			dir := t.TempDir()
			lowers := layers(t, filepath.Join(dir, "layers"), tt.layers, tt.nameLen)
			upper, work, target := filepath.Join(dir, "c", "upper"), filepath.Join(dir, "c", "work"), filepath.Join(dir, "c", "rootfs")
			if err := Mount(lowers, upper, work, target); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Unmount(target) })
			if !isMounted(t, target) {
				t.Fatal("target is not a mount point")
			}
			for _, l := range lowers {
				if _, err := os.Stat(filepath.Join(target, "f"+filepath.Base(l))); err != nil {
					t.Fatalf("file of layer %s not visible: %v", filepath.Base(l), err)
				}
			}
			if tt.layers > 0 {
				top, err := os.ReadFile(filepath.Join(target, "top"))
				if err != nil {
					t.Fatal(err)
				}
				if string(top) != filepath.Base(lowers[0]) {
					t.Fatalf("top file is from layer %s, want the first lower %s", top, filepath.Base(lowers[0]))
				}
				// A delete is a whiteout in upper; the lower keeps its file.
				if err := os.Remove(filepath.Join(target, "top")); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(lowers[0], "top")); err != nil {
					t.Fatal("deleting through the overlay changed a lower layer")
				}
			}
			if err := os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
				t.Fatalf("a write did not land in upper: %v", err)
			}
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			if isMounted(t, target) {
				t.Fatal("still mounted after Unmount")
			}
			if err := Unmount(target); err != nil {
				t.Fatalf("second Unmount: %v", err)
			}
		})
	}
}

func TestMountTooManyLayers(t *testing.T) {
	old := mountNewAPI
	mountNewAPI = func(_ []string, _, _, _ string) error { return unix.EINVAL }
	t.Cleanup(func() { mountNewAPI = old })
	dir := t.TempDir()
	lowers := layers(t, dir, 300, 3)
	err := Mount(lowers, filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "t"))
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "300 layers") {
		_ = Unmount(filepath.Join(dir, "t"))
		t.Fatalf("got %v, want ErrInvalid naming the layer count", err)
	}
}

func TestMountInvalid(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		lowers []string
		want   error
	}{
		{"relative lower", []string{"layer"}, errdefs.ErrInvalid},
		{"colon in path", []string{dir + "/a:b"}, errdefs.ErrInvalid},
		{"missing lower", []string{dir + "/missing"}, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Mount(tt.lowers, dir+"/u", dir+"/w", dir+"/t")
			if !errors.Is(err, tt.want) {
				_ = Unmount(dir + "/t")
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUnmountBusy(t *testing.T) {
	dir := t.TempDir()
	lowers := layers(t, filepath.Join(dir, "layers"), 1, 2)
	target := filepath.Join(dir, "t")
	if err := Mount(lowers, filepath.Join(dir, "u"), filepath.Join(dir, "w"), target); err != nil {
		t.Fatal(err)
	}
	// A process with its working directory inside keeps the mount busy.
	f, err := os.Open(filepath.Join(target, "top"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if isMounted(t, target) {
		t.Fatal("busy mount still attached after Unmount")
	}
	if _, err := os.Stat(filepath.Join(target, "top")); err == nil {
		t.Fatal("overlay contents still visible at target")
	}
}

func TestUnmountMissing(t *testing.T) {
	if err := Unmount(filepath.Join(t.TempDir(), "nothing")); err != nil {
		t.Fatal(err)
	}
}
