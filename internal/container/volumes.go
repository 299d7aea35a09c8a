package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Named volumes live in VolumesDir/NAME: the data in _data, the labels
// in labels.json. A volume is created by VolumeCreate or by the first
// container that mounts it, and removed only by VolumeRemove or
// VolumePrune, never while a container (running or not) mounts it.

func (m *Manager) volumeDir(name string) (string, error) {
	if !volumeNameRE.MatchString(name) {
		return "", errdefs.Invalid("invalid volume name %q: use letters, digits, '_', '.' or '-'", name)
	}
	if m.cfg.VolumesDir == "" {
		return "", errdefs.NotImplemented("this daemon has no volume directory")
	}
	return filepath.Join(m.cfg.VolumesDir, name), nil
}

// VolumeCreate creates a named volume; an existing one is returned
// unchanged.
func (m *Manager) VolumeCreate(ctx context.Context, req api.VolumeCreateRequest) (api.Volume, error) {
	dir, err := m.volumeDir(req.Name)
	if err != nil {
		return api.Volume{}, err
	}
	m.volMu.Lock()
	defer m.volMu.Unlock()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
			return api.Volume{}, fmt.Errorf("create volume %s: %w", req.Name, err)
		}
		if len(req.Labels) > 0 {
			b, _ := json.Marshal(req.Labels)
			if err := writeFileSync(filepath.Join(dir, "labels.json"), b); err != nil {
				return api.Volume{}, fmt.Errorf("create volume %s: %w", req.Name, err)
			}
		}
	}
	return m.VolumeInspect(ctx, req.Name)
}

// VolumeInspect returns one volume.
func (m *Manager) VolumeInspect(ctx context.Context, name string) (api.Volume, error) {
	dir, err := m.volumeDir(name)
	if err != nil {
		return api.Volume{}, err
	}
	st, err := os.Stat(filepath.Join(dir, "_data"))
	if err != nil {
		return api.Volume{}, errdefs.NotFound("no such volume: %s", name)
	}
	v := api.Volume{Name: name, Mountpoint: filepath.Join(dir, "_data"), Created: st.ModTime().UTC(), UsedBy: m.volumeUsers(name)}
	if b, err := os.ReadFile(filepath.Join(dir, "labels.json")); err == nil {
		json.Unmarshal(b, &v.Labels)
	}
	return v, nil
}

// VolumeList returns the volumes by name.
func (m *Manager) VolumeList(ctx context.Context) ([]api.Volume, error) {
	if m.cfg.VolumesDir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(m.cfg.VolumesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out := []api.Volume{}
	for _, e := range ents {
		if v, err := m.VolumeInspect(ctx, e.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// volumeUsers are the names of the containers that mount volume name.
func (m *Manager) volumeUsers(name string) []string {
	var users []string
	for _, c := range m.List(context.Background(), true) {
		for _, mt := range c.Config.Mounts {
			if mt.Type == api.MountVolume && mt.Source == name {
				users = append(users, c.Name)
				break
			}
		}
	}
	sort.Strings(users)
	return users
}

// VolumeRemove removes a volume and its data. A volume that a container
// mounts is a conflict naming the containers.
func (m *Manager) VolumeRemove(ctx context.Context, name string) error {
	dir, err := m.volumeDir(name)
	if err != nil {
		return err
	}
	m.volMu.Lock()
	defer m.volMu.Unlock()
	if _, err := os.Stat(dir); err != nil {
		return errdefs.NotFound("no such volume: %s", name)
	}
	if users := m.volumeUsers(name); len(users) > 0 {
		return errdefs.Conflict("volume %s is in use by container %v: remove the container first", name, users)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// VolumePrune removes every volume no container mounts.
func (m *Manager) VolumePrune(ctx context.Context) (api.VolumePruneResponse, error) {
	vols, err := m.VolumeList(ctx)
	if err != nil {
		return api.VolumePruneResponse{}, err
	}
	res := api.VolumePruneResponse{Deleted: []string{}}
	for _, v := range vols {
		if len(v.UsedBy) > 0 {
			continue
		}
		if err := m.VolumeRemove(ctx, v.Name); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				continue
			}
			return res, err
		}
		res.Deleted = append(res.Deleted, v.Name)
	}
	return res, nil
}

// checkMountFields refuses the options of one mount type on another and
// an unknown bind propagation.
func checkMountFields(i int, mt api.Mount) error {
	switch {
	case mt.BindPropagation != "" && mt.Type != api.MountBind:
		return errdefs.Invalid("mounts[%d]: bindPropagation is only for bind mounts", i)
	case mt.BindPropagation != "" && !slices.Contains(api.BindPropagations, mt.BindPropagation):
		return errdefs.Invalid("mounts[%d]: bind propagation %q: use one of %s", i, mt.BindPropagation, strings.Join(api.BindPropagations, ", "))
	case mt.VolumeNoCopy && mt.Type != api.MountVolume:
		return errdefs.Invalid("mounts[%d]: volumeNoCopy is only for volumes", i)
	}
	return nil
}
