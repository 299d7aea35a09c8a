package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// PreparedLayer is a layer whose maker has already unpacked it, as a
// build has: the store moves the directory into place rather than unpack
// the layer's tar a second time. Layers without it are unpacked from
// their blobs.
type PreparedLayer interface {
	v1.Layer
	// UnpackedDir returns a directory in the format of the store's layer
	// directories (overlay whiteouts and opaque directories, no device
	// nodes, trusted.overlay.* xattrs other than opaque ignored) holding
	// exactly the content of the layer's tar, which has no root entry of
	// its own; "" when there is none. The store may rename it, so it must
	// be on the file system of the store's root and belong to no one
	// else once the layer is handed over.
	UnpackedDir() string
}

// preparedDirs returns, per layer of img (bottom first), the directory a
// PreparedLayer offers, or "".
func preparedDirs(img v1.Image) []string {
	ls, err := img.Layers()
	if err != nil {
		return nil
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		if p, ok := l.(PreparedLayer); ok {
			out[i] = p.UnpackedDir()
		}
	}
	return out
}

// unpackAll makes sure every layer of the image meta describes is
// unpacked under its chain ID, moving the prepared directories into
// place (prepared[i] for layer i, "" or missing for none) and unpacking
// the others from their blobs. It pins the layer directories in pins, so
// they stay until the image is in the index. The caller has pinned the
// blobs.
func (s *Store) unpackAll(ctx context.Context, meta *imageMeta, prepared []string, pins *pinSet) error {
	keys := make([]string, len(meta.chains))
	for i, c := range meta.chains {
		keys[i] = layerKey(c.Hex)
	}
	pins.add(keys...)
	b := &budget{left: s.maxImageSize, over: s.tooLarge("the image's decompressed layer data")}
	dirs := make([]string, len(meta.chains))
	for i, c := range meta.chains {
		dirs[i] = filepath.Join(s.layersDir, c.Hex)
		prep := ""
		if i < len(prepared) {
			prep = prepared[i]
		}
		if err := s.ensureLayer(ctx, meta, i, dirs[:i], b, prep); err != nil {
			return err
		}
	}
	return nil
}

// adoptLayer moves the prepared directory src into place as dir, the
// layer above parent ("" for the bottom one): renamed to layers/.tmp-*,
// given the image root's attributes (see setLayerRoot), synced and
// renamed to dir. On error src may be gone, but no directory is left
// under layers/.
func (s *Store) adoptLayer(src, dir, parent string) (err error) {
	tmp, err := os.MkdirTemp(s.layersDir, tmpPrefix)
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// rename(2) replaces an empty directory (os.Rename refuses to).
	if err := unix.Rename(src, tmp); err != nil {
		return fmt.Errorf("move %s into the store: %w", src, err)
	}
	if err := unix.Lchown(tmp, 0, 0); err != nil {
		return err
	}
	if err := unix.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := unix.Lremovexattr(tmp, rootMarkXattr); err != nil && err != unix.ENODATA && err != unix.ENOTSUP {
		return fmt.Errorf("clear the layer root: %w", err)
	}
	if err := setLayerRoot(tmp, parent, nil); err != nil {
		return err
	}
	if err := syncFS(tmp); err != nil {
		return fmt.Errorf("sync layer: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return syncDir(s.layersDir)
}
