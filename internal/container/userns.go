package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/userns"
)

// A container with a user namespace (Config.UserNS "auto") has, in its
// directory:
//   - userns: its pinned user namespace, made at each start together with
//     its network namespace (at Networks.NetNSPath), which it owns, and
//     joined by the runtime;
//   - idmap/: mount points of idmapped mounts that live only while they
//     are cloned: the image layers while the overlay is mounted, and the
//     named volumes ("m<index>" for Config.Mounts[index]) while the
//     runtime creates the container.
//
// The directory is group-owned by the range's first host gid, mode 0710,
// so that container root can reach its rootfs and nobody else more.

// usernsPin is where a container's user namespace is pinned.
func usernsPin(dir string) string { return filepath.Join(dir, "userns") }

// idmapDir holds the container's transient idmapped mount points.
func idmapDir(dir string) string { return filepath.Join(dir, "idmap") }

// rangeOwner is the owner of a container's id range: owner as asked, or
// the container itself.
func rangeOwner(owner, id string) string {
	if owner == "" {
		return "container/" + id
	}
	return owner
}

// allocIDMap returns owner's id range, choosing a free one the first
// time; a range still used by a container (of a deleted App) is not
// chosen.
func (m *Manager) allocIDMap(ctx context.Context, owner string) (*api.IDMap, error) {
	if err := searchableByOthers(m.cfg.Dir); err != nil {
		return nil, err
	}
	// The ranges in use are read first: the store's transaction must not
	// wait for a container's lock, which is held across store writes.
	n, err := m.cfg.Store.IDRange(ctx, owner, userns.MaxRanges, m.rangesInUse())
	if err != nil {
		return nil, fmt.Errorf("choose a user namespace id range: %w", err)
	}
	idm := userns.RangeMap(n)
	return &idm, nil
}

// rangesInUse are the indexes of the ranges known containers map.
func (m *Manager) rangesInUse() map[int]bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	used := map[int]bool{}
	for _, e := range m.byID {
		e.mu.Lock()
		idm := e.rec.IDMap
		e.mu.Unlock()
		if idm != nil {
			if i, ok := userns.RangeIndex(*idm); ok {
				used[i] = true
			}
		}
	}
	return used
}

// releaseIDMap frees the range of a removed container that owned it.
func (m *Manager) releaseIDMap(ctx context.Context, id string, idm *api.IDMap) {
	if idm == nil {
		return
	}
	if err := m.cfg.Store.ReleaseIDRange(ctx, rangeOwner("", id)); err != nil {
		m.log.Warn("release user namespace id range", "id", id[:12], "err", err)
	}
}

// searchableByOthers checks that container root, an unprivileged host
// uid, can reach dir: the runtime resolves the rootfs path as that uid.
func searchableByOthers(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check the containers directory: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return errdefs.Unavailable("a container with a user namespace cannot reach its root filesystem: %s is mode %04o; make it searchable (chmod o+x %s) or use --userns host", d, st.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}

// withUserNS calls fn with a user namespace of mapping idm: the spare
// one of a kept range, else one a holder makes.
func (m *Manager) withUserNS(idm api.IDMap, fn func(fd int) error) error {
	if m.spares != nil && m.spares.Kept(idm) {
		fd, err := m.spares.OpenUser(idm)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	}
	return userns.WithHolder(idm, false, func(pid int) error {
		fd, err := userns.OpenUserNS(pid)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	})
}

// mountRootfs mounts the container's overlay root, each image layer
// through an idmapped mount when idm is set (upper keeps what the
// container writes with its mapped owners), then calls then, if not nil.
func (m *Manager) mountRootfs(dir string, layers []string, idm *api.IDMap, then func() error) error {
	upper, work, target := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	if then == nil {
		then = func() error { return nil }
	}
	if idm == nil {
		if err := m.cfg.Mounter.Mount(layers, upper, work, target); err != nil {
			return err
		}
		return then()
	}
	if err := ownDir(dir, idm); err != nil {
		return err
	}
	return m.withUserNS(*idm, func(fd int) error {
		if len(layers) == 0 {
			empty := filepath.Join(dir, "lower-empty")
			if err := os.MkdirAll(empty, 0o755); err != nil {
				return fmt.Errorf("create the empty lower directory of an image without layers: %w", err)
			}
			layers = []string{empty}
		}
		var mapped []string
		defer func() {
			for _, p := range mapped {
				userns.Detach(p)
			}
		}()
		for i, l := range layers {
			p := filepath.Join(idmapDir(dir), "layer"+strconv.Itoa(i))
			if err := userns.MountIDMapped(fd, l, p); err != nil {
				return err
			}
			mapped = append(mapped, p)
		}
		if err := m.cfg.Mounter.Mount(mapped, upper, work, target); err != nil {
			return err
		}
		return then()
	})
}

// ownDir lets container root (the range's first gid) search the
// container's directory, and only search it.
func ownDir(dir string, idm *api.IDMap) error {
	if err := os.Chown(dir, 0, int(idm.HostID)); err != nil {
		return fmt.Errorf("give the container directory to its id range: %w", err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("give the container directory to its id range: %w", err)
	}
	return nil
}

// fillVolumeMapped fills the empty volume directory src as fillVolume
// does from the container's idmapped view of the image, then gives the
// copies the image's own owners, so that a volume holds the same on disk
// whatever the user namespace of the container that filled it.
func fillVolumeMapped(idm api.IDMap, rootfs, target, src string) error {
	if err := fillVolume(rootfs, target, src); err != nil {
		return err
	}
	return userns.Unshift(src, idm)
}

// volumeMountPoint is where named volume Config.Mounts[i] of a container
// with a user namespace is mounted, idmapped, for the runtime to bind.
func volumeMountPoint(dir string, i int) string {
	return filepath.Join(idmapDir(dir), "m"+strconv.Itoa(i))
}

// mapVolumes mounts each named volume of a container with a user
// namespace, idmapped by its pinned namespace, where its spec names it;
// the returned function detaches them once the runtime has made the
// container's own mounts.
func (m *Manager) mapVolumes(dir string, mounts []api.Mount) (detach func(), err error) {
	var made []string
	detach = func() {
		for _, p := range made {
			if err := userns.Detach(p); err != nil {
				m.log.Warn("detach idmapped volume", "path", p, "err", err)
			}
		}
	}
	var fd = -1
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			detach()
		}
	}()
	for i, mt := range mounts {
		if mt.Type != api.MountVolume {
			continue
		}
		if fd < 0 {
			if fd, err = unix.Open(usernsPin(dir), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				return nil, fmt.Errorf("open the container's user namespace: %w", err)
			}
		}
		src := filepath.Join(m.cfg.VolumesDir, mt.Source, "_data")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, fmt.Errorf("volume %s: %w", mt.Source, err)
		}
		p := volumeMountPoint(dir, i)
		userns.Detach(p)
		if err := userns.MountIDMapped(fd, src, p); err != nil {
			return nil, fmt.Errorf("volume %s: %w", mt.Source, err)
		}
		made = append(made, p)
	}
	return detach, nil
}

// pinNamespaces makes the user namespace of a container with a user
// namespace at the path its spec names, and, unless netns is "", a
// network namespace owned by it at netns: a kept range's spare pair if
// it has one, else with a holder; a kept range's next pair is then made
// in the background.
func (m *Manager) pinNamespaces(id string, idm api.IDMap, netns string) error {
	dir := m.containerDir(id)
	if m.spares != nil && m.spares.Kept(idm) {
		// The next pair is made whether this start takes one or, having
		// found none (after a reboot, a failed refill), makes its own.
		defer m.refill(idm)
		took, err := m.spares.Take(idm, usernsPin(dir), netns)
		if took {
			return nil
		}
		if err != nil {
			m.log.Warn("take the spare user namespace; making one", "id", id[:12], "err", err)
		}
	}
	err := userns.WithHolder(idm, netns != "", func(pid int) error {
		if err := userns.Pin(pid, userns.User, usernsPin(dir)); err != nil {
			return err
		}
		if netns != "" {
			return userns.Pin(pid, userns.Network, netns)
		}
		return nil
	})
	if err != nil {
		m.unpinNamespaces(id)
	}
	return err
}

// unpinNamespaces removes what pinNamespaces made (the network's
// Teardown normally removes the network namespace first).
func (m *Manager) unpinNamespaces(id string) {
	if m.cfg.Networks != nil {
		if err := userns.Unpin(m.cfg.Networks.NetNSPath(id)); err != nil {
			m.log.Warn("unpin network namespace", "id", id[:12], "err", err)
		}
	}
	if err := userns.Unpin(usernsPin(m.containerDir(id))); err != nil {
		m.log.Warn("unpin user namespace", "id", id[:12], "err", err)
	}
}

// clearDir makes a container directory safe to delete: its user
// namespace unpinned and every idmapped mount point detached, so that
// removing the directory can never reach into a mounted volume.
func clearDir(dir string) error {
	if err := userns.Unpin(usernsPin(dir)); err != nil {
		return err
	}
	ents, err := os.ReadDir(idmapDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read idmapped mount points: %w", err)
	}
	for _, d := range ents {
		if err := userns.Detach(filepath.Join(idmapDir(dir), d.Name())); err != nil {
			return err
		}
	}
	return nil
}

// keepRange keeps spare namespaces for the id range idm of an App, made
// now if missing, so that its replicas' starts need no holder.
func (m *Manager) keepRange(idm api.IDMap) error {
	if m.spares == nil {
		return nil
	}
	return m.spares.Keep(idm)
}

// refillDelay is how long after a start took a range's spare pair the
// next is made: the holder that makes it (a fork of the daemon) would
// otherwise take CPU from the start itself (runtime create, the app's
// start-up, its first answer).
const refillDelay = 500 * time.Millisecond

// refill makes a kept range's next spare pair in the background, after
// refillDelay.
func (m *Manager) refill(idm api.IDMap) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-time.After(refillDelay):
		case <-m.bg.Done():
			return
		}
		if err := m.spares.Refill(idm); err != nil {
			m.log.Warn("make spare user namespace", "host-ids-from", idm.HostID, "err", err)
		}
	}()
}

// ReleaseIDRange frees owner's id range and drops its spare namespaces
// once no container maps it; an owner without a range is fine.
func (m *Manager) ReleaseIDRange(ctx context.Context, owner string) error {
	if err := m.cfg.Store.ReleaseIDRange(ctx, owner); err != nil {
		return err
	}
	m.collectSpares(ctx)
	return nil
}

// collectSpares drops the spare namespaces of the ranges that no owner
// holds and no container maps (an App deleted and its replicas gone).
func (m *Manager) collectSpares(ctx context.Context) {
	if m.spares == nil {
		return
	}
	kept, err := m.spares.Ranges()
	if err != nil || len(kept) == 0 {
		return
	}
	// Read in the same order as allocIDMap: containers, then the store.
	used := m.rangesInUse()
	owned, err := m.cfg.Store.OwnedIDRanges(ctx)
	if err != nil {
		m.log.Warn("list user namespace id ranges", "err", err)
		return
	}
	for _, n := range kept {
		if owned[n] || used[n] {
			continue
		}
		if err := m.spares.Drop(n); err != nil {
			m.log.Warn("drop spare user namespace", "range", n, "err", err)
		}
	}
}
