package container

import (
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// checkRunOpts refuses bad devices, log settings and security options
// when the container is created, not first when it starts.
func checkRunOpts(c *api.ContainerConfig) error {
	for i, d := range c.Devices {
		if err := d.Check(); err != nil {
			return errdefs.Invalid("config.devices[%d]: %w", i, err)
		}
	}
	if err := c.Log.Check(); err != nil {
		return errdefs.Invalid("config.log: %w", err)
	}
	if s := c.Seccomp; s != "" && s != api.SeccompUnconfined && !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return errdefs.Invalid("config.seccomp: give %s or a profile's JSON text", api.SeccompUnconfined)
	}
	if c.AppArmor != "" && c.AppArmor != "unconfined" {
		return errdefs.Invalid("config.apparmor %q: this host's kernel has no AppArmor: only unconfined is accepted", c.AppArmor)
	}
	return nil
}

// logLimits are the log's size cap and file count for the runtime: the
// container's own, else the daemon's cap (maxSize) and 2 files.
func logLimits(c api.LogConfig, maxSize int64) (int64, int) {
	if c.MaxSize > 0 {
		maxSize = c.MaxSize
	}
	files := c.MaxFiles
	if files == 0 {
		files = 2
	}
	return maxSize, files
}
