package api

import (
	"path"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// DeviceMapping puts a host device node into a container (docker run
// --device), with a device cgroup rule allowing its use.
type DeviceMapping struct {
	// PathOnHost is the host's character or block device, such as
	// /dev/fuse.
	PathOnHost string `json:"pathOnHost"`
	// PathInContainer is where it appears (default: PathOnHost).
	PathInContainer string `json:"pathInContainer,omitempty"`
	// CgroupPermissions are what the container may do with it: some of
	// r (read), w (write) and m (mknod); default rwm.
	CgroupPermissions string `json:"cgroupPermissions,omitempty"`
}

// ParseDevice parses docker's --device syntax:
// /dev/HOST[:/dev/CONTAINER][:PERMISSIONS], PERMISSIONS being some of
// r, w and m. A relative path or bad permissions are ErrInvalid.
func ParseDevice(s string) (DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := DeviceMapping{PathOnHost: parts[0]}
	switch len(parts) {
	case 1:
	case 2:
		if ValidDevicePermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return DeviceMapping{}, errdefs.Invalid("invalid --device %q: use /dev/HOST[:/dev/CONTAINER][:rwm]", s)
	}
	if err := d.Check(); err != nil {
		return DeviceMapping{}, errdefs.Invalid("invalid --device %q: %w", s, err)
	}
	return d, nil
}

// Check refuses a relative or unclean path and unknown permissions.
func (d DeviceMapping) Check() error {
	for _, p := range []string{d.PathOnHost, d.PathInContainer} {
		if p != "" && (!path.IsAbs(p) || path.Clean(p) != p) {
			return errdefs.Invalid("device path %q must be an absolute path such as /dev/fuse", p)
		}
	}
	if d.PathOnHost == "" {
		return errdefs.Invalid("a device needs its host path, such as /dev/fuse")
	}
	if d.CgroupPermissions != "" && !ValidDevicePermissions(d.CgroupPermissions) {
		return errdefs.Invalid("device permissions %q: use some of r, w and m, such as rw", d.CgroupPermissions)
	}
	return nil
}

// ValidDevicePermissions reports whether p is a non-empty set of r, w
// and m, each at most once.
func ValidDevicePermissions(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for i, c := range p {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(p[i+1:], c) {
			return false
		}
	}
	return true
}
