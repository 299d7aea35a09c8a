package health

import (
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// The defaults for the settings a HealthConfig leaves at zero: docker's,
// except DefaultStartInterval. Docker checks a container in its start
// period every 5s; skiff checks it every second (never more often than
// its interval), and sooner still in the first seconds (see Next), so a
// service that is up is seen healthy at once and its dependants start
// sooner (compose's service_healthy, --wait). Once a check passes, the
// start period is over and the interval applies, so the extra checks
// last only while the container starts. A start interval the check sets
// is kept to exactly.
const (
	DefaultInterval      = 30 * time.Second
	DefaultTimeout       = 30 * time.Second
	DefaultStartPeriod   = 0
	DefaultStartInterval = time.Second
	DefaultRetries       = 3
)

// MinDuration is the smallest non-zero interval, timeout, start period
// or start interval docker accepts.
const MinDuration = time.Millisecond

// Disabled reports whether h turns health checks off (Test ["NONE"]).
func Disabled(h *api.HealthConfig) bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] == "NONE"
}

// Merge is the check a container runs: own completed by the image's
// check img, as docker does at create. own nil takes img; own without
// Test takes img's test, and img's settings where own has zero ones.
// The result is nil when neither has a check.
func Merge(own, img *api.HealthConfig) *api.HealthConfig {
	if own == nil {
		if img == nil {
			return nil
		}
		c := *img
		return &c
	}
	c := *own
	if len(c.Test) > 0 || img == nil {
		return &c
	}
	c.Test = img.Test
	if c.Interval == 0 {
		c.Interval = img.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = img.Timeout
	}
	if c.StartPeriod == 0 {
		c.StartPeriod = img.StartPeriod
	}
	if c.StartInterval == 0 {
		c.StartInterval = img.StartInterval
	}
	if c.Retries == 0 {
		c.Retries = img.Retries
	}
	return &c
}

// Check validates h (nil is valid) with errors naming the setting.
func Check(h *api.HealthConfig) error {
	if h == nil {
		return nil
	}
	if len(h.Test) > 0 {
		if _, err := Command(h.Test); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start period", h.StartPeriod}, {"start interval", h.StartInterval}} {
		if d.v < 0 || d.v > 0 && d.v < MinDuration {
			return errdefs.Invalid("health check %s %s: give 0 for the default or at least 1ms", d.name, d.v)
		}
	}
	if h.Retries < 0 {
		return errdefs.Invalid("health check retries %d: give 0 for the default (3) or more", h.Retries)
	}
	return nil
}

// Command is the argv a test runs: ["CMD", args...] runs args,
// ["CMD-SHELL", command] runs /bin/sh -c command. It is nil for ["NONE"]
// and an empty test.
func Command(test []string) ([]string, error) {
	if len(test) == 0 {
		return nil, nil
	}
	switch test[0] {
	case "NONE":
		if len(test) > 1 {
			return nil, errdefs.Invalid("health check test [NONE ...]: NONE takes nothing after it")
		}
		return nil, nil
	case "CMD":
		if len(test) < 2 || test[1] == "" {
			return nil, errdefs.Invalid("health check test [CMD]: give the command to run after CMD")
		}
		return test[1:], nil
	case "CMD-SHELL":
		if len(test) != 2 || strings.TrimSpace(test[1]) == "" {
			return nil, errdefs.Invalid("health check test %q: CMD-SHELL takes one shell command line", test)
		}
		return []string{"/bin/sh", "-c", test[1]}, nil
	}
	return nil, errdefs.Invalid("health check test %q: start it with CMD, CMD-SHELL or NONE", test)
}

// Settings are a check's settings with the defaults filled in.
type Settings struct {
	Cmd                        []string
	Interval, Timeout          time.Duration
	StartPeriod, StartInterval time.Duration
	Retries                    int
	// RampUp: the start interval is the default, so the first checks of
	// the start period come sooner (see Next).
	RampUp bool
}

// SettingsOf returns h's settings, and false when h runs no check (nil,
// NONE, no test, or a test Check refuses).
func SettingsOf(h *api.HealthConfig) (Settings, bool) {
	if h == nil {
		return Settings{}, false
	}
	cmd, err := Command(h.Test)
	if err != nil || cmd == nil {
		return Settings{}, false
	}
	or := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return v
	}
	s := Settings{
		Cmd: cmd, Interval: or(h.Interval, DefaultInterval), Timeout: or(h.Timeout, DefaultTimeout),
		StartPeriod: or(h.StartPeriod, DefaultStartPeriod), StartInterval: h.StartInterval,
		Retries: h.Retries,
	}
	if s.StartInterval <= 0 {
		// Never slower than the interval the check asked for.
		s.StartInterval = min(DefaultStartInterval, s.Interval)
		s.RampUp = true
	}
	if s.Retries <= 0 {
		s.Retries = DefaultRetries
	}
	return s, true
}
