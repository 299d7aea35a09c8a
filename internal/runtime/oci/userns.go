package oci

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api/errdefs"
)

// userNamespace adds the user namespace of in.IDMap to s: one mapping of
// Size ids from container id 0, for uids and gids alike. runc needs the
// mappings also when it joins a pinned namespace (in.UserNS): it gives
// the container's devices and terminal to the mapped root.
func userNamespace(s *specs.Spec, in Input) error {
	if in.IDMap == nil {
		if in.UserNS != "" {
			return errdefs.Invalid("user namespace %s named without its id mapping", in.UserNS)
		}
		return nil
	}
	if in.IDMap.Size == 0 || in.IDMap.HostID == 0 {
		return errdefs.Invalid("user namespace mapping of %d ids from host id %d: container root must map to an unprivileged host id", in.IDMap.Size, in.IDMap.HostID)
	}
	if in.Config.Privileged {
		return errdefs.Invalid("--privileged needs the host's user namespace: use --userns host")
	}
	ns := specs.LinuxNamespace{Type: specs.UserNamespace}
	if in.UserNS != "" {
		if !filepath.IsAbs(in.UserNS) {
			return errdefs.Invalid("user namespace %q is not an absolute path", in.UserNS)
		}
		ns.Path = in.UserNS
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: in.IDMap.HostID, Size: in.IDMap.Size}}
	s.Linux.UIDMappings = m
	s.Linux.GIDMappings = append([]specs.LinuxIDMapping(nil), m...)
	return nil
}
