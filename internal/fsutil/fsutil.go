// Package fsutil holds the file system helpers the daemon's packages
// share: writing a file atomically, and copying a directory tree with
// its owners, modes and times.
package fsutil

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// TempPrefix starts the names of the temporary files WriteFileAtomic
// makes, so that a caller cleaning up after a crash can find them.
const TempPrefix = ".tmp-"

// WriteFileAtomic writes data to path with mode perm through a temporary
// file in the same directory (TempPrefix + the file's name + a random
// suffix) renamed into place: readers see the old content or the new,
// never a mix. With durable, the file is synced before the rename and
// the directory after it, so a crash also leaves the old or the new
// content; without, the write costs no disk flush.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir flushes a directory's entries to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CopyTree copies the directory tree src into the existing directory dst:
// directories, regular files and symbolic links (copied, never followed)
// with their owners, modes (setuid, setgid and sticky bits included) and
// modification times; dst takes src's own owner, mode and times. Device
// nodes, FIFOs and sockets are left out. It stops when ctx is done.
func CopyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no owner", rel)
		}
		switch {
		case fi.IsDir():
			if rel != "." {
				err = os.Mkdir(to, 0o700)
			}
		case fi.Mode().IsRegular():
			err = copyFile(p, to)
		case fi.Mode()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(p); err == nil {
				err = os.Symlink(target, to)
			}
		default:
			return nil // devices, FIFOs and sockets are left out
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil
		}
		if err := os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
}

func copyFile(from, to string) error {
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
