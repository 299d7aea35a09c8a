// Package oci builds the OCI runtime spec (config.json) of a container from
// its image configuration and the user's api.ContainerConfig.
//
// Spec is pure and deterministic: the same Input gives the same spec. It
// only reads the container's own /etc/passwd and /etc/group (to resolve a
// user name, with internal/inroot: confined to the rootfs, regular files of
// bounded size only, so a FIFO or a device in an image cannot block or
// flood the daemon) and, when asked
// with Input.HostRlimits or Input.HostCapabilities, the calling process's
// limits; with Input.HostArches it asks the kernel once whether it runs
// x32 code.
//
// The spec follows Docker's defaults: entrypoint and cmd with Docker's
// override rules, new pid/mount/uts/ipc/cgroup/network namespaces, Docker's
// default capability set and seccomp profile (github.com/moby/profiles),
// no-new-privileges, the masked and read-only /proc and /sys paths of runc
// and Docker, a deny-all device cgroup with the standard devices allowed,
// and /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys (read-only) and
// /sys/fs/cgroup (read-only) mounted. A privileged container gets every
// capability, no seccomp filter, no masked or read-only paths, access to
// all devices in the device cgroup, a read-write /sys, and
// no-new-privileges off; host devices are not copied into its /dev.
//
// Errors in the input (no command, unknown user, bad capability name,
// malformed env entry, out-of-range resources) are errdefs.ErrInvalid.
package oci
