package unpack

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// node is one tar entry on its way to disk.
type node struct {
	hdr    *tar.Header
	rel    string // path from the layer root
	parent string // rel's directory, "" for the root
	base   string // rel's last component
	perm   uint32 // permission bits with setuid, setgid and sticky
	xattrs []xattr
}

// entry applies one tar entry.
func (u *unpacker) entry(ctx context.Context, tr io.Reader, hdr *tar.Header) error {
	counted, err := u.dispatch(ctx, tr, hdr)
	if err != nil {
		return u.classify(hdr.Name, err)
	}
	if counted {
		u.stats.Entries++
	}
	return nil
}

// dispatch applies hdr according to its type and reports whether it
// counts as an applied entry.
func (u *unpacker) dispatch(ctx context.Context, tr io.Reader, hdr *tar.Header) (bool, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return false, nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return false, err
	}
	if aufsMeta(rel) {
		return false, nil
	}
	parent, base := splitRel(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parent, base)
	}
	if err := checkOwner(hdr); err != nil {
		return false, err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return false, refuse("the entry would replace the layer root with a non-directory")
		}
		root := &RootEntry{UID: hdr.Uid, GID: hdr.Gid, Mode: uint32(hdr.Mode & 0o7777), ModTime: hdr.ModTime, AccessTime: hdr.AccessTime}
		if root.AccessTime.IsZero() {
			root.AccessTime = root.ModTime
		}
		u.stats.Root = root
		return true, nil
	}
	xs, err := entryXattrs(hdr)
	if err != nil {
		return false, err
	}
	n := &node{hdr: hdr, rel: rel, parent: parent, base: base, perm: uint32(hdr.Mode & 0o7777), xattrs: xs}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeGNUSparse:
		err = u.file(ctx, tr, n)
	case tar.TypeDir:
		err = u.directory(n)
	case tar.TypeSymlink:
		err = u.symlink(n)
	case tar.TypeLink:
		err = u.hardlink(n)
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		err = u.special(n)
	default:
		return false, refuse("the entry type %q is not supported", hdr.Typeflag)
	}
	if errors.Is(err, errDeviceSkipped) {
		u.skipDevice(rel)
		return false, nil
	}
	if err == nil && u.skipped[rel] {
		delete(u.skipped, rel) // a later entry took the name
	}
	return err == nil, err
}

// errDeviceSkipped tells dispatch that the entry is a device node (or a
// hardlink to one) that the layer leaves out.
var errDeviceSkipped = errors.New("device node skipped")

// skipDevice records that the device entry rel was left out.
func (u *unpacker) skipDevice(rel string) {
	if u.stats.SkippedDevices == 0 {
		u.stats.FirstSkippedDevice = rel
	}
	u.stats.SkippedDevices++
	if u.skipped == nil {
		u.skipped = make(map[string]bool)
	}
	u.skipped[rel] = true
}

func checkOwner(hdr *tar.Header) error {
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return refuse("the owner %d:%d is out of range", hdr.Uid, hdr.Gid)
	}
	return nil
}

// whiteout applies the whiteout entry base in the directory parent.
func (u *unpacker) whiteout(parent, base string) (bool, error) {
	if base == opaqueMarker {
		if parent == "" {
			return false, refuse("an opaque marker on the layer root cannot be expressed: overlayfs ignores opaque roots of lower layers; white out each top-level entry instead")
		}
		fd, err := u.parentDir(parent)
		if err != nil {
			return false, err
		}
		return true, unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0)
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return false, refuse("the whiteout names no file")
	}
	pfd, err := u.parentDir(parent)
	if err != nil {
		return false, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		// NAME is in this layer: a whiteout only hides lower layers (OCI
		// image spec), and NAME hides them already.
		return true, nil
	case !errors.Is(err, unix.ENOENT):
		return false, err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return false, err
	}
	return true, unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW)
}

// replace runs create, which makes the node n.base in pfd; when the name is
// taken it removes what is there and runs create again.
func (u *unpacker) replace(pfd int, n *node, create func() error) error {
	err := create()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := u.removeAt(pfd, n.base, n.rel); err != nil {
		return err
	}
	return create()
}

func (u *unpacker) file(ctx context.Context, tr io.Reader, n *node) error {
	sparse := isSparse(n.hdr)
	if sparse {
		u.sparseBytes += n.hdr.Size
		if u.sparseBytes > maxSparseBytes {
			return refuse("the layer's sparse files expand to more than %d GiB; skiff unpacks at most that much", maxSparseBytes>>30)
		}
	}
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	fd, err := u.createFile(pfd, n)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), n.rel)
	var written int64
	if sparse {
		written, err = u.copySparse(ctx, f, tr)
	} else {
		written, err = u.copyBody(ctx, f, tr)
	}
	u.stats.Bytes += written
	if err == nil {
		err = setOwnerMode(fd, n.hdr.Uid, n.hdr.Gid, n.perm)
	}
	if err == nil {
		err = setXattrsFD(fd, n.xattrs)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setTimesAt(pfd, n.base, entryTimes(n.hdr))
}

// createFile creates the regular file n in pfd, replacing what is there.
func (u *unpacker) createFile(pfd int, n *node) (int, error) {
	fd := -1
	err := u.replace(pfd, n, func() error {
		var err error
		fd, err = unix.Openat(pfd, n.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	return fd, err
}

// copyBody streams an entry's content to dst.
func (u *unpacker) copyBody(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := src.Read(u.buf)
		if n > 0 {
			if _, err := dst.Write(u.buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, &bodyReadError{err: rerr}
		}
	}
}

// maxSparseBytes bounds the logical size of a layer's sparse files: a
// few bytes of tar can declare terabytes of holes, and the tar reader
// hands holes over as zeros to scan.
const maxSparseBytes = 16 << 30

// isSparse reports whether the entry is a GNU sparse file (old GNU format
// or PAX GNU.sparse records).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// allZero reports whether b holds only zero bytes (a hole in a sparse
// file). It needs no zero buffer to compare with, which every process
// would otherwise allocate at start-up.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// copySparse streams a sparse file's content to dst, leaving holes where
// the content is zero.
func (u *unpacker) copySparse(ctx context.Context, dst *os.File, src io.Reader) (int64, error) {
	var size, written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		// Fill whole chunks so that holes are found at chunk granularity.
		n := 0
		var rerr error
		for n < len(u.buf) && rerr == nil {
			var m int
			m, rerr = src.Read(u.buf[n:])
			n += m
		}
		if n > 0 {
			if allZero(u.buf[:n]) {
				if _, err := dst.Seek(int64(n), io.SeekCurrent); err != nil {
					return written, err
				}
			} else {
				if _, err := dst.Write(u.buf[:n]); err != nil {
					return written, err
				}
				written += int64(n)
			}
			size += int64(n)
		}
		if rerr == io.EOF {
			return written, dst.Truncate(size)
		}
		if rerr != nil {
			return written, &bodyReadError{err: rerr}
		}
	}
}

func (u *unpacker) directory(n *node) error {
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW)
	opaque := false
	switch {
	case err == nil && isDir(&st):
		// A directory over a directory only updates its metadata.
	case err == nil:
		// A directory replacing a whiteout of this layer is new: it must
		// hide the deleted lower directory's contents.
		opaque = isWhiteout(&st)
		if err := u.removeAt(pfd, n.base, n.rel); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, n.base, 0o700); err != nil {
			return err
		}
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(pfd, n.base, 0o700); err != nil {
			return err
		}
	default:
		return err
	}
	fd, err := unix.Openat(pfd, n.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if opaque {
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return err
		}
	}
	if err := setOwnerMode(fd, n.hdr.Uid, n.hdr.Gid, n.perm); err != nil {
		return err
	}
	if err := setXattrsFD(fd, n.xattrs); err != nil {
		return err
	}
	u.dirTimes[n.rel] = entryTimes(n.hdr)
	return nil
}

func (u *unpacker) symlink(n *node) error {
	target := n.hdr.Linkname
	switch {
	case target == "":
		return refuse("the symlink has an empty target")
	case strings.IndexByte(target, 0) >= 0:
		return refuse("the symlink target contains a NUL byte")
	case symlinkClimbs(n.rel, target):
		return refuse("the symlink target %q climbs out of the layer root", target)
	}
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	if err := u.replace(pfd, n, func() error { return unix.Symlinkat(target, pfd, n.base) }); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, n.base, n.hdr.Uid, n.hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := setXattrsAt(pfd, n.base, n.xattrs); err != nil {
		return err
	}
	return setTimesAt(pfd, n.base, entryTimes(n.hdr))
}

// special creates fifos and device nodes; without Options.AllowDevices
// it returns errDeviceSkipped for a valid device node.
func (u *unpacker) special(n *node) error {
	var kind uint32
	switch n.hdr.Typeflag {
	case tar.TypeFifo:
		kind = unix.S_IFIFO
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	}
	var dev uint64
	if kind != unix.S_IFIFO {
		major, minor := n.hdr.Devmajor, n.hdr.Devminor
		switch {
		case major < 0 || major > math.MaxUint32 || minor < 0 || minor > math.MaxUint32:
			return refuse("the device number %d/%d is out of range", major, minor)
		case kind == unix.S_IFCHR && major == 0 && minor == 0:
			return refuse("a character device 0/0 is an overlayfs whiteout; layers delete files with %q entries", whiteoutPrefix+"NAME")
		case !u.opts.AllowDevices:
			return errDeviceSkipped
		}
		dev = unix.Mkdev(uint32(major), uint32(minor))
	}
	return u.mknod(n, kind, dev, n.hdr.Uid, n.hdr.Gid, n.perm, n.xattrs, entryTimes(n.hdr))
}

// mknod creates the fifo or device n with the given metadata.
func (u *unpacker) mknod(n *node, kind uint32, dev uint64, uid, gid int, perm uint32, xs []xattr, ts [2]unix.Timespec) error {
	pfd, err := u.parentDir(n.parent)
	if err != nil {
		return err
	}
	if err := u.replace(pfd, n, func() error { return unix.Mknodat(pfd, n.base, kind|perm, int(dev)) }); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, n.base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// The node was just made here, so following is safe and needs no
	// fchmodat2.
	if err := unix.Fchmodat(pfd, n.base, perm, 0); err != nil {
		return err
	}
	if err := setXattrsAt(pfd, n.base, xs); err != nil {
		return err
	}
	return setTimesAt(pfd, n.base, ts)
}

// setOwnerMode sets owner then mode: chown clears setuid and setgid.
func setOwnerMode(fd, uid, gid int, perm uint32) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	return unix.Fchmod(fd, perm)
}

func setTimesAt(dirfd int, name string, ts [2]unix.Timespec) error {
	return unix.UtimesNanoAt(dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

// entryTimes returns the entry's access and modification times; the
// access time defaults to the modification time.
func entryTimes(hdr *tar.Header) [2]unix.Timespec {
	m := timespec(hdr.ModTime)
	a := m
	if !hdr.AccessTime.IsZero() {
		a = timespec(hdr.AccessTime)
	}
	return [2]unix.Timespec{a, m}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
