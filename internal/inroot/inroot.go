// Package inroot reads files inside a directory tree that someone else
// controls: an image's or a container's root filesystem, or an uploaded
// build context.
//
// The contract: a name is resolved with openat2(RESOLVE_IN_ROOT), so
// neither ".." nor a symlink (absolute or relative) leaves the root, and
// magic links (/proc/self/fd/N) are refused. Symlinks inside the root are
// followed, as the kernel would inside a container: images often make
// /etc/resolv.conf or a Dockerfile a link to another file of their own.
// The file found is first opened with O_PATH and must be a regular file
// of at most the caller's limit before it is opened for reading, so a
// FIFO, a socket or a device is never opened (nothing can block, and no
// device sees an open); the read is also bounded, in case the file grows
// between the check and the read.
//
// Errors name the file as the caller gave it, never the root's host path
// (which holds internal identifiers): a missing file is ErrNotFound (and
// matches fs.ErrNotExist), a file that is not regular or is too large is
// ErrInvalid. The caller adds what the file is for and how to fix it.
package inroot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/units"
)

// resolve keeps every lookup inside the root.
const resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Open opens the regular file name for reading. name is slash separated
// and taken relative to root even when it starts with "/": write
// "/etc/passwd" for a root filesystem, "Dockerfile" for a build context.
// It refuses anything but a regular file of at most limit bytes (limit <
// 0: no bound). The caller closes the file and should read at most limit
// bytes from it.
func Open(root, name string, limit int64) (*os.File, error) {
	shown := display(name)
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the root holding %s: %w", shown, err)
	}
	defer unix.Close(dir)
	pfd, err := openat2(dir, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, openError(shown, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", shown, err)
	}
	if err := check(shown, &st, limit); err != nil {
		return nil, err
	}
	// Reopen the very inode checked above, not the name again (which may
	// have changed since); without /proc, the name. O_NONBLOCK and
	// O_NOCTTY guard the open should the file ever differ, and the
	// identity check below refuses it then.
	const flags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), flags, 0)
	if errors.Is(err, unix.ENOENT) {
		fd, err = openat2(dir, name, &unix.OpenHow{Flags: flags, Resolve: resolve})
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", shown, err)
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		unix.Close(fd)
		return nil, errdefs.Unavailable("open %s: the file changed while it was opened; try again", shown)
	}
	return os.NewFile(uintptr(fd), shown), nil
}

// ReadFile reads the regular file name inside root, of at most limit
// bytes, with the refusals of Open.
func ReadFile(root, name string, limit int64) ([]byte, error) {
	f, err := Open(root, name, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", display(name), err)
	}
	if limit >= 0 && int64(len(data)) > limit {
		return nil, tooLarge(display(name), limit)
	}
	return data, nil
}

// Exists reports whether name is an entry of root, looked up as Open
// does but without following a final symlink and whatever its type.
func Exists(root, name string) bool {
	fd, err := openEntry(root, name)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Readlink returns the target of the symlink name inside root, looked up
// as Exists does; ok is false when name is not a symlink there.
func Readlink(root, name string) (target string, ok bool) {
	fd, err := openEntry(root, name)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// openEntry opens name inside root with O_PATH, not following a final
// symlink.
func openEntry(root, name string) (int, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	return openat2(dir, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolve})
}

// openat2 retries the transient failures of a RESOLVE_IN_ROOT lookup.
func openat2(dir int, name string, how *unix.OpenHow) (int, error) {
	for range 16 {
		fd, err := unix.Openat2(dir, name, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			// EAGAIN: a rename elsewhere made the kernel give up; try again.
			continue
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}

func openError(shown string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errdefs.WithCategory(errdefs.ErrNotFound, fmt.Errorf("%s does not exist: %w", shown, fs.ErrNotExist))
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.WithCategory(errdefs.ErrNotFound, fmt.Errorf("%s does not exist (a parent is not a directory): %w", shown, fs.ErrNotExist))
	case errors.Is(err, unix.ELOOP):
		return errdefs.Invalid("%s: too many levels of symbolic links", shown)
	case errors.Is(err, unix.EXDEV):
		return errdefs.Invalid("%s: a symlink on the way is a magic link (under /proc), which is refused", shown)
	case errors.Is(err, unix.ENOSYS):
		return errdefs.NotImplemented("open %s: the kernel lacks openat2; Linux 5.6 or later is needed to read files inside a root safely", shown)
	}
	return fmt.Errorf("open %s: %w", shown, err)
}

// check refuses what is not a regular file of at most limit bytes.
func check(shown string, st *unix.Stat_t, limit int64) error {
	if kind := fileKind(st.Mode); kind != "" {
		return errdefs.Invalid("%s is %s, not a regular file", shown, kind)
	}
	if limit >= 0 && st.Size > limit {
		return tooLarge(shown, limit)
	}
	return nil
}

func tooLarge(shown string, limit int64) error {
	return errdefs.Invalid("%s is larger than the limit of %s", shown, units.Bytes(limit))
}

// fileKind names the type of a file that is not regular, or "".
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a named pipe (FIFO)"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "of an unknown type"
}

// display is name as messages show it: as the caller wrote it, cleaned.
func display(name string) string { return path.Clean(name) }

// OpenDir opens the directory name inside root for reading, resolved as
// Open resolves names. A missing name, or one that is not a directory, is
// ErrNotFound.
func OpenDir(root, name string) (*os.File, error) {
	shown := display(name)
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the root holding %s: %w", shown, err)
	}
	defer unix.Close(dir)
	fd, err := openat2(dir, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolve})
	if errors.Is(err, unix.ENOTDIR) {
		return nil, errdefs.NotFound("%s is not a directory", shown)
	}
	if err != nil {
		return nil, openError(shown, err)
	}
	return os.NewFile(uintptr(fd), shown), nil
}
