package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
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

// TestMountRootTakesTopLower checks that the overlay's root shows the
// owner, mode and times of the top lower directory (which the image store
// gives the image root's), whatever the umask, that a remount keeps what
// the container made of its root, and that an image without layers gets
// 0755 owned by root.
func TestMountRootTakesTopLower(t *testing.T) {
	old := unix.Umask(0o077)
	t.Cleanup(func() { unix.Umask(old) })
	dir := t.TempDir()
	lowers := layers(t, filepath.Join(dir, "layers"), 2, 2)
	mtime := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chown(lowers[0], 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(lowers[0], 0o1751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(lowers[0], mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(lowers[1], 0o700); err != nil { // a lower layer's root does not count
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	target := filepath.Join(c, "rootfs")
	mount := func(lowers []string) {
		t.Helper()
		if err := Mount(lowers, filepath.Join(c, "upper"), filepath.Join(c, "work"), target); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Unmount(target) })
	}
	mount(lowers)
	checkRoot(t, target, 0o1751, 1000, 1001, mtime)

	// What the container does to its root outlives a remount.
	if err := os.Chmod(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	mount(lowers)
	checkRoot(t, target, 0o755, 1000, 1001, time.Time{})
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}

	c = filepath.Join(dir, "empty")
	target = filepath.Join(c, "rootfs")
	mount(nil)
	checkRoot(t, target, 0o755, 0, 0, time.Time{})
}

func checkRoot(t *testing.T, root string, mode uint32, uid, gid int, mtime time.Time) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("the overlay root is %04o %d:%d, want %04o %d:%d", st.Mode&0o7777, st.Uid, st.Gid, mode, uid, gid)
	}
	if !mtime.IsZero() && st.Mtim.Sec != mtime.Unix() {
		t.Errorf("the overlay root was modified at %d, want %d", st.Mtim.Sec, mtime.Unix())
	}
}
