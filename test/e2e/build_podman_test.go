package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"golang.org/x/sys/unix"
)

// podmanCases are the Dockerfiles under testdata/podman-build, each built
// by skiff and by podman from the same context, with what must be in both
// images (so a comparison of two images that both lack the Dockerfile's
// work cannot pass): a path, and text its description must hold.
var podmanCases = []struct {
	name string
	want map[string]string
}{
	{"run-config", map[string]string{"greeting": "", "exec-form": "", "shell": "", "home/app/work/seen": "uid=1000", "srv/www/made-by-1000": "gid=50"}},
	{"deletions", map[string]string{"data/b": "urwxr-xr-x", "etc/passwd.link": "nlink=2", "shared.link": "nlink=2", "shared.again": "nlink=2",
		"opq/z": "", "opq/sym": "-> ../shared.link", "home/app/seen": "uid=1000", "scratch": "dtrwxrwxrwx"}},
	{"copy-flags", map[string]string{"opt/files/sub/b.txt": "", "opt/owned-num": "uid=1000", "opt/owned-name/b.txt": "gid=50", "opt/private": "-rw-------",
		"usr/local/bin/run.sh": "-rwxr-xr-x uid=1000", "opt/multi/a.txt": "", "opt/unpacked/owned": "uid=1234 gid=4321 nlink=2",
		"opt/unpacked/dir/link": "-> ../owned", "opt/added.txt": ""}},
	{"multi-stage", map[string]string{"usr/bin/tool": "", "usr/bin/alias": "-> tool", "other": "", "home/tool": "uid=1000", "usr/bin/h2": "nlink=2"}},
	{"xattrs", map[string]string{"tagged": `user.note="changed"`, "later": `user.second="again"`}},
	{"heredocs", map[string]string{"h1": "", "etc/app/conf": "", "etc/greeting": ""}},
	{"shell-forms", map[string]string{"relative/dir/sub/mine": "uid=1000 gid=50"}},
}

// podmanOnly are the empty mount points podman's builder leaves in an
// image; skiff, like BuildKit, leaves them out.
var podmanOnly = map[string]bool{"dev": true, "proc": true, "sys": true, "run": true, "etc/hostname": true, "etc/hosts": true, "etc/resolv.conf": true}

// TestBuildMatchesPodman builds each Dockerfile of the corpus with skiff
// and with podman build (Debian's podman, overlay storage), unpacks both
// images with umoci and compares every file (type, mode, owner, size and
// contents, link target, link count, extended attributes) and the image
// configuration. Both build FROM the same base, itself built by each from
// one context and compared first.
func TestBuildMatchesPodman(t *testing.T) {
	for _, bin := range []string{"podman", "skopeo", "umoci"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed (make deps-test): %v", bin, err)
		}
	}
	d := env.daemon
	work := t.TempDir()
	pm := newPodmanStore(t)

	base := filepath.Join(work, "base")
	if err := busyboxContext(base); err != nil {
		t.Fatal(err)
	}
	if err := goBuild(filepath.Join(base, "rootfs/bin/setxattr"), "./test/e2e/testdata/setxattr"); err != nil {
		t.Fatal(err)
	}
	compareBuilds(t, d, pm, work, "cmp-base", base, "Dockerfile")

	for _, c := range podmanCases {
		t.Run(c.name, func(t *testing.T) {
			ctxDir := filepath.Join(work, c.name)
			if err := os.CopyFS(ctxDir, os.DirFS(filepath.Join("testdata/podman-build", c.name))); err != nil {
				t.Fatal(err)
			}
			writeOwnedTar(t, filepath.Join(ctxDir, "archive.tar"))
			podmanFile := "Dockerfile"
			if _, err := os.Stat(filepath.Join(ctxDir, "Dockerfile.podman")); err == nil {
				podmanFile = "Dockerfile.podman"
			}
			got, _ := compareBuilds(t, d, pm, work, "cmp-"+c.name, ctxDir, podmanFile)
			for name, part := range c.want {
				if g := got[name]; g == "" || !strings.Contains(g, part) {
					t.Errorf("%s is %q in skiff's image, want it there with %q", name, g, part)
				}
			}
		})
	}
}

// compareBuilds builds ctxDir as localhost/NAME with skiff (its
// Dockerfile) and with podman (podmanFile, the same Dockerfile unless
// podman cannot parse it), reports every difference, and returns the
// trees of skiff's and podman's images.
func compareBuilds(t *testing.T, d *Daemon, pm *podmanStore, work, name, ctxDir, podmanFile string) (got, want map[string]string) {
	t.Helper()
	ref := "localhost/" + name + ":latest"
	must(t, d, "image", "build", "-q", "--build-arg", "COLOUR=blue", "-t", name, ctxDir)
	skiffLayout := filepath.Join(work, name+"-skiff-oci")
	run(t, nil, "skopeo", "copy", "oci:"+filepath.Join(d.Root, "images")+":"+ref, "oci:"+skiffLayout+":cmp")

	pm.run(t, "build", "-q", "--layers", "--network", "none", "--build-arg", "COLOUR=blue", "-f", filepath.Join(ctxDir, podmanFile), "-t", ref, ctxDir)
	podmanLayout := filepath.Join(work, name+"-podman-oci")
	pm.run(t, "push", "-q", ref, "oci:"+podmanLayout+":cmp")

	run(t, nil, "umoci", "unpack", "--image", skiffLayout+":cmp", filepath.Join(work, name+"-skiff"))
	run(t, nil, "umoci", "unpack", "--image", podmanLayout+":cmp", filepath.Join(work, name+"-podman"))
	got = describeTree(t, filepath.Join(work, name+"-skiff", "rootfs"))
	want = describeTree(t, filepath.Join(work, name+"-podman", "rootfs"))
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok && podmanOnly[p]:
		case !ok:
			t.Errorf("%s: in podman's image, not in skiff's (%s)", p, w)
		case g != w:
			t.Errorf("%s: skiff %s, podman %s", p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in skiff's image, not in podman's (%s)", p, g)
		}
	}
	compareConfigs(t, layoutConfig(t, skiffLayout, "cmp"), layoutConfig(t, podmanLayout, "cmp"))
	return got, want
}

// compareConfigs reports the fields of the image configuration a
// container sees that differ between skiff's image and podman's.
func compareConfigs(t *testing.T, got, want *v1.ConfigFile) {
	t.Helper()
	g, w := got.Config, want.Config
	// podman's builder labels every image with its own version.
	delete(w.Labels, "io.buildah.version")
	if len(w.Labels) == 0 {
		w.Labels = nil
	}
	if len(g.Labels) == 0 {
		g.Labels = nil
	}
	fields := []struct {
		name      string
		got, want any
	}{
		{"Env", g.Env, w.Env},
		{"Cmd", g.Cmd, w.Cmd},
		{"Entrypoint", g.Entrypoint, w.Entrypoint},
		{"WorkingDir", g.WorkingDir, w.WorkingDir},
		{"User", g.User, w.User},
		{"ExposedPorts", g.ExposedPorts, w.ExposedPorts},
		{"Labels", g.Labels, w.Labels},
		{"StopSignal", g.StopSignal, w.StopSignal},
		{"Volumes", g.Volumes, w.Volumes},
	}
	for _, f := range fields {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("config %s: skiff %#v, podman %#v", f.name, f.got, f.want)
		}
	}
}

// layoutConfig reads the configuration of the image tagged ref in an OCI
// layout.
func layoutConfig(t *testing.T, dir, ref string) *v1.ConfigFile {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range m.Manifests {
		if desc.Annotations["org.opencontainers.image.ref.name"] != ref {
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Fatalf("no image %s in %s", ref, dir)
	return nil
}

// writeOwnedTar writes an archive for ADD whose entries carry owners and
// modes of their own, a symbolic link and a hard link (whose header
// repeats its target's metadata, as tar and Go's FileInfoHeader write it).
func writeOwnedTar(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	entries := []tar.Header{
		{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 4321},
		{Name: "owned", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 4321, Size: 6},
		{Name: "dir/link", Typeflag: tar.TypeSymlink, Linkname: "../owned"},
		{Name: "dir/hard", Typeflag: tar.TypeLink, Linkname: "owned", Mode: 0o640, Uid: 1234, Gid: 4321},
	}
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("owned\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// podmanStore is a private podman store (overlay storage, runc) in a
// temporary directory, removed when the test ends.
type podmanStore struct {
	args []string
	env  []string
}

func newPodmanStore(t *testing.T) *podmanStore {
	t.Helper()
	// podman refuses a runroot path over 50 characters.
	short, err := os.MkdirTemp("", "pm-")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(short, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits=[\"nofile=20000:20000\",\"nproc=32768:32768\"]\n[engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\nevents_logger=\"file\"\n"), 0o644)
	p := &podmanStore{
		args: []string{"--root", filepath.Join(short, "root"), "--runroot", filepath.Join(short, "run"), "--storage-driver", "overlay"},
		env:  append(os.Environ(), "CONTAINERS_CONF="+conf),
	}
	t.Cleanup(func() {
		c := exec.Command("podman", append(p.args, "system", "reset", "-f")...)
		c.Env = p.env
		c.Run()
		os.RemoveAll(short)
	})
	return p
}

// run runs podman on the store and fails the test unless it succeeds.
func (p *podmanStore) run(t *testing.T, args ...string) {
	t.Helper()
	run(t, p.env, "podman", append(slices.Clone(p.args), args...)...)
}

// run runs a command and fails the test unless it succeeds.
func run(t *testing.T, environ []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = environ
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// describeTree maps each path under root to its type, mode, owner, link
// count, size and contents or link target, and extended attributes. Times
// are left out: each builder stamps what it creates with its own clock.
// A directory's link count is left out too: it counts subdirectories,
// which the comparison sees by themselves.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v uid=%d gid=%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += fmt.Sprintf(" nlink=%d -> %s", st.Nlink, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" nlink=%d size=%d sha256=%x", st.Nlink, fi.Size(), sha256.Sum256(data))
		}
		desc += xattrs(t, p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// xattrs formats the extended attributes of path (not following a
// symbolic link), sorted: " user.a=x user.b=y", or "".
func xattrs(t *testing.T, path string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(path, buf)
	if err != nil || n == 0 {
		return ""
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var s strings.Builder
	for _, name := range names {
		val := make([]byte, 4096)
		m, err := unix.Lgetxattr(path, name, val)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", path, name, err)
		}
		fmt.Fprintf(&s, " %s=%q", name, val[:m])
	}
	return s.String()
}
