package e2e

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// debianRoot is a Debian bookworm root filesystem tarball with PostgreSQL
// 15, made once by mmdebstrap and shared by the tests that need it.
var debianRoot struct {
	once sync.Once
	path string
	err  error
}

// debianRootfs returns the path of the tarball, under env.tmp. It reaches
// Debian's archive and takes a minute or more. The tarball keeps what
// root filesystem tarballs usually hold (a "./" entry, dev/console,
// dev/null...); documentation, translations and LLVM (which PostgreSQL
// loads only for JIT compilation) are left out to keep it small.
func debianRootfs(t *testing.T) string {
	t.Helper()
	debianRoot.once.Do(func() {
		out := filepath.Join(env.tmp, "debian-postgresql.tar")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// Removing files at the end is much faster than dpkg path-exclude
		// options, which mmdebstrap applies through a filter per package.
		cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=minbase", "--include=postgresql-15",
			`--customize-hook=rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/locale "$1"/usr/lib/*/libLLVM* "$1"/usr/lib/*/libz3*`,
			"bookworm", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			debianRoot.err = fmt.Errorf("mmdebstrap: %v\n%s", err, b)
			return
		}
		debianRoot.path = out
	})
	if debianRoot.err != nil {
		t.Fatal(debianRoot.err)
	}
	return debianRoot.path
}

// TestDebianRootfs runs a real Debian root, with PostgreSQL, as a user
// would bring it: built with ADD rootfs.tar / and imported as an OCI
// layout whose one layer is the tarball as mmdebstrap made it. Non-root
// users must be able to read / and run dynamically linked programs, and
// the device nodes of the tarball must not stop the image.
func TestDebianRootfs(t *testing.T) {
	rootfs := debianRootfs(t)
	d := env.daemon

	ctxDir := filepath.Join(env.tmp, "debian-build")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(rootfs, filepath.Join(ctxDir, "rootfs.tar")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := d.Run("", "image", "build", "-t", "debian-pg-built", ctxDir)
	if r.Code != 0 {
		t.Fatalf("build: %s", r)
	}
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "device nodes (the first dev/console)") {
		t.Errorf("the build does not say it left the device nodes out:\n%s", out)
	}

	layoutDir := filepath.Join(env.tmp, "debian-layout")
	writeRootfsLayout(t, layoutDir, rootfs, "localhost/debian-pg-imported:latest")
	must(t, d, "image", "import", layoutDir)

	// The same root without device nodes and with / at 0775: the
	// container's / takes the mode of the image's.
	nodev := filepath.Join(env.tmp, "debian-nodev.tar")
	rewriteRootfs(t, rootfs, nodev, 0o775)
	nodevLayout := filepath.Join(env.tmp, "debian-nodev-layout")
	writeRootfsLayout(t, nodevLayout, nodev, "localhost/debian-pg-nodev:latest")
	must(t, d, "image", "import", nodevLayout)

	for img, root := range map[string]string{
		"debian-pg-built":    "drwxr-xr-x root:root\n", // ADD does not change /
		"debian-pg-imported": "drwxr-xr-x root:root\n", // mmdebstrap's ./
		"debian-pg-nodev":    "drwxrwxr-x root:root\n",
	} {
		t.Run(img, func(t *testing.T) { checkDebianImage(t, d, img, root) })
	}
	// The store skipped the imported layer's device nodes and said so once.
	logb, err := os.ReadFile(d.Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logb), "the layer holds device nodes"); n != 1 || !strings.Contains(string(logb), "first=dev/console") {
		t.Errorf("the daemon log has %d warnings about the device nodes, want 1 naming dev/console", n)
	}
}

// checkDebianImage runs the checks of TestDebianRootfs on one image whose
// root directory stat shows as root ("drwxr-xr-x root:root\n").
func checkDebianImage(t *testing.T, d *Daemon, img, root string) {
	checks := []struct {
		name string
		args []string
		want []string // each must be in the output
	}{
		{"root mode", []string{"stat", "-c", "%A %U:%G", "/"}, []string{root}},
		{"uid 1000 lists /", []string{"-u", "1000", "ls", "/"}, []string{"etc\n", "usr\n"}},
		{"uid 1000 runs a dynamic program", []string{"-u", "1000", "sh", "-c", "id -u; ls -l /usr/lib/postgresql/15/bin/postgres >/dev/null && echo listed"},
			[]string{"1000\nlisted\n"}},
		{"postgres user", []string{"-u", "postgres", "ls", "/usr/lib"}, []string{"postgresql\n"}},
		{"su", []string{"su", "postgres", "-s", "/bin/sh", "-c", "id -un; cat /etc/debian_version >/dev/null && echo read"}, []string{"postgres\nread\n"}},
		{"su to a login shell", []string{"su", "-", "postgres", "-c", "echo $HOME"}, []string{"/var/lib/postgresql\n"}},
		{"own /dev", []string{"sh", "-c", "test -c /dev/null && echo ok"}, []string{"ok\n"}},
		{"postgres runs as its user", []string{"-u", "postgres", "timeout", "90", "sh", "-ec", postgresScript}, []string{"postgres|2\n"}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var args []string
			if c.args[0] == "-u" {
				args = append([]string{"run", "--rm", "-u", c.args[1], img}, c.args[2:]...)
			} else {
				args = append([]string{"run", "--rm", img}, c.args...)
			}
			r := d.Run("", args...)
			if r.Code != 0 {
				t.Fatalf("skiff %s: %s", strings.Join(args, " "), r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("skiff %s: output lacks %q: %s", strings.Join(args, " "), w, r)
				}
			}
		})
	}
}

// postgresScript makes a database cluster, starts PostgreSQL on a unix
// socket, queries it and stops it.
const postgresScript = `B=/usr/lib/postgresql/15/bin
$B/initdb -D /tmp/db >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
$B/pg_ctl -D /tmp/db -l /tmp/db.log -o "-k /tmp -c listen_addresses=" -w -t 60 start >/dev/null || { cat /tmp/db.log; exit 1; }
$B/psql -h /tmp -d postgres -Atc "select current_user, 1 + 1"
$B/pg_ctl -D /tmp/db -m fast -w stop >/dev/null
`

// rewriteRootfs copies the tarball src to dst without its device nodes
// and with mode for its root entry.
func rewriteRootfs(t *testing.T, src, dst string, mode int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	rooted := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock:
			continue
		case h.Name == "./":
			h.Mode, rooted = mode, true
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !rooted {
		t.Fatalf("%s has no ./ entry", src)
	}
}

// writeRootfsLayout writes an OCI image layout at dir whose one image,
// tagged ref, has the root filesystem tarball as its only, uncompressed,
// layer (linked, not copied).
func writeRootfsLayout(t *testing.T, dir, rootfs, ref string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	layer := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	if err := os.Link(rootfs, filepath.Join(blobs, layer.Hex)); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	blob := func(v any) v1.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		d := v1.Descriptor{Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}}
		if err := os.WriteFile(filepath.Join(blobs, d.Digest.Hex), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := blob(v1.ConfigFile{
		Architecture: runtime.GOARCH, OS: "linux",
		Config: v1.Config{Cmd: []string{"bash"}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{layer}},
	})
	cfg.MediaType = types.OCIConfigJSON
	man := blob(v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg,
		Layers: []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Size: size, Digest: layer}},
	})
	man.MediaType = types.OCIManifestSchema1
	man.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{man}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}
