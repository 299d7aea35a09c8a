package compose

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// runOpts sets cfg's log, devices and security options from s's
// logging (docker's json-file, local and none drivers with max-size and
// max-file, as skiff run --log-driver/--log-opt), devices and
// security_opt (a seccomp profile path is read relative to the project
// directory), refusing bad values with the key's place in the file.
func runOpts(p *types.Project, s types.ServiceConfig, cfg *api.ContainerConfig) error {
	bad := func(key string, err error) error {
		return errdefs.Invalid("%s: service %s: %w", locate(p, s.Name, key), s.Name, err)
	}
	if l := s.Logging; l != nil {
		if err := api.CheckLogDriver(l.Driver); err != nil {
			return bad("logging", err)
		}
		cfg.Log.Driver = l.Driver
		for _, k := range sortedKeys(l.Options) {
			if err := api.ParseLogOpt(&cfg.Log, k+"="+l.Options[k]); err != nil {
				return bad("logging", err)
			}
		}
	}
	for _, d := range s.Devices {
		dm := api.DeviceMapping{PathOnHost: d.Source, PathInContainer: d.Target, CgroupPermissions: d.Permissions}
		if dm.PathInContainer == dm.PathOnHost {
			dm.PathInContainer = ""
		}
		if err := dm.Check(); err != nil {
			return bad("devices", err)
		}
		cfg.Devices = append(cfg.Devices, dm)
	}
	for _, o := range s.SecurityOpt {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if ok && k == "seccomp" && v != api.SeccompUnconfined {
			if !filepath.IsAbs(v) {
				v = filepath.Join(p.WorkingDir, v)
			}
			data, err := os.ReadFile(v)
			if err != nil {
				return bad("security_opt", errdefs.Invalid("read the seccomp profile: %w", err))
			}
			o = "seccomp=" + string(data)
		}
		if err := api.ParseSecurityOpt(cfg, o); err != nil {
			return bad("security_opt", err)
		}
	}
	return nil
}
