package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// maxOptions is the longest option string mount(2) takes (one page less
// the terminating NUL).
var maxOptions = os.Getpagesize() - 1

// Mount mounts an overlay at target with lowers (top layer first) under
// the writable upper directory, using work as overlayfs's work directory.
// upper, work and target are created if missing, upper with the owner,
// mode and times of the top lower (the overlay's root takes them from
// upper); they and the lowers must be absolute paths without ',' or ':'.
func Mount(lowers []string, upper, work, target string) error {
	for _, p := range append([]string{upper, work, target}, lowers...) {
		if !filepath.IsAbs(p) {
			return errdefs.Invalid("overlay path %q is not absolute", p)
		}
		if strings.ContainsAny(p, ",:") {
			return errdefs.Invalid("overlay path %q contains ',' or ':', which overlayfs options cannot hold: use another directory", p)
		}
	}
	for _, d := range []string{filepath.Dir(upper), work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create overlay directory: %w", err)
		}
	}
	if len(lowers) == 0 {
		empty := filepath.Join(filepath.Dir(upper), "lower-empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return fmt.Errorf("create the empty lower directory of an image without layers: %w", err)
		}
		// The mode must not depend on the umask: it becomes the root's.
		if err := os.Chmod(empty, 0o755); err != nil {
			return fmt.Errorf("create the empty lower directory of an image without layers: %w", err)
		}
		lowers = []string{empty}
	}
	for _, l := range lowers {
		if st, err := os.Stat(l); err != nil {
			return errdefs.NotFound("overlay lower directory: %w", err)
		} else if !st.IsDir() {
			return errdefs.Invalid("overlay lower %s is not a directory", l)
		}
	}
	if err := makeUpper(upper, lowers[0]); err != nil {
		return err
	}

	data := options(lowers, upper, work)
	if len(data) <= maxOptions {
		return mountData(target, data)
	}
	err := mountNewAPI(lowers, upper, work, target)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	// Kernels before 6.8 have no "lowerdir+": name each layer by a short
	// link to a descriptor held for the duration of the call.
	var short []string
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open overlay lower %s: %w", l, err)
		}
		defer unix.Close(fd)
		short = append(short, "/proc/self/fd/"+strconv.Itoa(fd))
	}
	data = options(short, upper, work)
	if len(data) > maxOptions {
		return errdefs.Invalid("overlay of %d layers does not fit in the kernel's mount options (%d bytes, limit %d): squash the image to fewer layers", len(lowers), len(data), maxOptions)
	}
	return mountData(target, data)
}

// makeUpper creates the upper directory with the owner, mode and times of
// the top lower directory: the root of an overlay takes its attributes
// from the upper directory, and the image store gives the top layer
// directory those of the image's root. An existing upper directory is
// left as it is: it holds what the container made of its root.
func makeUpper(upper, top string) error {
	err := os.Mkdir(upper, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create overlay directory: %w", err)
	}
	var st unix.Stat_t
	err = unix.Stat(top, &st)
	if err == nil {
		err = unix.Lchown(upper, int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = unix.Chmod(upper, st.Mode&0o7777)
	}
	if err == nil {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, upper, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		os.Remove(upper)
		return errdefs.Unavailable("give the overlay upper directory %s the attributes of the image root %s: %w", upper, top, err)
	}
	return nil
}

func options(lowers []string, upper, work string) string {
	return "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
}

func mountData(target, data string) error {
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return errdefs.Unavailable("mount overlay at %s: %w", target, err)
	}
	return nil
}

// mountNewAPI is mountEachLayer; tests replace it to take the fallback.
var mountNewAPI = mountEachLayer

// mountEachLayer mounts with the new mount API, one fsconfig call per
// layer, so no single string holds them all.
func mountEachLayer(lowers []string, upper, work, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			return fmt.Errorf("overlay lowerdir+ %s: %w", l, err)
		}
	}
	if err := unix.FsconfigSetString(fsfd, "upperdir", upper); err != nil {
		return errdefs.Unavailable("overlay upperdir %s: %w", upper, err)
	}
	if err := unix.FsconfigSetString(fsfd, "workdir", work); err != nil {
		return errdefs.Unavailable("overlay workdir %s: %w", work, err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return errdefs.Unavailable("create overlay of %d layers: %w", len(lowers), err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return errdefs.Unavailable("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return errdefs.Unavailable("attach overlay at %s: %w", target, err)
	}
	return nil
}

// Unmount unmounts target. A target that is not mounted, or does not
// exist, is not an error; a busy mount is detached lazily.
func Unmount(target string) error {
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return errdefs.Unavailable("lazy unmount of %s: %w", target, err)
		}
		return nil
	default:
		return errdefs.Unavailable("unmount %s: %w", target, err)
	}
}
