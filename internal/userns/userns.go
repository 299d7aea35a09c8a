package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Range geometry: range N maps container ids 0..Size-1 to host ids
// Base+N*Size onwards. Base keeps clear of the host's own users and of
// the ids useradd hands out as subordinate ranges below it.
const (
	Base = 100000
	Size = 65536
	// MaxRanges is how many ranges fit below the largest host id
	// (2^32-2, as (uid_t)-1 is reserved).
	MaxRanges = (1<<32 - 2 - Base) / Size
)

// RangeMap is the mapping of range index n.
func RangeMap(n int) api.IDMap {
	return api.IDMap{HostID: uint32(Base + n*Size), Size: Size}
}

// RangeIndex is the index of the range m maps, and whether m is one of
// the ranges RangeMap makes.
func RangeIndex(m api.IDMap) (int, bool) {
	if m.HostID < Base || m.Size != Size || (m.HostID-Base)%Size != 0 {
		return 0, false
	}
	n := int(m.HostID-Base) / Size
	return n, n < MaxRanges
}

// Kinds of namespace Pin and WithHolder make.
const (
	User    = "user"
	Network = "net"
)

// WithHolder makes a holder process in a new user namespace with mapping
// m (and a new network namespace owned by it when net), calls fn with
// its pid while it exists, then kills it. fn opens or pins
// /proc/PID/ns/{user,net}; the namespaces live on only through what fn
// keeps.
func WithHolder(m api.IDMap, net bool, fn func(pid int) error) error {
	flags := uintptr(syscall.CLONE_NEWUSER)
	if net {
		flags |= syscall.CLONE_NEWNET
	}
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostID), Size: int(m.Size)}}
	// The holder is traced: it stops at its exec, before running any of
	// the binary, and a tracee must be waited for from the thread that
	// started it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: flags, UidMappings: ids, GidMappings: ids,
		GidMappingsEnableSetgroups: true,
		Ptrace:                     true, Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return errdefs.Unavailable("create a user namespace for %d host ids from %d: %w", m.Size, m.HostID, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	return fn(cmd.Process.Pid)
}

// Pin bind-mounts namespace kind of process pid on path, creating the
// file; an existing pin at path is replaced.
func Pin(pid int, kind, path string) error {
	return bindNS("/proc/"+strconv.Itoa(pid)+"/ns/"+kind, kind, path)
}

// Move pins the namespace pinned at src on dst (an existing pin at dst
// is replaced), then unpins src.
func Move(src, dst string) error {
	if err := bindNS(src, "pinned", dst); err != nil {
		return err
	}
	return Unpin(src)
}

// bindNS bind-mounts the namespace file src on path, creating the file
// after removing what was pinned there; kind names the namespace in
// errors.
func bindNS(src, kind, path string) error {
	if err := Unpin(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create %s namespace file: %w", kind, err)
	}
	f.Close()
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return errdefs.Unavailable("pin %s namespace at %s: %w", kind, path, err)
	}
	return nil
}

// Unpin unmounts and removes a pin; a missing one is not an error.
func Unpin(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return errdefs.Unavailable("unpin namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove namespace file %s: %w", path, err)
	}
	return nil
}

// IsPinned reports whether path is a pinned namespace.
func IsPinned(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
