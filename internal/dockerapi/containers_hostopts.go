package dockerapi

import (
	"fmt"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// securityDevicesLog maps SecurityOpt, Devices and LogConfig.
func securityDevicesLog(cfg *api.ContainerConfig, hc *container.HostConfig) error {
	for _, o := range hc.SecurityOpt {
		if err := api.ParseSecurityOpt(cfg, o); err != nil {
			return fmt.Errorf("HostConfig.SecurityOpt: %w", err)
		}
	}
	for _, d := range hc.Devices {
		dm := api.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions}
		if err := dm.Check(); err != nil {
			return fmt.Errorf("HostConfig.Devices: %w", err)
		}
		cfg.Devices = append(cfg.Devices, dm)
	}
	if err := api.CheckLogDriver(hc.LogConfig.Type); err != nil {
		return fmt.Errorf("HostConfig.LogConfig.Type (--log-driver): %w", err)
	}
	cfg.Log.Driver = hc.LogConfig.Type
	for k, v := range hc.LogConfig.Config {
		if err := api.ParseLogOpt(&cfg.Log, k+"="+v); err != nil {
			return fmt.Errorf("HostConfig.LogConfig.Config (--log-opt): %w", err)
		}
	}
	return nil
}

// mountOf maps one of HostConfig.Mounts (--mount), refusing the options
// skiff has nothing underneath for, naming them.
func mountOf(m mount.Mount) (api.Mount, error) {
	am := api.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	bad := func(field, hint string) (api.Mount, error) {
		return api.Mount{}, errdefs.Invalid("HostConfig.Mounts at %s: %s is not supported by skiff: %s", m.Target, field, hint)
	}
	switch m.Type {
	case mount.TypeBind:
		am.Type = api.MountBind
		if o := m.BindOptions; o != nil {
			if o.NonRecursive || o.ReadOnlyNonRecursive || o.CreateMountpoint {
				return bad("BindOptions (bind-nonrecursive, bind-recursive, bind-create-src)", "leave them out: bind mounts are recursive and their source must exist")
			}
			am.BindPropagation = string(o.Propagation)
		}
	case mount.TypeVolume:
		am.Type = api.MountVolume
		if am.Source == "" {
			am.Source = api.AnonymousVolume()
		}
		if o := m.VolumeOptions; o != nil {
			if o.DriverConfig != nil && o.DriverConfig.Name != "" && o.DriverConfig.Name != "local" || o.DriverConfig != nil && len(o.DriverConfig.Options) > 0 {
				return bad("VolumeOptions.DriverConfig (volume-driver, volume-opt)", "skiff's volumes are local directories")
			}
			if o.Subpath != "" {
				return bad("VolumeOptions.Subpath (volume-subpath)", "mount the whole volume")
			}
			am.VolumeNoCopy = o.NoCopy
		}
	case mount.TypeTmpfs:
		am.Type = api.MountTmpfs
		if m.TmpfsOptions != nil {
			if len(m.TmpfsOptions.Options) > 0 {
				return bad("TmpfsOptions.Options (tmpfs-option)", "use tmpfs-size and tmpfs-mode")
			}
			am.TmpfsSize = m.TmpfsOptions.SizeBytes
			am.TmpfsMode = unixMode(m.TmpfsOptions.Mode)
		}
	default:
		return api.Mount{}, errdefs.Invalid("HostConfig.Mounts: type %q at %s is not supported: use bind, volume or tmpfs", m.Type, m.Target)
	}
	return am, nil
}

// logConfigOf is a container's LogConfig in Docker's form.
func logConfigOf(c api.LogConfig) container.LogConfig {
	lc := container.LogConfig{Type: c.Driver}
	if lc.Type == "" {
		lc.Type = "json-file"
	}
	if c.MaxSize > 0 || c.MaxFiles > 0 {
		lc.Config = map[string]string{}
	}
	if c.MaxSize > 0 {
		lc.Config["max-size"] = strconv.FormatInt(c.MaxSize, 10)
	}
	if c.MaxFiles > 0 {
		lc.Config["max-file"] = strconv.Itoa(c.MaxFiles)
	}
	return lc
}
