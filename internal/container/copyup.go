package container

import (
	"context"
	"errors"
	"os"
	"strconv"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
	"skiff.dev/skiff/internal/inroot"
)

// fillVolume copies the directory target of the container's root
// filesystem into the empty volume directory dst, with owners, modes and
// symlinks, as Docker fills a new volume mounted over a directory of the
// image. The directory itself gives dst its owner and mode. Nothing is
// copied when target is not a directory of the image. The root is not
// running yet and holds only the image's files; target is resolved
// inside it, and symlinks below it are copied, never followed.
func fillVolume(rootfs, target, dst string) error {
	d, err := inroot.OpenDir(rootfs, target)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	// The trailing slash makes Lstat and WalkDir go through the magic link.
	src := "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/"
	return fsutil.CopyTree(context.Background(), src, dst)
}

// isEmptyDir reports whether dir has no entries.
func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}
