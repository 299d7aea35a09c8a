package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// storeRootTar returns a root filesystem tar holding busybox (as sh, echo,
// cat, ls and pwd), /tmp and extra files (name → content).
func storeRootTar(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format = mod, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data))}, data)
	for _, a := range []string{"sh", "echo", "cat", "ls", "pwd"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox"}, nil)
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(extra[n]))}, []byte(extra[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storeLayerDirs returns the layer directories of image ref (a fully
// qualified reference) in d's store, bottom first, as the store names
// them: layers/<chain ID>. It reads the OCI layout, not the API.
func storeLayerDirs(t *testing.T, d *Daemon, ref string) []string {
	t.Helper()
	images := filepath.Join(d.Root, "images")
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	readJSON := func(p string, v any) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	blob := func(digest string) string {
		return filepath.Join(images, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	readJSON(filepath.Join(images, "index.json"), &index)
	for _, m := range index.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != ref {
			continue
		}
		var mf struct{ Config struct{ Digest string } }
		readJSON(blob(m.Digest), &mf)
		var cfg struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		readJSON(blob(mf.Config.Digest), &cfg)
		var dirs []string
		chain := ""
		for _, id := range cfg.RootFS.DiffIDs {
			if chain == "" {
				chain = id
			} else {
				sum := sha256.Sum256([]byte(chain + " " + id))
				chain = "sha256:" + hex.EncodeToString(sum[:])
			}
			dirs = append(dirs, filepath.Join(d.Root, "layers", strings.TrimPrefix(chain, "sha256:")))
		}
		return dirs
	}
	t.Fatalf("no image %s in %s", ref, images)
	return nil
}

// storeLayersPresent fails the test unless every layer directory of ref
// is in the store, and returns the names under layers/.
func storeLayersPresent(t *testing.T, d *Daemon, ref string) []string {
	t.Helper()
	for _, dir := range storeLayerDirs(t, d, ref) {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("layer directory %s of %s is not there before any run: %v", filepath.Base(dir), ref, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(d.Root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestImportRootfs imports a root filesystem tar from stdin with --change
// and --message: its layer is unpacked at once (the first run adds no
// layer directory) and it runs with the CMD, ENV and WORKDIR given.
func TestImportRootfs(t *testing.T) {
	d := env.daemon
	tarball := storeRootTar(t, map[string]string{"etc/motd": "imported\n"})
	r := d.Run(string(tarball), "image", "import", "--rootfs", "-", "store-rootfs:1",
		"--change", `CMD ["sh", "-c", "echo $GREETING from $(pwd); cat /etc/motd"]`,
		"--change", "ENV GREETING=hello PATH=/bin",
		"--change", "WORKDIR /tmp",
		"--message", "made by TestImportRootfs")
	if r.Code != 0 || !strings.Contains(r.Stdout, "localhost/store-rootfs:1") {
		t.Fatalf("import --rootfs: %s", r)
	}
	before := storeLayersPresent(t, d, "localhost/store-rootfs:1")
	if out := must(t, d, "run", "--rm", "store-rootfs:1"); out != "hello from /tmp\nimported\n" {
		t.Errorf("run printed %q, want the CMD's output with its ENV and WORKDIR", out)
	}
	if after := storeLayersPresent(t, d, "localhost/store-rootfs:1"); !slices.Equal(before, after) {
		t.Errorf("the first run changed layers/: %v, then %v", before, after)
	}
	inspect := must(t, d, "image", "inspect", "store-rootfs:1")
	if !strings.Contains(inspect, "GREETING=hello") {
		t.Errorf("inspect does not show the ENV:\n%s", inspect)
	}

	// A file, the same tar compressed, a second tag: the layer is shared.
	f := filepath.Join(t.TempDir(), "root.tar")
	if err := os.WriteFile(f, tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, d, "image", "import", "--rootfs", f, "store-rootfs:2", "--change", "CMD echo plain $0")
	if out := must(t, d, "run", "--rm", "store-rootfs:2"); out != "plain /bin/sh\n" {
		t.Errorf("shell-form CMD printed %q", out)
	}

	fails(t, d, []string{`--change "RUN echo hi"`, "RUN cannot be applied", "CMD, ENTRYPOINT, ENV"},
		"image", "import", "--rootfs", f, "store-rootfs:bad", "--change", "RUN echo hi")
	fails(t, d, []string{`--change "STOPSIGNAL NOSUCH"`},
		"image", "import", "--rootfs", f, "store-rootfs:bad", "--change", "STOPSIGNAL NOSUCH")
	fails(t, d, []string{"add --rootfs"}, "image", "import", f, "--change", "CMD sh")
	fails(t, d, []string{"--rootfs takes a tar"}, "image", "import", "--rootfs", t.TempDir(), "store-rootfs:bad")
	fails(t, d, []string{"name"}, "image", "import", "--rootfs", f, "Bad:Name:x")
	if r := d.Run("", "image", "inspect", "store-rootfs:bad"); r.Code == 0 {
		t.Errorf("a refused import left an image: %s", r)
	}
}

// TestBuildUnpacksLayers builds an image with COPY and RUN layers
// (whiteouts, an opaque directory, a hard link, owners, a setuid file):
// its layers are in the store before any run, the first run unpacks
// nothing, and the stacked layer directories hold what umoci unpacks from
// the same image, mtimes of regular files included.
func TestBuildUnpacksLayers(t *testing.T) {
	for _, bin := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed (make deps-test): %v", bin, err)
		}
	}
	d := env.daemon
	work := t.TempDir()
	ctxDir := filepath.Join(work, "ctx")
	if err := os.MkdirAll(filepath.Join(ctxDir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "-x", "-C", filepath.Join(ctxDir, "rootfs"))
	cmd.Stdin = bytes.NewReader(storeRootTar(t, nil))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	for _, a := range []string{"mkdir", "rm", "ln", "chmod", "chown", "id"} {
		os.Symlink("busybox", filepath.Join(ctxDir, "rootfs", "bin", a))
	}
	os.MkdirAll(filepath.Join(ctxDir, "rootfs", "etc"), 0o755)
	os.WriteFile(filepath.Join(ctxDir, "rootfs", "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "rootfs", "etc", "group"), []byte("root:x:0:\napp:x:1000:\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "notes.txt"), []byte("copied after the RUN steps\n"), 0o644)
	df := storeBuildDockerfile + "COPY --chown=1000:1000 notes.txt /home/app/notes.txt\n"
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644)
	must(t, d, "image", "build", "-q", "-t", "store-built", ctxDir)

	ref := "localhost/store-built:latest"
	dirs := storeLayerDirs(t, d, ref)
	if len(dirs) != 5 {
		t.Fatalf("the image has %d layers, want 5 (COPY, three RUN, COPY)", len(dirs))
	}
	before := storeLayersPresent(t, d, ref)
	if out := must(t, d, "run", "--rm", "store-built", "cat", "/home/app/seen", "/home/app/notes.txt"); out != "app\ncopied after the RUN steps\n" {
		t.Errorf("run printed %q", out)
	}
	if after := storeLayersPresent(t, d, ref); !slices.Equal(before, after) {
		t.Errorf("the first run changed layers/: %v, then %v", before, after)
	}

	merged := filepath.Join(work, "merged")
	os.MkdirAll(merged, 0o755)
	lowers := slices.Clone(dirs)
	slices.Reverse(lowers)
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		t.Fatalf("mount the layers: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	layout := filepath.Join(work, "oci")
	run(t, nil, "skopeo", "copy", "oci:"+filepath.Join(d.Root, "images")+":"+ref, "oci:"+layout+":x")
	run(t, nil, "umoci", "unpack", "--image", layout+":x", filepath.Join(work, "bundle"))
	got, want := storeDescribe(t, merged), storeDescribe(t, filepath.Join(work, "bundle", "rootfs"))
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s: the store has %q, umoci %q", name, g, w)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: in the store's layers (%s), not in umoci's rootfs", name, g)
		}
	}
	for _, name := range []string{"data/b", "etc/passwd.link", "home/app/seen", "home/app/notes.txt", "bin/busybox"} {
		if got[name] == "" {
			t.Errorf("%s missing from the store's layers", name)
		}
	}
	for _, gone := range []string{"victim", "data/keep"} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s was deleted by a RUN step but shows through the layers", gone)
		}
	}
}

// storeDescribe is describeTree with the mtimes of regular files.
func storeDescribe(t *testing.T, root string) map[string]string {
	t.Helper()
	out := describeTree(t, root)
	for name, desc := range out {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err == nil && fi.Mode().IsRegular() {
			out[name] = fmt.Sprintf("%s mtime=%d", desc, fi.ModTime().Unix())
		}
	}
	return out
}

// TestImportRootfsKilled kills the daemon while it receives a root
// filesystem tar: after a restart the store holds no half layer, no
// temporary file and no blob, and the same import then succeeds.
func TestImportRootfsKilled(t *testing.T) {
	d, err := startDaemon("store-kill")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	defer d.Cleanup()

	// A tar of 64 MiB that does not compress to nothing.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, 64<<20)
	for i := range body {
		body[i] = byte(i*7 + i/4096)
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	tarball := buf.Bytes()

	pr, pw := io.Pipe()
	cmd := exec.Command(env.skiff, "--socket", d.Socket, "image", "import", "--rootfs", "-", "killed:1")
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(tarball[:len(tarball)/2])
		// Hold the rest back until the daemon is gone.
		time.Sleep(30 * time.Second)
		pw.CloseWithError(fmt.Errorf("stopped"))
	}()
	tmpLayers := func() []string {
		m, _ := filepath.Glob(filepath.Join(d.Root, "layers", ".tmp-*"))
		return m
	}
	eventually(t, 30*time.Second, "an unpack in progress under layers/.tmp-*", func() bool { return len(tmpLayers()) > 0 })
	time.Sleep(200 * time.Millisecond)
	d.Kill()
	pw.CloseWithError(fmt.Errorf("daemon killed"))
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the import succeeded although the daemon was killed: %s", out.String())
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if m := tmpLayers(); len(m) != 0 {
		t.Errorf("half layers left after the restart: %v", m)
	}
	for _, dir := range []string{filepath.Join("layers"), filepath.Join("images", "blobs", "sha256"), filepath.Join("images", ".tmp")} {
		ents, err := os.ReadDir(filepath.Join(d.Root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s holds %v after an import that never finished", dir, names)
		}
	}
	if r := d.Run(string(tarball), "image", "import", "--rootfs", "-", "killed:1", "--change", "CMD [\"/big\"]"); r.Code != 0 {
		t.Fatalf("import after the restart: %s", r)
	}
	storeLayersPresent(t, d, "localhost/killed:1")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(storeLayerDirs(t, d, "localhost/killed:1")[0], "big"), &st); err != nil || st.Size != int64(len(body)) {
		t.Errorf("the imported layer's file: size %d, %v", st.Size, err)
	}
}

// storeBuildDockerfile has RUN steps that delete files of a lower layer,
// make a directory opaque, hard-link and chmod, as a user and as root.
const storeBuildDockerfile = `FROM scratch
COPY rootfs/ /
ENV PATH=/bin
RUN mkdir -p /data/keep && echo old > /data/keep/a && echo doomed > /victim && mkdir /home && mkdir -m 0750 /home/app && chown 1000:1000 /home/app
RUN rm /victim && rm -rf /data && mkdir /data && echo new > /data/b && ln /etc/passwd /etc/passwd.link && chmod 4755 /data/b
USER app
RUN echo "$(id -un)" > /home/app/seen && chmod 0640 /home/app/seen
`
