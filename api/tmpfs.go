package api

import (
	"path"
	"strconv"
	"strings"

	"github.com/docker/go-units"

	"skiff.dev/skiff/api/errdefs"
)

// ParseTmpfs parses a tmpfs mount as docker's --tmpfs and HostConfig.Tmpfs
// write it: an absolute target and comma-separated options, size=SIZE
// (like 64m), mode=OCTAL, ro or rw. nosuid and nodev are accepted and
// always on; noexec is accepted as before but not applied (a skiff tmpfs
// allows exec). A bad target or option is ErrInvalid.
func ParseTmpfs(target, opts string) (Mount, error) {
	if !path.IsAbs(target) {
		return Mount{}, errdefs.Invalid("tmpfs target %q must be an absolute path inside the container", target)
	}
	m := Mount{Type: MountTmpfs, Target: target}
	for _, o := range strings.Split(opts, ",") {
		switch k, v, _ := strings.Cut(o, "="); k {
		case "", "rw", "nosuid", "nodev", "noexec":
		case "ro":
			m.ReadOnly = true
		case "size":
			n, err := units.RAMInBytes(v)
			if err != nil || n <= 0 {
				return Mount{}, errdefs.Invalid("tmpfs %s: size %q is not a size like 64m", target, v)
			}
			m.TmpfsSize = n
		case "mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n&^0o7777 != 0 {
				return Mount{}, errdefs.Invalid("tmpfs %s: mode %q is not an octal mode like 1777 or 0755", target, v)
			}
			m.TmpfsMode = uint32(n)
		default:
			return Mount{}, errdefs.Invalid("tmpfs %s: option %q is not supported: use size=, mode=, ro or rw", target, o)
		}
	}
	return m, nil
}
