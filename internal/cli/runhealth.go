package cli

import (
	"time"

	"github.com/spf13/pflag"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// healthFlags are run's and create's --health-* flags.
type healthFlags struct {
	cmd                                       string
	interval, timeout, startPeriod, startIntv time.Duration
	retries                                   int
	none                                      bool
}

func (f *healthFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cmd, "health-cmd", "", "command the daemon runs in the container to check its health (with /bin/sh -c)")
	fl.DurationVar(&f.interval, "health-interval", 0, "time between health checks (default 30s)")
	fl.DurationVar(&f.timeout, "health-timeout", 0, "time a health check may run before it counts as failed (default 30s)")
	fl.DurationVar(&f.startPeriod, "health-start-period", 0, "time after the start when failed checks do not count until one passes (default 0s)")
	fl.DurationVar(&f.startIntv, "health-start-interval", 0, "time between health checks during the start period (default 5s)")
	fl.IntVar(&f.retries, "health-retries", 0, "failed checks in a row that make the container unhealthy (default 3)")
	fl.BoolVar(&f.none, "no-healthcheck", false, "run no health check, not even the image's HEALTHCHECK")
}

// apply sets cfg.Healthcheck from the flags: nil (the image's check)
// when none is given.
func (f *healthFlags) apply(cfg *api.ContainerConfig) error {
	given := f.cmd != "" || f.interval != 0 || f.timeout != 0 || f.startPeriod != 0 || f.startIntv != 0 || f.retries != 0
	if f.none {
		if given {
			return errdefs.Invalid("--no-healthcheck conflicts with the --health-* flags: give one or the other")
		}
		cfg.Healthcheck = &api.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !given {
		return nil
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--health-interval", f.interval}, {"--health-timeout", f.timeout}, {"--health-start-period", f.startPeriod}, {"--health-start-interval", f.startIntv}} {
		if d.v < 0 || d.v > 0 && d.v < time.Millisecond {
			return errdefs.Invalid("%s %s: give a duration of at least 1ms, like 10s", d.flag, d.v)
		}
	}
	if f.retries < 0 {
		return errdefs.Invalid("--health-retries %d: give 1 or more", f.retries)
	}
	h := &api.HealthConfig{Interval: f.interval, Timeout: f.timeout, StartPeriod: f.startPeriod, StartInterval: f.startIntv, Retries: f.retries}
	if f.cmd != "" {
		h.Test = []string{"CMD-SHELL", f.cmd}
	}
	cfg.Healthcheck = h
	return nil
}
