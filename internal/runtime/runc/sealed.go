package runc

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// runcSeals are the seals runc looks for on /proc/self/exe: with all of
// them it knows the binary cannot be written and skips copying itself
// into a new memfd before "runc init" (its CVE-2019-5736 protection).
const runcSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealedCopy copies the binary at path into a sealed memfd and returns
// it. Executed through /proc/<pid>/fd/<n>, runc finds itself sealed and
// does not copy its ~9 MB binary again for every container, which is
// what runc's own code suggests ("an admin could bind-mount a sealed
// memfd to /usr/bin/runc to allow re-use"). The file must stay open for
// as long as the path is used.
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("runc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:runc")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy %s: %w", path, err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, runcSeals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal: %w", err)
	}
	return f, nil
}

// useSealedRunc makes r run runc from a sealed in-memory copy. Any
// failure leaves r running the binary from its path.
func (r *Runtime) useSealedRunc() error {
	if r.runtimeName != "runc" || r.runtimePath != r.binaryPath {
		return nil
	}
	f, err := sealedCopy(r.binaryPath)
	if err != nil {
		return errdefs.Unavailable("sealed copy of %s: %w", r.binaryPath, err)
	}
	r.sealed = f
	r.runtimePath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
	return nil
}
