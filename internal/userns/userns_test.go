package userns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

func TestRanges(t *testing.T) {
	for _, n := range []int{0, 1, 7, MaxRanges - 1} {
		m := RangeMap(n)
		if got, ok := RangeIndex(m); !ok || got != n {
			t.Errorf("RangeIndex(RangeMap(%d)) = %d, %v", n, got, ok)
		}
		if uint64(m.HostID)+uint64(m.Size) > 1<<32-1 {
			t.Errorf("range %d ends past the largest host id: %+v", n, m)
		}
	}
	if RangeMap(1).HostID != Base+Size {
		t.Errorf("range 1 starts at %d, want %d", RangeMap(1).HostID, Base+Size)
	}
	for _, m := range []api.IDMap{{HostID: 0, Size: Size}, {HostID: Base + 1, Size: Size}, {HostID: Base, Size: 1000}} {
		if _, ok := RangeIndex(m); ok {
			t.Errorf("RangeIndex(%+v) accepted a mapping that is no range", m)
		}
	}
}

// TestPinAndIDMappedMount makes a holder with both namespaces, pins
// them, and shows a directory owned by root through an idmapped mount.
func TestPinAndIDMappedMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes namespaces and mounts: run it as root (make test does)")
	}
	dir := t.TempDir()
	m := RangeMap(3)
	userPin, netPin := filepath.Join(dir, "user"), filepath.Join(dir, "net")
	err := WithHolder(m, true, func(pid int) error {
		if err := Pin(pid, User, userPin); err != nil {
			return err
		}
		return Pin(pid, Network, netPin)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer Unpin(userPin)
	defer Unpin(netPin)
	if !IsPinned(userPin) || !IsPinned(netPin) {
		t.Fatal("namespaces are not pinned after the holder exited")
	}
	// The network namespace belongs to the pinned user namespace.
	nfd, err := unix.Open(netPin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nfd)
	owner, err := unix.IoctlRetInt(nfd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(owner)
	var a, b unix.Stat_t
	unix.Fstat(owner, &a)
	unix.Stat(userPin, &b)
	if a.Ino != b.Ino {
		t.Fatalf("the network namespace's owner (inode %d) is not the pinned user namespace (%d)", a.Ino, b.Ino)
	}

	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.Chown(filepath.Join(src, "sub"), 1000, 1000)
	ufd, err := unix.Open(userPin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ufd)
	view := filepath.Join(dir, "view")
	if err := MountIDMapped(ufd, src, view); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	err = unix.Stat(filepath.Join(view, "sub"), &st)
	if err != nil || st.Uid != m.HostID+1000 || st.Gid != m.HostID+1000 {
		t.Fatalf("through the idmapped mount sub is %d:%d (%v), want %d:%d", st.Uid, st.Gid, err, m.HostID+1000, m.HostID+1000)
	}
	// A file given to the range's uid 5 through the view is uid 5 on disk.
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(view, "f"), int(m.HostID)+5, int(m.HostID)+5); err != nil {
		t.Fatal(err)
	}
	unix.Stat(filepath.Join(src, "f"), &st)
	if st.Uid != 5 || st.Gid != 5 {
		t.Fatalf("file chowned to the range's 5 through the view is %d:%d on disk, want 5:5", st.Uid, st.Gid)
	}
	if err := Detach(view); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(view); !os.IsNotExist(err) {
		t.Fatalf("mount point left after Detach: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Fatalf("Detach touched the source: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), view) {
		t.Fatal("idmapped mount still listed after Detach")
	}
}
