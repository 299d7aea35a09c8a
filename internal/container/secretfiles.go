package container

import (
	"context"
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/inroot"
)

// SecretValues reads every key of a version of a secret. A SecretResolver
// that is one too can fill secret mounts that name no items.
type SecretValues interface {
	Values(ctx context.Context, name string, version int64) (map[string][]byte, error)
}

// secretTmpfsSize bounds a secret mount's tmpfs: twice what a secret may
// hold.
const secretTmpfsSize = 2 * api.MaxSecretSize

// secretSpecMounts returns the spec mounts of ms: an empty tmpfs each,
// which writeSecretFiles fills once the runtime has created the
// container. Mounts with the same target share one tmpfs.
func secretSpecMounts(ms []api.SecretMount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Target] {
			continue
		}
		seen[m.Target] = true
		out = append(out, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=0755", fmt.Sprintf("size=%d", secretTmpfsSize)}})
	}
	return out
}

// checkSecretMounts refuses secret mounts without an absolute clean
// target, a secret, a version or with items that cannot name files.
func checkSecretMounts(ms []api.SecretMount) error {
	for _, m := range ms {
		if !path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target || m.Target == "/" {
			return errdefs.Invalid("secret mount target %q must be an absolute clean path other than /", m.Target)
		}
		if m.Secret == "" || m.Version < 1 {
			return errdefs.Invalid("secret mount %s needs a secret and a version from 1", m.Target)
		}
		if m.Mode&^0o777 != 0 {
			return errdefs.Invalid("secret mount %s: mode %o has bits other than permissions: use at most 0777", m.Target, m.Mode)
		}
		for _, it := range m.Items {
			if name := fileOf(it); it.Key == "" || !api.SecretFileName(name) {
				return errdefs.Invalid("secret mount %s: key %q as file %q: use letters, digits, '-', '_' and '.', other than . and ..", m.Target, it.Key, name)
			}
		}
	}
	return nil
}

func fileOf(it api.SecretItem) string {
	if it.Path != "" {
		return it.Path
	}
	return it.Key
}

// writeSecretFiles writes the files of ms into their tmpfs in the
// container whose init process (created, not started) is pid: each of
// mode 0400, owned by the container's user as the host sees it (through
// the spec's user namespace mappings, if any). The target is resolved
// inside the container's root (openat2 RESOLVE_IN_ROOT: a symlink of the
// image cannot lead out of it) and must be a tmpfs, so no value is ever
// written to a disk.
func (m *Manager) writeSecretFiles(ctx context.Context, pid int, spec *specs.Spec, ms []api.SecretMount) error {
	if len(ms) == 0 {
		return nil
	}
	if m.cfg.Secrets == nil {
		return errdefs.Unavailable("this daemon has no secrets store")
	}
	root := fmt.Sprintf("/proc/%d/root", pid)
	for _, sm := range ms {
		own, err := secretOwner(spec, sm)
		if err != nil {
			return err
		}
		files, err := m.secretFiles(ctx, sm)
		if err != nil {
			return err
		}
		if err := writeFilesIn(root, sm.Target, files, own); err != nil {
			return fmt.Errorf("secret %s at %s: %w", sm.Secret, sm.Target, err)
		}
	}
	return nil
}

// secretFiles returns the files of sm, by name.
func (m *Manager) secretFiles(ctx context.Context, sm api.SecretMount) (map[string][]byte, error) {
	files := map[string][]byte{}
	if len(sm.Items) > 0 {
		for _, it := range sm.Items {
			v, err := m.cfg.Secrets.Resolve(ctx, sm.Secret, sm.Version, it.Key)
			if err != nil {
				return nil, err
			}
			files[fileOf(it)] = v
		}
		return files, nil
	}
	all, ok := m.cfg.Secrets.(SecretValues)
	if !ok {
		return nil, errdefs.NotImplemented("secret mount %s names no items, and this daemon's secrets cannot list keys", sm.Target)
	}
	vals, err := all.Values(ctx, sm.Secret, sm.Version)
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if !api.SecretFileName(k) {
			return nil, errdefs.Invalid("secret %s: key %q cannot name a file: list the volume's items with a path for it", sm.Secret, k)
		}
		files[k] = vals[k]
	}
	return files, nil
}

// fileOwner is the host owner and the mode of a secret mount's files.
type fileOwner struct {
	uid, gid int
	mode     uint32
	// creator is the host uid and gid of the container's root when it has
	// a user namespace (-1 otherwise): a tmpfs mounted in that namespace
	// takes new files only from ids it maps.
	creatorUID, creatorGID int
}

// secretOwner returns the host owner and mode of sm's files: sm's UID,
// GID and Mode, else the spec's process user and 0400; ids are mapped
// through the spec's user namespace mappings when it has them.
func secretOwner(spec *specs.Spec, sm api.SecretMount) (fileOwner, error) {
	if spec.Process == nil {
		return fileOwner{}, errdefs.Invalid("the container's spec has no process")
	}
	u, g := spec.Process.User.UID, spec.Process.User.GID
	if sm.UID != nil {
		u = *sm.UID
	}
	if sm.GID != nil {
		g = *sm.GID
	}
	own := fileOwner{uid: int(u), gid: int(g), mode: 0o400, creatorUID: -1, creatorGID: -1}
	if sm.Mode != 0 {
		own.mode = sm.Mode
	}
	if spec.Linux == nil {
		return own, nil
	}
	hu, ok := mapID(u, spec.Linux.UIDMappings)
	hg, ok2 := mapID(g, spec.Linux.GIDMappings)
	if !ok || !ok2 {
		return fileOwner{}, errdefs.Invalid("secret %s: owner %d:%d is not mapped in the container's user namespace", sm.Secret, u, g)
	}
	own.uid, own.gid = int(hu), int(hg)
	if len(spec.Linux.UIDMappings) > 0 {
		ru, ok := mapID(0, spec.Linux.UIDMappings)
		rg, ok2 := mapID(0, spec.Linux.GIDMappings)
		if ok && ok2 {
			own.creatorUID, own.creatorGID = int(ru), int(rg)
		}
	}
	return own, nil
}

// writeFilesIn writes files into the tmpfs at target inside root.
func writeFilesIn(root, target string, files map[string][]byte, own fileOwner) error {
	dir, err := inroot.OpenDir(root, target)
	if err != nil {
		return err
	}
	defer dir.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &fs); err != nil {
		return err
	}
	if fs.Type != unix.TMPFS_MAGIC {
		return errdefs.Unavailable("%s is not the tmpfs made for the secret", target)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := writeFileAt(int(dir.Fd()), name, files[name], own); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// writeFileAt writes data to the file name of dir, with own's mode and
// owner; a symlink in its place is not followed.
func writeFileAt(dir int, name string, data []byte, own fileOwner) error {
	fd, err := createAs(dir, name, own.creatorUID, own.creatorGID)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err != nil {
			return err
		}
		data = data[n:]
	}
	if err := unix.Fchown(fd, own.uid, own.gid); err != nil {
		return err
	}
	return unix.Fchmod(fd, own.mode)
}

// createAs opens name in dir for writing, created mode 0400. With a uid
// and gid (not -1) the file is created with them as this thread's
// filesystem ids, as the kernel requires in a filesystem mounted in a
// user namespace that does not map host root; the thread then gets root's
// back, so the caller can still chown the file.
func createAs(dir int, name string, uid, gid int) (int, error) {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if uid < 0 || gid < 0 {
		return unix.Openat(dir, name, flags, 0o400)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	fd, err := unix.Openat(dir, name, flags, 0o400)
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	return fd, err
}

// mapID maps a container id to the host through ms (none: unchanged).
func mapID(id uint32, ms []specs.LinuxIDMapping) (uint32, bool) {
	if len(ms) == 0 {
		return id, true
	}
	for _, m := range ms {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}
