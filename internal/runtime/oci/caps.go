package oci

import (
	"slices"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// allCapabilities lists every capability Linux knows, in number order
// (CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE is 40).
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is the capability set of every container that is
// not privileged: Docker's default set without CAP_NET_RAW, as podman's
// and Kubernetes' restricted profile have it. NET_RAW lets a process
// write its own packets and frames (spoof addresses, answer ARP for
// neighbours, reach what routing would not); ping needs it only where
// ping sockets are off, and --cap-add NET_RAW gives it back.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// normalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN", and "all" into "ALL".
func normalizeCap(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if !slices.Contains(allCapabilities, n) {
		return "", errdefs.Invalid("unknown capability %q: use a Linux capability name such as NET_ADMIN, or ALL", name)
	}
	return n, nil
}

// capabilities applies add and drop to the base set, Docker's way: drop
// runs first ("ALL" empties the set), then add ("ALL" gives every
// capability). The result is in capability number order.
func capabilities(base, add, drop []string) ([]string, error) {
	set := map[string]bool{}
	for _, c := range base {
		set[c] = true
	}
	for _, d := range drop {
		n, err := normalizeCap(d)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			clear(set)
			continue
		}
		delete(set, n)
	}
	for _, a := range add {
		n, err := normalizeCap(a)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			for _, c := range allCapabilities {
				set[c] = true
			}
			continue
		}
		set[n] = true
	}
	out := []string{}
	for _, c := range allCapabilities {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// boundedBy keeps the capabilities of caps whose bit is set in mask.
func boundedBy(caps []string, mask uint64) []string {
	out := []string{}
	for _, c := range caps {
		if i := slices.Index(allCapabilities, c); i >= 0 && mask&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out
}
