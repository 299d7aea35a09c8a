package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

// TestImportRootfs imports a compressed root filesystem tar: the image
// has one layer, the given config and the tar's root mode, and its layer
// is unpacked before any Resolve.
func TestImportRootfs(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	raw := imagetest.Tar(t,
		imagetest.File{Name: "./", Type: tar.TypeDir, Mode: 0o750},
		imagetest.File{Name: "etc/", Type: tar.TypeDir},
		imagetest.File{Name: "etc/os-release", Body: "ID=test\n"},
	)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	img, err := s.ImportRootfs(ctx, &gz, RootfsImport{Ref: "rootfs:1", Config: v1.Config{Cmd: []string{"sh"}}, Message: "from a tar"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Tags, []string{"localhost/rootfs:1"}) {
		t.Errorf("tags = %v", img.Tags)
	}
	if n := len(layerNames(t, root)); n != 1 {
		t.Fatalf("%d layer directories after the import, want 1", n)
	}
	r, err := s.Resolve(ctx, "rootfs:1")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.unpacks.Load(); n != 0 {
		t.Errorf("Resolve unpacked %d layers, want none: the import did", n)
	}
	if len(r.Layers) != 1 || !slices.Equal(r.Config.Config.Cmd, []string{"sh"}) || r.Config.History[0].Comment != "from a tar" {
		t.Fatalf("resolved %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(r.Layers[0], "etc", "os-release")); err != nil || string(b) != "ID=test\n" {
		t.Errorf("etc/os-release: %q %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(r.Layers[0], &st); err != nil || st.Mode&0o7777 != 0o750 {
		t.Errorf("layer root mode %o (%v), want 750 from the tar's ./", st.Mode&0o7777, err)
	}
	// The layer's diff ID is the digest of the tar as given.
	if got := r.Config.RootFS.DiffIDs[0]; got != digestBytes(raw) {
		t.Errorf("diff ID %s, want %s", got, digestBytes(raw))
	}
}

// TestImportRootfsRefusesBadTar: a tar with an entry that escapes leaves
// no layer directory, blob or index entry behind.
func TestImportRootfsRefusesBadTar(t *testing.T) {
	s, root := newStore(t)
	before := indexJSON(t, root)
	raw := imagetest.Tar(t, imagetest.File{Name: "ok", Body: "x"}, imagetest.File{Name: "../../escape", Body: "x"})
	_, err := s.ImportRootfs(context.Background(), bytes.NewReader(raw), RootfsImport{Ref: "bad"})
	if !errors.Is(err, errdefs.ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte("../../escape")) {
		t.Fatalf("got %v, want an ErrInvalid error naming the entry", err)
	}
	if n := layerNames(t, root); len(n) != 0 {
		t.Errorf("layers/ holds %v", n)
	}
	if n := blobNames(t, root); len(n) != 0 {
		t.Errorf("blobs left: %v", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "images", tmpDirName)); len(ents) != 0 {
		t.Errorf("temporary files left: %d", len(ents))
	}
	if !bytes.Equal(before, indexJSON(t, root)) {
		t.Error("index.json changed")
	}
	if _, err := s.ImportRootfs(context.Background(), bytes.NewReader(nil), RootfsImport{Ref: "Bad Name"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a bad name: got %v, want ErrInvalid", err)
	}
}

// TestSaveUnpacks: Save unpacks an image's layers, so Resolve has nothing
// to do, and refuses an image with a bad layer, leaving nothing behind.
func TestSaveUnpacks(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	save(t, s, imagetest.BusyboxImage(t), "busybox")
	if n := len(layerNames(t, root)); n != 1 {
		t.Fatalf("%d layer directories after Save, want 1", n)
	}
	if _, err := s.Resolve(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	if n := s.unpacks.Load(); n != 1 {
		t.Errorf("%d unpacks in all, want the one of Save", n)
	}
	bad := imagetest.Image(t, v1.Config{}, imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "../escape", Body: "x"})))
	blobs := blobNames(t, root)
	if _, err := s.Save(ctx, bad, "bad"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Save of a bad layer: %v, want ErrInvalid", err)
	}
	if got := blobNames(t, root); !slices.Equal(got, blobs) {
		t.Errorf("blobs %v after the refused Save, want %v", got, blobs)
	}
	if _, err := s.Inspect(ctx, "bad"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the refused image is listed: %v", err)
	}
}

// preparedLayer offers a directory holding its content.
type preparedLayer struct {
	v1.Layer
	dir string
}

func (p preparedLayer) UnpackedDir() string { return p.dir }

// TestSaveAdoptsPreparedLayer: a layer that comes unpacked is moved into
// place, not unpacked again, and gets the image root's attributes.
func TestSaveAdoptsPreparedLayer(t *testing.T) {
	s, root := newStore(t)
	l := imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "hello", Body: "hi"}))
	dir := filepath.Join(root, "prepared")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	save(t, s, imagetest.Image(t, v1.Config{}, preparedLayer{l, dir}), "prepared")
	if n := s.unpacks.Load(); n != 0 || s.adopted.Load() != 1 {
		t.Fatalf("%d unpacks, %d adopted; want 0 and 1", n, s.adopted.Load())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the prepared directory is still there: %v", err)
	}
	r, err := s.Resolve(context.Background(), "prepared")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Layers[0], "hello")); string(b) != "hi" {
		t.Errorf("hello = %q", b)
	}
	if fi, err := os.Stat(r.Layers[0]); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("layer root %v %v, want mode 755", fi.Mode(), err)
	}
}
