package oci

import (
	"errors"
	"io/fs"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// noNewPrivileges is the process's no_new_privs bit: the config's
// choice, else on unless the container is privileged.
func noNewPrivileges(cfg api.ContainerConfig) bool {
	if cfg.NoNewPrivileges != nil {
		return *cfg.NoNewPrivileges
	}
	return !cfg.Privileged
}

// hostDevices are the device nodes of ds as the spec's devices, with the
// device cgroup rules that allow them. Each host path must be a
// character or block device; a missing one is ErrNotFound.
func hostDevices(ds []api.DeviceMapping) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, d := range ds {
		if err := d.Check(); err != nil {
			return nil, nil, err
		}
		var st unix.Stat_t
		if err := unix.Stat(d.PathOnHost, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, errdefs.NotFound("device %s: no such device on the host", d.PathOnHost)
			}
			return nil, nil, errdefs.Invalid("device %s: %w", d.PathOnHost, err)
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil, nil, errdefs.Invalid("device %s is not a device node: give a character or block device such as /dev/fuse", d.PathOnHost)
		}
		major, minor := int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		target := d.PathInContainer
		if target == "" {
			target = d.PathOnHost
		}
		mode := fs.FileMode(st.Mode & 0o777)
		uid, gid := uint32(0), uint32(0)
		devs = append(devs, specs.LinuxDevice{Path: target, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid})
		rule := devRule(typ, major, minor)
		if d.CgroupPermissions != "" {
			rule.Access = d.CgroupPermissions
		}
		rules = append(rules, rule)
	}
	return devs, rules, nil
}

// seccompActions are the actions a seccomp profile may name.
var seccompActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

// checkSeccomp refuses a profile naming an action no runtime knows, so
// a typo is an error at create, not first in runc at start.
func checkSeccomp(sc *specs.LinuxSeccomp) error {
	if !slices.Contains(seccompActions, sc.DefaultAction) {
		return errdefs.Invalid("seccomp profile: defaultAction %q is not an action: use one of SCMP_ACT_ERRNO, SCMP_ACT_ALLOW, ...", sc.DefaultAction)
	}
	for _, c := range sc.Syscalls {
		if !slices.Contains(seccompActions, c.Action) {
			return errdefs.Invalid("seccomp profile: action %q of %v is not an action: use one of SCMP_ACT_ERRNO, SCMP_ACT_ALLOW, ...", c.Action, c.Names)
		}
	}
	return nil
}
