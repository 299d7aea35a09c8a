package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsInode is the inode of the namespace at path (a pin or
// /proc/PID/ns/KIND), 0 if it cannot be read.
func nsInode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// mountsBelow lists the mount points below dir.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// readSpare returns the directory of the one range with spare
// namespaces under d's root and the inodes of its pinned user and
// network namespaces; ok is false unless there is one and both are pinned.
func readSpare(d *Daemon) (dir string, user, net uint64, ok bool) {
	ents, _ := os.ReadDir(filepath.Join(d.Root, "userns"))
	if len(ents) != 1 {
		return "", 0, 0, false
	}
	dir = filepath.Join(d.Root, "userns", ents[0].Name())
	for _, k := range []string{"user", "net"} {
		var fs syscall.Statfs_t
		if syscall.Statfs(filepath.Join(dir, k), &fs) != nil || fs.Type != 0x6e736673 { // NSFS_MAGIC
			return dir, 0, 0, false
		}
	}
	return dir, nsInode(filepath.Join(dir, "user")), nsInode(filepath.Join(dir, "net")), true
}

// spareOf waits for readSpare to find a pinned pair.
func spareOf(t *testing.T, d *Daemon) (dir string, user, net uint64) {
	t.Helper()
	eventually(t, 20*time.Second, "a spare pair of namespaces pinned", func() bool {
		var ok bool
		dir, user, net, ok = readSpare(d)
		return ok
	})
	return dir, user, net
}

// coldStartTakesSpare wakes app at zero with a request and checks that
// its replica runs in the spare namespaces user and net made before the
// request, and that a new spare pair is made after it.
func coldStartTakesSpare(t *testing.T, d *Daemon, app string, user, net uint64) {
	t.Helper()
	if code, body := get(t, ingressAddr(t, d), app+".localhost", "/"); code != 200 || !strings.Contains(body, "hello from skiff") {
		t.Fatalf("cold request to %s: %d %s", app, code, body)
	}
	c := replicaContainers(t, d, app, 1)[0]
	if c.IDMap == nil {
		t.Fatalf("replica %s has no user namespace", c.Name)
	}
	gotUser := nsInode(fmt.Sprintf("/proc/%d/ns/user", c.State.Pid))
	gotNet := nsInode(fmt.Sprintf("/proc/%d/ns/net", c.State.Pid))
	if gotUser != user || gotNet != net {
		t.Fatalf("the replica started at zero runs in user namespace %d and network namespace %d, want the spare pair %d and %d made before the request", gotUser, gotNet, user, net)
	}
	eventually(t, 20*time.Second, "the next spare pair", func() bool {
		_, u, _, ok := readSpare(d)
		return ok && u != user
	})
}

// TestUserNSSpares: an App's id range keeps a spare pair of namespaces
// (user, and network owned by it), made ahead of need: a start from zero
// takes it instead of making its own, and the next pair is made after
// it, across scale to zero and a daemon kill and restart (the pins
// survive it). Deleting the App drops the pair: nothing stays mounted
// under the daemon's root.
func TestUserNSSpares(t *testing.T) {
	d, err := startDaemonWith("unsspare")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	before := mountsBelow(t, d.Root)
	if r := applyYAML(t, d, zeroApp("spare", "")); r.Code != 0 {
		t.Fatal(r)
	}
	eventually(t, 30*time.Second, "spare to be ready once", appReady(t, d, "spare"))
	waitZero(t, d, "spare")
	_, user, net := spareOf(t, d)
	coldStartTakesSpare(t, d, "spare", user, net)

	// Again after scale to zero: the pair made after the last start.
	waitZero(t, d, "spare")
	_, user, net = spareOf(t, d)
	coldStartTakesSpare(t, d, "spare", user, net)

	// The pins outlive the daemon; the restarted daemon uses them.
	waitZero(t, d, "spare")
	_, user, net = spareOf(t, d)
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if _, u, n := spareOf(t, d); u != user || n != net {
		t.Fatalf("the spare pair after a daemon restart is %d/%d, was %d/%d", u, n, user, net)
	}
	coldStartTakesSpare(t, d, "spare", user, net)

	// Pins gone, as after a reboot: the start makes its own pair and the
	// spare is made again.
	waitZero(t, d, "spare")
	dir, _, _ := spareOf(t, d)
	for _, k := range []string{"user", "net"} {
		if err := syscall.Unmount(filepath.Join(dir, k), syscall.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := get(t, ingressAddr(t, d), "spare.localhost", "/"); code != 200 {
		t.Fatalf("cold request with no spare pair: %d %s", code, body)
	}
	spareOf(t, d)

	must(t, d, "delete", "app", "spare")
	eventually(t, 30*time.Second, "the App's replicas and spare namespaces gone", func() bool {
		ctrs, _ := os.ReadDir(filepath.Join(d.Root, "containers"))
		spares, _ := os.ReadDir(filepath.Join(d.Root, "userns"))
		return len(ctrs) == 0 && len(spares) == 0
	})
	if after := mountsBelow(t, d.Root); len(after) != len(before) {
		t.Fatalf("mounts under the daemon root: %d before the App, %d after it was deleted:\n%s", len(before), len(after), strings.Join(after, "\n"))
	}
}
