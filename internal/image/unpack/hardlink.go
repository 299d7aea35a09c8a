package unpack

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// copyRecord is the copy this layer holds of a hardlink target that lives
// in a lower layer.
type copyRecord struct {
	rel      string
	dev, ino uint64
}

// location is where a hardlink target was found.
type location struct {
	pfd   int // the directory holding the target; the receiver closes it
	name  string
	st    unix.Stat_t
	lower bool // the target is in a lower layer, not in this one
}

// lookupStatus is the outcome of looking a path up in one layer.
type lookupStatus int

const (
	// missing: the layer has nothing at the path; look in the layer below.
	missing lookupStatus = iota
	// found: the layer has the path.
	found
	// hidden: the layer hides the path of the layers below (whiteout,
	// or a non-directory on the way).
	hidden
)

type lookupResult struct {
	status lookupStatus
	// opaque is set when a directory on the way is opaque: the layers
	// below do not count.
	opaque bool
	// reason says why the path is hidden.
	reason string
}

func (u *unpacker) hardlink(n *node) error {
	target, err := cleanName(n.hdr.Linkname)
	if err != nil {
		var rf *refusal
		if errors.As(err, &rf) {
			return refuse("the hardlink target %q is refused: %s", n.hdr.Linkname, rf.reason)
		}
		return err
	}
	switch {
	case u.skipped[target]:
		return errDeviceSkipped
	case target == "":
		return refuse("the hardlink points at the layer root")
	case target == n.rel:
		return refuse("the hardlink points at itself")
	case isUnder(target, n.rel):
		return refuse("the hardlink would replace the directory holding its target %q", n.hdr.Linkname)
	}
	loc, err := u.findTarget(target, n.hdr.Linkname)
	if err != nil {
		return err
	}
	defer unix.Close(loc.pfd)
	if loc.lower {
		return u.copyFromLower(n, target, loc)
	}
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Dev == loc.st.Dev && st.Ino == loc.st.Ino {
		return nil // the same link again
	}
	return u.replace(pfd, n, func() error { return unix.Linkat(loc.pfd, loc.name, pfd, n.base, 0) })
}

// findTarget finds the hardlink target rel (spelled linkname in the tar)
// in this layer, then in the copies made of lower files, then in the
// lower layers top first, as overlayfs would see it.
func (u *unpacker) findTarget(rel, linkname string) (*location, error) {
	loc, res, err := lookupIn(u.root, rel)
	if err != nil {
		return nil, err
	}
	switch res.status {
	case found:
		return loc, checkTargetType(loc, linkname)
	case hidden:
		return nil, refuse("the hardlink target %q %s", linkname, res.reason)
	}
	if rec, ok := u.copies[rel]; ok {
		if loc := u.copyOf(rec); loc != nil {
			return loc, nil
		}
	}
	for i := range u.lowers {
		if res.opaque {
			break
		}
		fd, err := u.lower(i)
		if err != nil {
			return nil, err
		}
		if loc, res, err = lookupIn(fd, rel); err != nil {
			return nil, err
		}
		if res.status == found {
			loc.lower = true
			return loc, checkTargetType(loc, linkname)
		}
		if res.status == hidden {
			break
		}
	}
	return nil, refuse("the hardlink target %q does not exist in this layer or the layers below", linkname)
}

func checkTargetType(loc *location, linkname string) error {
	if isDir(&loc.st) {
		unix.Close(loc.pfd)
		return refuse("the hardlink target %q is a directory", linkname)
	}
	return nil
}

// copyOf returns the location of the copy rec when it is still in place.
func (u *unpacker) copyOf(rec copyRecord) *location {
	loc, res, err := lookupIn(u.root, rec.rel)
	if err != nil || res.status != found {
		return nil
	}
	if loc.st.Dev != rec.dev || loc.st.Ino != rec.ino {
		unix.Close(loc.pfd)
		return nil
	}
	return loc
}

// lower returns a descriptor of the i-th lower layer.
func (u *unpacker) lower(i int) (int, error) {
	if u.lowers[i] >= 0 {
		return u.lowers[i], nil
	}
	dir := u.opts.Lowers[i]
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return -1, errdefs.NotFound("unpack layer: open lower layer %s: %w; the layers below must be unpacked first", dir, err)
		}
		return -1, errdefs.Unavailable("unpack layer: open lower layer %s: %w", dir, err)
	}
	u.lowers[i] = fd
	return fd, nil
}

// lookupIn looks rel up in the layer directory layer without following
// symlinks. On status found, the location's descriptor is open.
func lookupIn(layer int, rel string) (*location, lookupResult, error) {
	var res lookupResult
	parent, base := splitRel(rel)
	pfd, err := unix.FcntlInt(uintptr(layer), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, res, err
	}
	end := 0
	for parent != "" && end < len(parent) {
		next := len(parent)
		for i := end; i < len(parent); i++ {
			if parent[i] == '/' {
				next = i
				break
			}
		}
		name, sofar := parent[end:next], parent[:next]
		end = next + 1
		child, err := openBeneath(pfd, name)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOENT):
			unix.Close(pfd)
			return nil, res, nil
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			res.status, res.reason = hidden, fmt.Sprintf("goes through %q, which is not a directory", sofar)
			var st unix.Stat_t
			if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				switch {
				case st.Mode&unix.S_IFMT == unix.S_IFLNK:
					res.reason = fmt.Sprintf("goes through the symlink %q", sofar)
				case isWhiteout(&st):
					res.reason = fmt.Sprintf("goes through %q, which is deleted by a whiteout", sofar)
				}
			}
			unix.Close(pfd)
			return nil, res, nil
		default:
			unix.Close(pfd)
			return nil, res, err
		}
		unix.Close(pfd)
		pfd = child
		if isOpaque(pfd) {
			res.opaque = true
		}
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && isWhiteout(&st):
		res.status, res.reason = hidden, "is deleted by a whiteout"
	case err == nil:
		res.status = found
		return &location{pfd: pfd, name: base, st: st}, res, nil
	case !errors.Is(err, unix.ENOENT):
		unix.Close(pfd)
		return nil, res, err
	}
	unix.Close(pfd)
	return nil, res, nil
}

// isOpaque reports whether the directory fd is marked opaque.
func isOpaque(fd int) bool {
	var v [2]byte
	n, err := unix.Fgetxattr(fd, opaqueXattr, v[:])
	return err == nil && n == 1 && v[0] == 'y'
}

// copyFromLower makes n a copy of the lower file at loc, with its
// metadata, since a hardlink cannot cross layer directories. target is
// the target's path, under which the copy is remembered.
func (u *unpacker) copyFromLower(n *node, target string, loc *location) error {
	st := &loc.st
	xs, err := listXattrs(nodePath(loc.pfd, loc.name))
	if err != nil {
		return fmt.Errorf("read xattrs of the hardlink target in a lower layer: %w", err)
	}
	uid, gid, perm := int(st.Uid), int(st.Gid), st.Mode&0o7777
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = u.copyFile(n, loc, uid, gid, perm, xs, ts)
	case unix.S_IFLNK:
		err = u.copySymlink(n, loc, uid, gid, xs, ts)
	case unix.S_IFIFO:
		err = u.mknod(n, unix.S_IFIFO, 0, uid, gid, perm, xs, ts)
	case unix.S_IFCHR, unix.S_IFBLK:
		if !u.opts.AllowDevices {
			return errDeviceSkipped
		}
		err = u.mknod(n, st.Mode&unix.S_IFMT, st.Rdev, uid, gid, perm, xs, ts)
	default:
		return refuse("the hardlink target %q is of an unsupported file type", n.hdr.Linkname)
	}
	if err != nil {
		return err
	}
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	var cst unix.Stat_t
	if err := unix.Fstatat(pfd, n.base, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	u.copies[target] = copyRecord{rel: n.rel, dev: cst.Dev, ino: cst.Ino}
	return nil
}

func (u *unpacker) copyFile(n *node, loc *location, uid, gid int, perm uint32, xs []xattr, ts [2]unix.Timespec) error {
	sfd, err := unix.Openat(loc.pfd, loc.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the hardlink target in a lower layer: %w", err)
	}
	src := os.NewFile(uintptr(sfd), loc.name)
	defer src.Close()
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	fd, err := u.createFile(pfd, n)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), n.rel)
	written, err := io.Copy(dst, src) // copy_file_range where the file system allows
	u.stats.Bytes += written
	if err == nil {
		err = setOwnerMode(fd, uid, gid, perm)
	}
	if err == nil {
		err = setXattrsFD(fd, xs)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setTimesAt(pfd, n.base, ts)
}

func (u *unpacker) copySymlink(n *node, loc *location, uid, gid int, xs []xattr, ts [2]unix.Timespec) error {
	buf := make([]byte, loc.st.Size+1)
	size, err := unix.Readlinkat(loc.pfd, loc.name, buf)
	if err != nil {
		return fmt.Errorf("read the hardlink target in a lower layer: %w", err)
	}
	if size > int(loc.st.Size) {
		return fmt.Errorf("read the hardlink target in a lower layer: the symlink changed while it was read")
	}
	target := string(buf[:size])
	if symlinkClimbs(n.rel, target) {
		return refuse("the hardlink makes a symlink to %q here, which climbs out of the layer root", target)
	}
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	if err := u.replace(pfd, n, func() error { return unix.Symlinkat(target, pfd, n.base) }); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, n.base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := setXattrsAt(pfd, n.base, xs); err != nil {
		return err
	}
	return setTimesAt(pfd, n.base, ts)
}
