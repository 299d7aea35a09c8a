// Package ctrfiles reaches the files of a container from the host: its
// root directory and a tar extracted into it, for docker cp and for
// compose configs put in before a container starts.
//
// Every path is resolved inside the container's root filesystem with
// openat2(RESOLVE_IN_ROOT), and every file is made or opened relative
// to a directory so resolved, by one name with O_NOFOLLOW: neither
// "..", an absolute symlink nor a symlink swapped in meanwhile reaches
// the host. A running container's root is its process's (/proc/PID/root,
// with its volumes); a stopped or created one's is its root filesystem
// directory.
package ctrfiles

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/build"
)

// Root opens the root directory of c's filesystem (O_PATH); the caller
// closes it.
func Root(c api.Container) (int, error) {
	root := filepath.Join(filepath.Dir(c.LogPath), "rootfs")
	if c.State.Status == api.StatusRunning && c.State.Pid > 0 {
		root = fmt.Sprintf("/proc/%d/root", c.State.Pid)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, errdefs.Conflict("the files of container %s cannot be reached: %v", c.Name, err)
	}
	return fd, nil
}

// OpenIn opens name inside the root rootfd with flags (O_NOFOLLOW
// applies to the last component).
func OpenIn(rootfd int, name string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(rootfd, name, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// FileMode converts a stat mode to Go's fs.FileMode.
func FileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// Extract extracts the tar r (plain, or compressed with gzip, bzip2, xz
// or zstd) into the existing directory dir of c, as docker cp does: its
// entries keep their owners, modes and times; an entry's missing parent
// directories are made (0755, root), as Docker makes them. A missing dir
// is NotFound, a file there Invalid, a bad archive Invalid.
func Extract(c api.Container, dir string, r io.Reader) error {
	rootfd, err := Root(c)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	dfd, err := OpenIn(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return errdefs.Invalid("extraction point %s in container %s is not a directory", dir, c.Name)
		}
		return errdefs.NotFound("Could not find the file %s in container %s", dir, c.Name)
	}
	defer unix.Close(dfd)
	body, err := build.Decompress(io.NopCloser(r))
	if err != nil {
		return errdefs.Invalid("the archive's compression cannot be read: %v", err)
	}
	defer body.Close()
	tr := tar.NewReader(body)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.Invalid("the archive is not a valid tar: %v", err)
		}
		if err := extractEntry(dfd, hdr, tr); err != nil {
			return err
		}
	}
}

// openParent opens the directory parent under dfd, making the missing
// ones on the way (0755, owned by root).
func openParent(dfd int, parent string) (int, error) {
	fd, err := OpenIn(dfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	cur := "/"
	for _, name := range strings.Split(strings.Trim(parent, "/"), "/") {
		pfd, err := OpenIn(dfd, cur, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, name, 0o755)
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return -1, err
		}
		cur = path.Join(cur, name)
	}
	return OpenIn(dfd, parent, unix.O_PATH|unix.O_DIRECTORY)
}

// extractEntry creates the tar entry hdr under the directory dfd: its
// parent is resolved inside dfd (RESOLVE_IN_ROOT), the entry itself is
// made there by its last name.
func extractEntry(dfd int, hdr *tar.Header, r io.Reader) error {
	name := path.Clean("/" + hdr.Name)
	if name == "/" {
		return nil
	}
	parent, base := path.Split(name)
	pfd, err := openParent(dfd, parent)
	if err != nil {
		return errdefs.Invalid("archive entry %q: its directory %s is not a directory", hdr.Name, parent)
	}
	defer unix.Close(pfd)
	mode := uint32(hdr.Mode & 0o7777)
	var f *os.File
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, mode); err != nil && err != unix.EEXIST {
			return entryError(hdr, err)
		}
		// O_NOFOLLOW: a symlink where the directory should be is refused.
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return entryError(hdr, err)
		}
		f = os.NewFile(uintptr(fd), base)
	case tar.TypeReg:
		unix.Unlinkat(pfd, base, 0)
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err != nil {
			return entryError(hdr, err)
		}
		f = os.NewFile(uintptr(fd), base)
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return entryError(hdr, err)
		}
	case tar.TypeSymlink:
		unix.Unlinkat(pfd, base, 0)
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return entryError(hdr, err)
		}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr, err)
		}
		return nil
	default:
		return errdefs.Invalid("archive entry %q: only files, directories and symlinks can be copied into a container (hard links, devices and FIFOs are not)", hdr.Name)
	}
	// Owner, mode and times go to the file opened, never through a name.
	defer f.Close()
	if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
		return entryError(hdr, err)
	}
	if err := f.Chmod(FileMode(mode)); err != nil {
		return entryError(hdr, err)
	}
	os.Chtimes(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), hdr.ModTime, hdr.ModTime)
	return nil
}

func entryError(hdr *tar.Header, err error) error {
	return errdefs.Invalid("archive entry %q: %v", hdr.Name, err)
}
