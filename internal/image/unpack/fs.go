package unpack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// resolveFlags keep a lookup below its starting directory and refuse
// every symlink on the way, the last component included.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openBeneath opens the directory rel below dirfd without following any
// symlink. A symlink on the way fails with ELOOP, a non-directory with
// ENOTDIR.
func openBeneath(dirfd int, rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: resolveFlags,
	}
	for range 16 {
		fd, err := unix.Openat2(dirfd, rel, how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			// EAGAIN: a concurrent rename elsewhere on the system made the
			// kernel give up a RESOLVE_BENEATH lookup; try again.
			continue
		case errors.Is(err, unix.ENOSYS):
			return -1, errNoOpenat2
		}
		return -1, err
	}
	return -1, unix.EAGAIN
}

var errNoOpenat2 = errdefs.NotImplemented("unpack layer: the kernel lacks openat2; Linux 5.6 or later is needed to unpack layers safely")

// parentDir returns a descriptor of the directory rel ("" for the root),
// creating missing directories. The descriptor stays owned by u and is
// valid until the next call.
func (u *unpacker) parentDir(rel string) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if u.cacheFD >= 0 && u.cacheRel == rel {
		return u.cacheFD, nil
	}
	fd, err := u.openDir(rel)
	if err != nil {
		return -1, err
	}
	u.dropCache()
	u.cacheRel, u.cacheFD = rel, fd
	return fd, nil
}

func (u *unpacker) dropCache() {
	if u.cacheFD >= 0 {
		unix.Close(u.cacheFD)
	}
	u.cacheRel, u.cacheFD = "", -1
}

// openDir opens the directory rel below the root, creating it and its
// missing parents, and returns a descriptor the caller closes.
func (u *unpacker) openDir(rel string) (int, error) {
	fd, err := openBeneath(u.root, rel)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ELOOP) &&
		!errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ENAMETOOLONG) {
		return -1, err
	}
	// Walk one component at a time: to create what is missing, to name the
	// component at fault, and to stay under PATH_MAX in deep trees.
	fd, err = unix.FcntlInt(uintptr(u.root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	end := 0
	for end < len(rel) {
		next := strings.IndexByte(rel[end:], '/')
		if next < 0 {
			next = len(rel)
		} else {
			next += end
		}
		name, sofar := rel[end:next], rel[:next]
		child, err := u.stepDir(fd, name, sofar)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd, end = child, next+1
	}
	return fd, nil
}

// stepDir opens the directory name in pfd, creating it when missing. sofar
// is its path from the root, for messages.
func (u *unpacker) stepDir(pfd int, name, sofar string) (int, error) {
	fd, err := openBeneath(pfd, name)
	if err == nil {
		return fd, nil
	}
	opaque := false
	switch {
	case errors.Is(err, unix.ENOENT):
	case errors.Is(err, unix.ELOOP):
		return -1, refuse("the path goes through the symlink %q", sofar)
	case errors.Is(err, unix.ENOTDIR):
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, err
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			return -1, refuse("the path goes through the symlink %q", sofar)
		case !isWhiteout(&st):
			return -1, refuse("the path goes through %q, which is not a directory", sofar)
		}
		// The layer deleted this path, then puts something below it: the
		// directory is new, so it must hide what lower layers hold there.
		if err := unix.Unlinkat(pfd, name, 0); err != nil {
			return -1, err
		}
		opaque = true
	default:
		return -1, err
	}
	if err := unix.Mkdirat(pfd, name, 0o755); err != nil {
		return -1, err
	}
	fd, err = openBeneath(pfd, name)
	if err != nil {
		return -1, err
	}
	// Mode and owner do not depend on the umask or a setgid parent.
	err = unix.Fchown(fd, 0, 0)
	if err == nil {
		err = unix.Fchmod(fd, 0o755)
	}
	if err == nil && opaque {
		err = unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// isWhiteout reports whether st is an overlayfs whiteout: a character
// device 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// removeAt removes the node name in pfd, a directory with its contents.
// rel is its path from the root. A missing node is not an error.
func (u *unpacker) removeAt(pfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if !isDir(&st) {
		return unix.Unlinkat(pfd, name, 0)
	}
	if u.cacheFD >= 0 && isUnder(u.cacheRel, rel) {
		u.dropCache()
	}
	for d := range u.dirTimes {
		if isUnder(d, rel) {
			delete(u.dirTimes, d)
		}
	}
	return removeAllAt(pfd, name)
}

// removeAllAt removes name in dirfd and, for a directory, everything below
// it, never following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// readNames lists the directory dirfd without changing dirfd's offset.
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return names, nil
}

// nodePath names the node name in the directory dirfd for the path-based
// xattr calls, which have no *at form: the kernel resolves the /proc magic
// link to dirfd itself, so nothing on the way can be swapped.
func nodePath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// setXattrsAt sets xs on the node name in dirfd without following it.
func setXattrsAt(dirfd int, name string, xs []xattr) error {
	if len(xs) == 0 {
		return nil
	}
	p := nodePath(dirfd, name)
	for _, x := range xs {
		err := unix.Lsetxattr(p, x.name, []byte(x.value), 0)
		if errors.Is(err, unix.EPERM) && strings.HasPrefix(x.name, "user.") {
			return refuse("the xattr %q cannot be set: Linux allows user.* xattrs only on regular files and directories", x.name)
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	return nil
}

// setXattrsFD sets xs on the open file fd.
func setXattrsFD(fd int, xs []xattr) error {
	for _, x := range xs {
		if err := unix.Fsetxattr(fd, x.name, []byte(x.value), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	return nil
}

// listXattrs returns the xattrs of the file at p (not followed), except
// those that steer overlayfs.
func listXattrs(p string) ([]xattr, error) {
	// The size a file system reports up front is a hint (overlayfs
	// counts names it then hides), so grow on ERANGE.
	var buf []byte
	size := 0
	for n := 1024; ; n *= 4 {
		buf = make([]byte, n)
		var err error
		size, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) && n < 1<<20 {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		break
	}
	var xs []xattr
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || overlayXattr(name) {
			continue
		}
		val := make([]byte, 64<<10) // the largest xattr value Linux allows
		n, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, err
		}
		xs = append(xs, xattr{name: name, value: string(val[:n])})
	}
	return xs, nil
}

// Xattrs returns the extended attributes of the file at p (a symbolic
// link is not followed), except the trusted.overlay.* ones that steer
// overlayfs; a file system without xattrs gives none.
func Xattrs(p string) (map[string]string, error) {
	xs, err := listXattrs(p)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(xs))
	for _, x := range xs {
		out[x.name] = x.value
	}
	return out, nil
}
