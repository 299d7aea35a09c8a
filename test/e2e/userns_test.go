package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// usernsApp is a busybox App serving /tmp on 8080, with a named volume.
func usernsApp(name, extra string) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: busybox
  command: [httpd, -f, -p, "8080", -h, /tmp]
  probes:
    readiness: {tcp: 8080, period: 200ms}
  volumes: [{name: %s-data, mountPath: /data}]
%s`, name, name, extra)
}

// replicaContainers returns the containers of app's replicas, waiting
// until it has want of them.
func replicaContainers(t *testing.T, d *Daemon, app string, want int) []api.Container {
	t.Helper()
	var out []api.Container
	eventually(t, 30*time.Second, fmt.Sprintf("%d replicas of %s", want, app), func() bool {
		out = out[:0]
		for _, r := range replicasOf(t, d, app) {
			if r.ContainerID != "" {
				out = append(out, inspect(t, d, r.ContainerID))
			}
		}
		return len(out) == want
	})
	return out
}

// hostUID returns the real uid, as the host sees it, of process pid.
func hostUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return -1
}

// owner returns the uid and gid of path on the host.
func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

// TestUserNSApps: an App's replicas run in a user namespace whose root
// is an unprivileged host uid, every replica of an App in the App's
// range, two Apps in distinct ranges; what a replica writes to its root
// is owned by the mapped uid on the host, what it writes to a named
// volume keeps the container's own owner on disk; hostUsers: true runs
// as host root.
func TestUserNSApps(t *testing.T) {
	d := env.daemon
	must(t, d, "apply", "-f", writeApp(t, usernsApp("uns-a", "  scale: {min: 2, max: 2}\n")))
	defer d.Run("", "delete", "app", "uns-a")
	must(t, d, "apply", "-f", writeApp(t, usernsApp("uns-b", "")))
	defer d.Run("", "delete", "app", "uns-b")
	eventually(t, 60*time.Second, "uns-a ready", appReady(t, d, "uns-a"))
	eventually(t, 60*time.Second, "uns-b ready", appReady(t, d, "uns-b"))

	as := replicaContainers(t, d, "uns-a", 2)
	bs := replicaContainers(t, d, "uns-b", 1)
	for _, c := range append(append([]api.Container{}, as...), bs...) {
		if c.IDMap == nil || c.IDMap.HostID < 100000 || c.IDMap.Size != 65536 || c.Config.UserNS != api.UserNSAuto {
			t.Fatalf("replica %s has userns %q and id map %+v, want its own range of 65536 ids from 100000 up", c.Name, c.Config.UserNS, c.IDMap)
		}
	}
	a, b := *as[0].IDMap, *bs[0].IDMap
	if *as[1].IDMap != a {
		t.Fatalf("the replicas of uns-a have ranges %+v and %+v, want the App's one", a, *as[1].IDMap)
	}
	if a.HostID == b.HostID {
		t.Fatalf("uns-a and uns-b share the range from %d", a.HostID)
	}

	c := as[0]
	uidMap := must(t, d, "exec", c.ID, "cat", "/proc/self/uid_map")
	if f := strings.Fields(uidMap); len(f) != 3 || f[0] != "0" || f[1] != strconv.Itoa(int(a.HostID)) || f[2] != "65536" {
		t.Fatalf("uid_map in the replica = %q, want 0 %d 65536", uidMap, a.HostID)
	}
	if got := must(t, d, "exec", c.ID, "id", "-u"); strings.TrimSpace(got) != "0" {
		t.Fatalf("id -u in the replica = %q, want 0 (root in its namespace)", got)
	}
	if uid := hostUID(t, c.State.Pid); uid != int(a.HostID) {
		t.Fatalf("the replica's process is uid %d on the host, want %d", uid, a.HostID)
	}
	must(t, d, "exec", c.ID, "sh", "-c", "touch /made && echo hi > /data/f && chown 1000:1000 /data/f")
	upper := filepath.Join(d.Root, "containers", c.ID, "upper", "made")
	if u, g := owner(t, upper); u != a.HostID || g != a.HostID {
		t.Fatalf("a file the replica made in its root is %d:%d on the host, want %d:%d", u, g, a.HostID, a.HostID)
	}
	vol := filepath.Join(d.Root, "volumes", "uns-a-data", "_data", "f")
	if u, g := owner(t, vol); u != 1000 || g != 1000 {
		t.Fatalf("a file chowned to 1000 in the volume is %d:%d on disk, want 1000:1000 (the volume is idmapped)", u, g)
	}
	if out := must(t, d, "exec", c.ID, "stat", "-c", "%u:%g", "/data/f"); strings.TrimSpace(out) != "1000:1000" {
		t.Fatalf("inside the replica /data/f is %q, want 1000:1000", out)
	}

	// hostUsers: true: the host's user namespace.
	must(t, d, "apply", "-f", writeApp(t, usernsApp("uns-host", "  security: {hostUsers: true}\n")))
	defer d.Run("", "delete", "app", "uns-host")
	eventually(t, 60*time.Second, "uns-host ready", appReady(t, d, "uns-host"))
	h := replicaContainers(t, d, "uns-host", 1)[0]
	if h.IDMap != nil || h.Config.UserNS != "" || hostUID(t, h.State.Pid) != 0 {
		t.Fatalf("hostUsers: true gave id map %+v, userns %q, host uid %d; want none and 0", h.IDMap, h.Config.UserNS, hostUID(t, h.State.Pid))
	}
}

// TestUserNSRun: run --userns auto maps root to an unprivileged range:
// a file it makes on a host directory is owned by the mapped uid, a
// root-only host file bind-mounted in cannot be read; --userns host (the
// default) is host root; bad modes and --network host are refused.
func TestUserNSRun(t *testing.T) {
	d := env.daemon
	dir := filepath.Join(env.tmp, "userns-run")
	hostDir := filepath.Join(dir, "shared")
	secret := filepath.Join(dir, "root-only")
	if err := os.MkdirAll(hostDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hostDir, 0o777)
	if err := os.WriteFile(secret, []byte("host-secret-canary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := d.Run("", "run", "--rm", "--userns", "auto", "-v", hostDir+":/h", "-v", secret+":/secret:ro", "busybox",
		"sh", "-c", "cat /proc/self/uid_map; touch /h/made; cat /secret; echo cat-exit=$?")
	if r.Code != 0 {
		t.Fatalf("run --userns auto: %s", r)
	}
	f := strings.Fields(strings.SplitN(r.Stdout, "\n", 2)[0])
	if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
		t.Fatalf("uid_map under --userns auto = %q", r.Stdout)
	}
	hostID, _ := strconv.Atoi(f[1])
	if hostID < 100000 {
		t.Fatalf("container root is host uid %d, want an unprivileged one from 100000", hostID)
	}
	if u, g := owner(t, filepath.Join(hostDir, "made")); int(u) != hostID || int(g) != hostID {
		t.Fatalf("the file root made on the host directory is %d:%d, want %d:%d", u, g, hostID, hostID)
	}
	if strings.Contains(r.Stdout, "host-secret-canary") || !strings.Contains(r.Stdout, "cat-exit=1") || !strings.Contains(r.Stderr+r.Stdout, "Permission denied") {
		t.Fatalf("container root read a root-only host file: %s", r)
	}

	// The default, and --userns host: the host's user namespace.
	for _, args := range [][]string{{"run", "--rm"}, {"run", "--rm", "--userns", "host"}} {
		out := must(t, d, append(args, "busybox", "cat", "/proc/self/uid_map")...)
		if f := strings.Fields(out); len(f) != 3 || f[0] != "0" || f[1] != "0" || f[2] != "4294967295" {
			t.Fatalf("%v: uid_map = %q, want the host's (0 0 4294967295)", args, out)
		}
	}
	fails(t, d, []string{"unknown user namespace mode \"private\"", "use auto or host"}, "run", "--rm", "--userns", "private", "busybox", "true")
	fails(t, d, []string{"--userns auto and --network host conflict"}, "run", "--rm", "--userns", "auto", "--network", "host", "busybox", "true")
}

// TestUserNSDebian: a Debian root runs under a user namespace: apt drops
// to its _apt user for a (local) update, and root can chown files.
func TestUserNSDebian(t *testing.T) {
	d := env.daemon
	img := baseImage(t, d, "debian-postgresql")
	script := `set -e
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
mkdir -p /repo && : > /repo/Packages
echo 'deb [trusted=yes] file:/repo ./' > /etc/apt/sources.list.d/local.list
apt-get update 2>&1
touch /f && chown _apt:nogroup /f && stat -c 'owner=%U:%G' /f
su -s /bin/sh -c 'id -un' nobody
cat /proc/self/uid_map`
	r := d.Run("", "run", "--rm", "--userns", "auto", img, "sh", "-c", script)
	if r.Code != 0 {
		t.Fatalf("Debian under --userns auto: %s", r)
	}
	for _, want := range []string{"Reading package lists", "owner=_apt:nogroup", "nobody\n"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("Debian under --userns auto: output lacks %q: %s", want, r)
		}
	}
	for _, bad := range []string{"unsandboxed", "setgroups", "W: ", "E: "} {
		if strings.Contains(r.Stdout, bad) {
			t.Fatalf("apt under --userns auto complains (%q): %s", bad, r)
		}
	}
	if f := strings.Fields(r.Stdout[strings.LastIndex(strings.TrimSpace(r.Stdout), "\n")+1:]); len(f) != 3 || f[1] == "0" {
		t.Fatalf("the Debian container ran as host root: %s", r)
	}
}

// TestUserNSDaemonRestart: a container's range is durable: after the
// daemon is killed and restarted, the container stops and starts again
// in the same range; removing it frees the range for the next one.
func TestUserNSDaemonRestart(t *testing.T) {
	d, err := startDaemonWith("userns", "--security-profile", "privileged")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	must(t, d, "run", "-d", "--name", "keep", "--userns", "auto", "-v", "keepvol:/v", "busybox", "sleep", "1000")
	before := inspect(t, d, "keep").IDMap
	if before == nil {
		t.Fatal("--userns auto container has no id map")
	}
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	must(t, d, "stop", "-t", "1", "keep")
	must(t, d, "start", "keep")
	after := inspect(t, d, "keep").IDMap
	if after == nil || *after != *before {
		t.Fatalf("id map after a daemon restart = %+v, was %+v", after, before)
	}
	out := must(t, d, "exec", "keep", "cat", "/proc/self/uid_map")
	if f := strings.Fields(out); len(f) != 3 || f[1] != strconv.Itoa(int(before.HostID)) {
		t.Fatalf("uid_map after restart = %q, want host id %d", out, before.HostID)
	}
	must(t, d, "rm", "-f", "keep")
	out = must(t, d, "run", "--rm", "--userns", "auto", "busybox", "cat", "/proc/self/uid_map")
	if f := strings.Fields(out); len(f) != 3 || f[1] != strconv.Itoa(int(before.HostID)) {
		t.Fatalf("after the container was removed the next one got %q, want its freed range from %d", out, before.HostID)
	}
	// --rm cleans up in the background; pinned namespaces and idmapped
	// mounts must not keep the directories from going.
	eventually(t, 10*time.Second, "container directories removed", func() bool {
		ents, _ := os.ReadDir(filepath.Join(d.Root, "containers"))
		return len(ents) == 0
	})
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), filepath.Join(d.Root, "containers")+"/") {
		t.Fatalf("mounts left under the containers directory:\n%s", mi)
	}
}
