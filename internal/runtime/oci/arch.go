package oci

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// x32SyscallBit marks a system call number of the x32 ABI on amd64.
const x32SyscallBit = 0x40000000

// x32Supported reports whether the running kernel executes x32-ABI system
// calls (amd64 with CONFIG_X86_X32_ABI). It asks the kernel once: an x32
// getpid fails with ENOSYS where the ABI is not built in.
var x32Supported = sync.OnceValue(func() bool {
	if runtime.GOARCH != "amd64" {
		return false
	}
	_, _, errno := unix.RawSyscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
	return errno != unix.ENOSYS
})
