package userns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nsIno is the inode of the namespace at path (a pin or /proc/PID/ns/X).
func nsIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// ownerIno is the inode of the user namespace owning the namespace at path.
func ownerIno(t *testing.T, path string) uint64 {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	unix.Fstat(owner, &st)
	return st.Ino
}

// mountsUnder counts the mounts listed below dir.
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			n++
		}
	}
	return n
}

// TestSpares: a kept range has a spare pair (the network namespace
// owned by the user one, with the range's mapping); Take moves it to the
// container's paths and leaves none until Refill makes a new pair; a
// range not kept is never refilled; Drop leaves no mount behind.
func TestSpares(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes namespaces and mounts: run it as root (make test does)")
	}
	root := t.TempDir()
	s, err := NewSpares(filepath.Join(root, "spares"))
	if err != nil {
		t.Fatal(err)
	}
	m := RangeMap(5)
	defer s.Drop(5)
	if s.Kept(m) {
		t.Fatal("a range is kept before Keep")
	}
	// Without a spare, Take changes nothing.
	ctr := filepath.Join(root, "ctr")
	os.MkdirAll(ctr, 0o700)
	user, net := filepath.Join(ctr, "user"), filepath.Join(ctr, "net")
	if took, err := s.Take(m, user, net); took || err != nil {
		t.Fatalf("Take of a range with no spare = %v, %v; want false, nil", took, err)
	}
	if err := s.Keep(m); err != nil {
		t.Fatal(err)
	}
	if !s.Kept(m) {
		t.Fatal("Keep did not keep the range")
	}
	if ns, _ := s.Ranges(); len(ns) != 1 || ns[0] != 5 {
		t.Fatalf("Ranges = %v, want [5]", ns)
	}
	spareUser := filepath.Join(root, "spares", "5", User)
	first := nsIno(t, spareUser)
	// Keep again keeps the same pair.
	if err := s.Keep(m); err != nil || nsIno(t, spareUser) != first {
		t.Fatalf("a second Keep made a new pair (%v)", err)
	}
	fd, err := s.OpenUser(m)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	unix.Close(fd)
	if st.Ino != first {
		t.Fatal("OpenUser opened another user namespace than the spare")
	}

	took, err := s.Take(m, user, net)
	if err != nil || !took {
		t.Fatalf("Take = %v, %v; want the spare pair", took, err)
	}
	defer Unpin(user)
	defer Unpin(net)
	if !IsPinned(user) || !IsPinned(net) || nsIno(t, user) != first {
		t.Fatal("Take did not pin the spare pair at the container's paths")
	}
	if ownerIno(t, net) != first {
		t.Fatal("the network namespace taken is not owned by the user namespace taken")
	}
	if IsPinned(spareUser) {
		t.Fatal("the spare is still pinned after Take")
	}
	if took, _ := s.Take(m, filepath.Join(ctr, "u2"), filepath.Join(ctr, "n2")); took {
		t.Fatal("a second Take found a spare before Refill")
	}
	if err := s.Refill(m); err != nil {
		t.Fatal(err)
	}
	if !IsPinned(spareUser) || nsIno(t, spareUser) == first {
		t.Fatal("Refill did not make a new pair")
	}
	if err := s.Drop(5); err != nil {
		t.Fatal(err)
	}
	if s.Kept(m) || mountsUnder(t, filepath.Join(root, "spares")) != 0 {
		t.Fatal("Drop left the range kept or its pins mounted")
	}
	if err := s.Refill(m); err != nil || s.Kept(m) {
		t.Fatalf("Refill of a dropped range kept it again (%v)", err)
	}
	if !IsPinned(user) {
		t.Fatal("Drop unpinned what a container had taken")
	}
	// Take with no network path drops the spare network namespace.
	if err := s.Keep(m); err != nil {
		t.Fatal(err)
	}
	u3 := filepath.Join(ctr, "u3")
	if took, err := s.Take(m, u3, ""); !took || err != nil {
		t.Fatalf("Take without a network path = %v, %v", took, err)
	}
	Unpin(u3)
	if err := s.Drop(5); err != nil {
		t.Fatal(err)
	}
	if n := mountsUnder(t, root); n != 2 {
		t.Fatalf("%d mounts under the test directory, want only the 2 the first Take pinned", n)
	}
}

// TestSparesRefuseOtherMaps: only RangeMap's ranges are kept.
func TestSparesRefuseOtherMaps(t *testing.T) {
	s, err := NewSpares(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := RangeMap(1)
	m.HostID++
	if err := s.Keep(m); err == nil || !strings.Contains(err.Error(), "no user namespace id range") {
		t.Fatalf("Keep of a mapping that is no range = %v", err)
	}
}
