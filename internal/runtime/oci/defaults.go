package oci

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH a container gets when neither the image nor the
// user sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultCgroupParent is the cgroup every container's cgroup is made under
// when Input.CgroupParent is empty.
const DefaultCgroupParent = "/skiff"

// MaxNofile is the RLIMIT_NOFILE a container asks for, unless the host's
// hard limit is lower (see Input.HostRlimits).
const MaxNofile = 1048576

// cpuPeriod is the CFS period, in microseconds, NanoCPUs is converted with.
const cpuPeriod = 100000

// maskedPaths are hidden from non-privileged containers (runc's and
// Docker's defaults).
var maskedPaths = []string{
	"/proc/asound",
	"/proc/acpi",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// readonlyPaths are read-only in non-privileged containers.
var readonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// defaultMounts are the kernel filesystems every container gets.
func defaultMounts(privileged bool, shmSize int64) []specs.Mount {
	shmOpt := "size=65536k"
	if shmSize > 0 {
		shmOpt = fmt.Sprintf("size=%d", shmSize)
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgroupOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shmOpt}},
	}
}

func devRule(typ string, major, minor int64) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: "rwm"}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// deviceRules is the device cgroup of a non-privileged container: deny
// everything, then allow mknod of any device and the use of the standard
// ones (null, zero, full, random, urandom, tty, console, ptmx, pts/*).
func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	mknodC := devRule("c", -1, -1)
	mknodC.Access = "m"
	mknodB := devRule("b", -1, -1)
	mknodB.Access = "m"
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		mknodC,
		mknodB,
		devRule("c", 1, 3),    // /dev/null
		devRule("c", 1, 5),    // /dev/zero
		devRule("c", 1, 7),    // /dev/full
		devRule("c", 1, 8),    // /dev/random
		devRule("c", 1, 9),    // /dev/urandom
		devRule("c", 5, 0),    // /dev/tty
		devRule("c", 5, 1),    // /dev/console
		devRule("c", 5, 2),    // /dev/ptmx
		devRule("c", 136, -1), // /dev/pts/*
	}
}
