package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// MountIDMapped mounts the directory src at dst (created if missing)
// with its owners shifted by the mapping of the user namespace usernsFD:
// id 0 on disk shows as the range's first host id.
func MountIDMapped(usernsFD int, src, dst string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone mount of %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			return errdefs.NotImplemented("this kernel cannot make an idmapped mount of %s (%v): Linux 5.19 or newer is needed for a user namespace; run it with hostUsers: true (Apps) or --userns host", src, err)
		}
		return errdefs.Unavailable("idmap the mount of %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("create idmapped mount point: %w", err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return errdefs.Unavailable("attach idmapped mount of %s at %s: %w", src, dst, err)
	}
	return nil
}

// Detach unmounts an idmapped mount lazily and removes its mount point;
// what was cloned from it (an overlay's layer, a container's volume)
// stays. A path that is not mounted is only removed if empty.
func Detach(dst string) error {
	err := unix.Unmount(dst, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return errdefs.Unavailable("unmount %s: %w", dst, err)
	}
	// Remove, not RemoveAll: a mount point still mounted must never have
	// its contents deleted.
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mount point %s: %w", dst, err)
	}
	return nil
}

// OpenUserNS opens the user namespace of process pid.
func OpenUserNS(pid int) (int, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open user namespace: %w", err)
	}
	return fd, nil
}

// Unshift gives every file under dir (dir included) that a mapping of m
// owns the owner it has inside the container: host id HostID+n becomes
// n. It turns a copy made from a container's idmapped view back into
// what belongs on disk (a process outside the range, as the daemon is,
// cannot create files through an idmapped mount). Symlinks are changed,
// never followed; set-id bits, which a change of owner clears, are kept.
func Unshift(dir string, m api.IDMap) error {
	shift := func(id uint32) int {
		if id >= m.HostID && id-m.HostID < m.Size {
			return int(id - m.HostID)
		}
		return int(id)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, gid := shift(st.Uid), shift(st.Gid)
		if uid == int(st.Uid) && gid == int(st.Gid) {
			return nil
		}
		if err := unix.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s its owner in the container: %w", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			return unix.Chmod(p, st.Mode&0o7777)
		}
		return nil
	})
}
