package container

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

// TestWriteFilesIn writes secret files into a tmpfs through a root, as
// into a created container: an absolute symlink on the way resolves
// inside the root, the files are 0400 and owned as asked, and a target
// that is not a tmpfs is refused.
func TestWriteFilesIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs and needs root")
	}
	root := t.TempDir()
	sec := filepath.Join(root, "run", "secrets")
	if err := os.MkdirAll(sec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sec, "tmpfs", 0, "mode=0755,size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sec, unix.MNT_DETACH) })
	// /s -> /run in the root: resolved in the root, not on the host.
	if err := os.Symlink("/run", filepath.Join(root, "s")); err != nil {
		t.Fatal(err)
	}
	if err := writeFilesIn(root, "/s/secrets", map[string][]byte{"pw": []byte("hunter2")}, fileOwner{uid: 1234, gid: 5678, mode: 0o400, creatorUID: -1, creatorGID: -1}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(sec, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o400 || sys.Uid != 1234 || sys.Gid != 5678 {
		t.Fatalf("file mode %v, owner %d:%d: want 0400 1234:5678", st.Mode(), sys.Uid, sys.Gid)
	}
	if b, _ := os.ReadFile(filepath.Join(sec, "pw")); string(b) != "hunter2" {
		t.Fatalf("content %q", b)
	}
	if err := os.MkdirAll(filepath.Join(root, "disk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFilesIn(root, "/disk", map[string][]byte{"pw": []byte("x")}, fileOwner{uid: 0, gid: 0, mode: 0o400, creatorUID: -1, creatorGID: -1}); err == nil {
		t.Fatal("a target on disk was written to")
	}
	if _, err := os.Stat(filepath.Join(root, "disk", "pw")); err == nil {
		t.Fatal("a secret reached the disk")
	}
}

// TestSecretOwner maps the files' owner through the user namespace:
// the container's user by default, the mount's UID, GID and Mode when set.
func TestSecretOwner(t *testing.T) {
	spec := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000, GID: 100}}}
	if o, err := secretOwner(spec, api.SecretMount{}); err != nil || o != (fileOwner{1000, 100, 0o400, -1, -1}) {
		t.Fatalf("no user namespace: %+v %v", o, err)
	}
	spec.Linux = &specs.Linux{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}},
	}
	if o, err := secretOwner(spec, api.SecretMount{}); err != nil || o != (fileOwner{201000, 300100, 0o400, 200000, 300000}) {
		t.Fatalf("mapped: %+v %v", o, err)
	}
	uid, gid := uint32(999), uint32(5)
	if o, err := secretOwner(spec, api.SecretMount{UID: &uid, GID: &gid, Mode: 0o440}); err != nil || o != (fileOwner{200999, 300005, 0o440, 200000, 300000}) {
		t.Fatalf("mount's owner and mode: %+v %v", o, err)
	}
	spec.Process.User.UID = 70000
	if _, err := secretOwner(spec, api.SecretMount{}); err == nil {
		t.Fatal("an unmapped user was accepted")
	}
}

// TestSecretSpecMountsShareTarget gives mounts of one directory a single
// tmpfs, so several single-file secrets can live in /run/secrets.
func TestSecretSpecMountsShareTarget(t *testing.T) {
	ms := secretSpecMounts([]api.SecretMount{{Target: "/run/secrets", Secret: "a"}, {Target: "/run/secrets", Secret: "b"}, {Target: "/etc/x", Secret: "c"}})
	if len(ms) != 2 || ms[0].Destination != "/run/secrets" || ms[1].Destination != "/etc/x" {
		t.Fatalf("mounts %+v: want one tmpfs at /run/secrets and one at /etc/x", ms)
	}
	if err := checkSecretMounts([]api.SecretMount{{Target: "/run/secrets", Secret: "a", Version: 1, Mode: 0o4755}}); err == nil {
		t.Fatal("a mode with setuid bits was accepted")
	}
}
