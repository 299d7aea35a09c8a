package compose

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// logOptions are the logging options skiff honours.
var logOptions = []string{"max-size", "max-file"}

// loggingIssues reports a logging driver other than docker's names for
// skiff's own log, and options other than max-size and max-file: the
// service keeps skiff's log, with the daemon's cap.
func loggingIssues(s types.ServiceConfig) []Issue {
	l := s.Logging
	if l == nil {
		return nil
	}
	if api.CheckLogDriver(l.Driver) != nil {
		return []Issue{{s.Name, "logging.driver", "skiff keeps each container's log itself: json-file, local and none are names for it"}}
	}
	var out []Issue
	for _, k := range sortedKeys(l.Options) {
		if !slices.Contains(logOptions, k) {
			out = append(out, Issue{s.Name, "logging.options." + k, "only max-size and max-file are supported"})
		}
	}
	return out
}

// runOpts sets cfg's log, devices and security options from s's
// logging (docker's json-file, local and none drivers with max-size and
// max-file, as skiff run --log-driver/--log-opt; another driver or
// option is reported by loggingIssues and left out), devices and
// security_opt (a seccomp profile path is read relative to the project
// directory), refusing bad values with the key's place in the file.
func runOpts(p *types.Project, s types.ServiceConfig, cfg *api.ContainerConfig) error {
	bad := func(key string, err error) error {
		return errdefs.Invalid("%s: service %s: %w", locate(p, s.Name, key), s.Name, err)
	}
	if l := s.Logging; l != nil && api.CheckLogDriver(l.Driver) == nil {
		cfg.Log.Driver = l.Driver
		for _, k := range sortedKeys(l.Options) {
			if !slices.Contains(logOptions, k) {
				continue // reported by loggingIssues
			}
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
