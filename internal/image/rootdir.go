package image

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/image/unpack"
)

// rootMarkXattr marks a layer directory whose owner, mode and times came
// from a layer's root entry ("./"), its own or one of a layer below it.
// Without the mark the directory holds the default, 0755 owned by 0:0.
const rootMarkXattr = "trusted.skiff.root"

// setLayerRoot gives the unpacked layer directory dir the owner, mode and
// times of the image root as of this layer, so that the top layer of an
// image always holds them (see the package documentation): those of the
// layer below, parent ("" for the bottom layer), when a root entry set
// them there; else those of root, this layer's own root entry; else the
// default. dir must already have the default mode and owner.
func setLayerRoot(dir, parent string, root *unpack.RootEntry) error {
	if parent != "" {
		marked, err := hasRootMark(parent)
		if err != nil {
			return err
		}
		if marked || root == nil {
			return copyRoot(dir, parent, marked)
		}
	}
	if root == nil {
		return nil
	}
	if err := unix.Lchown(dir, root.UID, root.GID); err != nil {
		return fmt.Errorf("set the owner of the layer root: %w", err)
	}
	if err := unix.Chmod(dir, root.Mode); err != nil {
		return fmt.Errorf("set the mode of the layer root: %w", err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(root.AccessTime.UnixNano()), unix.NsecToTimespec(root.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set the times of the layer root: %w", err)
	}
	return mark(dir)
}

// copyRoot gives dir the owner, mode and times of parent, and its mark.
func copyRoot(dir, parent string, marked bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(parent, &st); err != nil {
		return fmt.Errorf("read the root of the layer below: %w", err)
	}
	if err := unix.Lchown(dir, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("set the owner of the layer root: %w", err)
	}
	if err := unix.Chmod(dir, st.Mode&0o7777); err != nil {
		return fmt.Errorf("set the mode of the layer root: %w", err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set the times of the layer root: %w", err)
	}
	if !marked {
		return nil
	}
	return mark(dir)
}

// mark marks dir. A file system without trusted xattrs cannot hold the
// mark: the layers above then take their own root entries into account.
func mark(dir string) error {
	if err := unix.Lsetxattr(dir, rootMarkXattr, []byte("1"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("mark the layer root: %w", err)
	}
	return nil
}

func hasRootMark(dir string) (bool, error) {
	_, err := unix.Lgetxattr(dir, rootMarkXattr, make([]byte, 8))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return false, nil
	}
	return false, fmt.Errorf("read the root of the layer below %s: %w", dir, err)
}
