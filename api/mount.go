package api

import (
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"

	"skiff.dev/skiff/api/errdefs"
)

// Bind propagation modes of Mount.BindPropagation (mount(8)'s names).
var BindPropagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// ParseMount parses docker's --mount syntax: comma-separated KEY=VALUE
// fields (CSV, so a value may be quoted), such as
// "type=bind,source=/srv,target=/data,readonly". The keys are type (bind,
// volume or tmpfs; default volume), source or src, target, destination or
// dst, readonly or ro (alone or =true|false), bind-propagation,
// volume-nocopy, tmpfs-size and tmpfs-mode. A volume without a source is
// left without one (the caller names an anonymous volume); a relative
// bind source is left for the caller to make absolute. An unknown key, a key of
// another type or a bad value is ErrInvalid naming it.
func ParseMount(s string) (Mount, error) {
	bad := func(format string, args ...any) (Mount, error) {
		return Mount{}, errdefs.Invalid("invalid --mount %q: "+format, append([]any{s}, args...)...)
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return bad("%v", strings.TrimPrefix(err.Error(), "parse error on line 1, "))
	}
	m := Mount{Type: MountVolume}
	for _, f := range fields {
		k, v, hasValue := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		flag := func() (bool, error) {
			if !hasValue {
				return true, nil
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, errdefs.Invalid("invalid --mount %q: %s=%q is not true or false", s, k, v)
			}
			return b, nil
		}
		switch k {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			if m.ReadOnly, err = flag(); err != nil {
				return Mount{}, err
			}
		case "bind-propagation":
			if !slices.Contains(BindPropagations, v) {
				return bad("bind-propagation %q: use one of %s", v, strings.Join(BindPropagations, ", "))
			}
			m.BindPropagation = v
		case "volume-nocopy":
			if m.VolumeNoCopy, err = flag(); err != nil {
				return Mount{}, err
			}
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n <= 0 {
				return bad("tmpfs-size %q is not a size like 64m", v)
			}
			m.TmpfsSize = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n&^0o7777 != 0 {
				return bad("tmpfs-mode %q is not an octal mode like 1777 or 0755", v)
			}
			m.TmpfsMode = uint32(n)
		case "consistency":
			// docker's macOS hint; nothing to do on Linux.
		default:
			return bad("key %q is not supported: use type, source, target, readonly, bind-propagation, volume-nocopy, tmpfs-size or tmpfs-mode", k)
		}
	}
	return m, checkMountKeys(s, m)
}

// checkMountKeys refuses a mount of type m.Type with another type's keys
// or without what its type needs.
func checkMountKeys(s string, m Mount) error {
	bad := func(format string, args ...any) error {
		return errdefs.Invalid("invalid --mount %q: "+format, append([]any{s}, args...)...)
	}
	switch m.Type {
	case MountBind, MountVolume, MountTmpfs:
	default:
		return bad("type %q is not supported: use bind, volume or tmpfs", m.Type)
	}
	if !path.IsAbs(m.Target) {
		return bad("target %q must be an absolute path inside the container (target=/path)", m.Target)
	}
	switch {
	case m.BindPropagation != "" && m.Type != MountBind:
		return bad("bind-propagation is only for type=bind")
	case m.VolumeNoCopy && m.Type != MountVolume:
		return bad("volume-nocopy is only for type=volume")
	case (m.TmpfsSize != 0 || m.TmpfsMode != 0) && m.Type != MountTmpfs:
		return bad("tmpfs-size and tmpfs-mode are only for type=tmpfs")
	case m.Type == MountTmpfs && m.Source != "":
		return bad("a tmpfs has no source: leave source out")
	case m.Type == MountBind && m.Source == "":
		return bad("a bind mount needs source=/host/path")
	}
	return nil
}

// AnonymousVolume names a new anonymous volume as Docker does: 64 random
// hex digits.
func AnonymousVolume() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
