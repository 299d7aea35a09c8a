package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// umociLayers are the layers of the image compared with umoci, bottom
// first: files, directories, symlinks, hardlinks (within a layer and to
// lower layers), a fifo, setuid and capabilities, then whiteouts of files
// and directories, opaque directories, and types replacing each other
// across layers.
func umociLayers() [][]byte {
	return [][]byte{
		tarOf(
			dir("bin/"), dir("etc/"), dir("usr/"), dir("usr/bin/"), dir("opq/"), dir("opq/sub/"), dir("del/"),
			with(dir("tmp/"), mode(0o1777)), dir("home/"),
			with(dir("home/user/"), func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o700, 1000, 1000 }),
			with(reg("home/user/.profile", "PS1=$ "), func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o600, 1000, 1000 }),
			with(reg("bin/busybox", "busybox binary"), mode(0o755)),
			sym("bin/sh", "busybox"),
			sym("usr/bin/env", "/bin/busybox"),
			hard("usr/bin/hl", "bin/busybox"),
			with(reg("usr/bin/su", "su binary"), mode(0o4755)),
			with(reg("bin/ping", "ping binary"), func(h *tar.Header) {
				h.Mode = 0o755
				xattrs("security.capability", capNetRaw())(h)
			}),
			reg("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), reg("etc/hosts", "127.0.0.1 localhost\n"),
			reg("opq/a", "a"), reg("opq/sub/b", "b"), reg("del/x", "x"), reg("del/y", "y"), reg("gone", "gone"),
			with(dev("fifo", tar.TypeFifo, 0, 0), mode(0o600)),
			with(reg("big", strings.Repeat("0123456789abcdef", 1<<14)), mode(0o640)),
			dir("keep/"), reg("keep/x", "x"), reg("keep/y", "y"), dir("opq2/"), reg("opq2/old", "old"),
			dir("opq2/sub/"), reg("opq2/sub/deeper", "d"),
		),
		tarOf(
			reg(".wh.gone", ""),
			dir("del/"), reg("del/.wh.x", ""),
			dir("opq/"), reg("opq/.wh..wh..opq", ""), reg("opq/new", "new"),
			dir("etc/"), reg("etc/hosts", "10.0.0.1 db\n"),
			dir("usr/"), dir("usr/bin/"), hard("usr/bin/hl2", "etc/passwd"),
			with(reg("usr/bin/su", "su binary"), mode(0o755)),
			dir("bin/"), reg("bin/sh", "now a file"),
			dir("newdir/"), reg("newdir/f", "f"),
			with(reg("fifo", "no longer a fifo"), mode(0o644)),
			dir("keep/"), reg("keep/.wh.x", ""),
			with(dir("opq2/"), mode(0o750)), reg("opq2/.wh..wh..opq", ""), reg("opq2/fresh", "fresh"),
			dir("opq2/sub/"), reg("opq2/sub/other", "o"),
		),
		tarOf(
			dir("home/"), reg("home/.wh.user", ""),
			reg(".wh.del", ""),
			reg(".wh.opq", ""), dir("opq/"), reg("opq/again", "again"),
			dir("etc/"), with(reg("etc/passwd", "root:x:0:0::/root:/bin/ash\n"), mode(0o600)),
			dir("var/"), dir("var/log/"),
			dir("bin/"), sym("bin/sh", "busybox"),
			dir("usr/"), dir("usr/bin/"), hard("usr/bin/hl3", "usr/bin/hl"),
		),
	}
}

// TestMatchesUmoci unpacks one multi-layer image with umoci and with
// Apply (each layer in its own directory, stacked as a read-only overlay)
// and compares the two trees.
func TestMatchesUmoci(t *testing.T) {
	requireRoot(t)
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Fatal("umoci is not installed: make deps-test installs it (Debian package umoci)")
	}
	layers := umociLayers()
	for n := 1; n <= len(layers); n++ {
		t.Run(fmt.Sprintf("layers=%d", n), func(t *testing.T) {
			compareWithUmoci(t, umoci, layers[:n])
		})
	}
}

// compareWithUmoci unpacks the image made of layers (bottom first) with
// umoci and with Apply and compares the trees.
func compareWithUmoci(t *testing.T, umoci string, layers [][]byte) {
	work := t.TempDir()

	// The reference: umoci unpacks an OCI layout holding the image.
	img, err := ociImage(layers)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(work, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "test"})); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(work, "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", filepath.Join(work, "layout")+":test", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}

	// Apply: one directory per layer, lowers top first. Overlayfs wants
	// two lowerdirs at least when it has no upperdir: an empty one is
	// put at the bottom.
	dirs := []string{filepath.Join(work, "empty")}
	if err := os.Mkdir(dirs[0], 0o755); err != nil {
		t.Fatal(err)
	}
	for i, data := range layers {
		d := filepath.Join(work, fmt.Sprintf("layer%d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(context.Background(), d, bytes.NewReader(data), Options{Lowers: dirs[:i]}); err != nil {
			t.Fatalf("apply layer %d: %v", i, err)
		}
		dirs = append([]string{d}, dirs...)
	}
	merged := filepath.Join(work, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Fatalf("mount the layers as an overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})

	want := comparable(treeLines(t, filepath.Join(bundle, "rootfs")))
	got := comparable(treeLines(t, merged))
	if len(want) < 20 {
		t.Fatalf("umoci's tree has only %d nodes:\n%s", len(want), strings.Join(want, "\n"))
	}
	if d := diffLines(want, got); d != "" {
		t.Errorf("the overlay of the unpacked layers differs from umoci's rootfs (missing: in umoci only):%s", d)
	}
	t.Logf("%d nodes match:\n%s", len(got), strings.Join(got, "\n"))
}

// linkCount matches the link count in a tree line: hardlinks to lower
// layers are copies in an overlay, so counts differ from a flat rootfs.
var linkCount = regexp.MustCompile(` links=\d+`)

func comparable(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = linkCount.ReplaceAllString(l, "")
	}
	return out
}

// ociImage builds an OCI image (OCI media types throughout) from
// uncompressed layer tars.
func ociImage(layers [][]byte) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{Cmd: []string{"/bin/sh"}},
	})
	if err != nil {
		return nil, err
	}
	for _, data := range layers {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer}); err != nil {
			return nil, err
		}
	}
	return img, nil
}
