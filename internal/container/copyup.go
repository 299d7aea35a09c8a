package container

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"skiff.dev/skiff/api/errdefs"
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
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no owner", rel)
		}
		switch {
		case rel == ".":
			// dst exists: take the directory's owner and mode below.
		case st.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		case st.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, to); err != nil {
				return err
			}
			return os.Lchown(to, int(sys.Uid), int(sys.Gid))
		case st.Mode().IsRegular():
			if err := copyRegular(p, to); err != nil {
				return err
			}
		default:
			return nil // devices, FIFOs and sockets are left out
		}
		if err := os.Lchown(to, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
		return os.Chmod(to, st.Mode().Perm()|st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	})
}

func copyRegular(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", to, err)
	}
	return out.Close()
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
