package dockerapi

import (
	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/health"
)

// healthConfigIn is a Docker Config.Healthcheck as skiff's (nil stays
// nil: the image's check). Durations are nanoseconds on both sides.
func healthConfigIn(h *container.HealthConfig) (*api.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	out := &api.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	if err := health.Check(out); err != nil {
		return nil, err
	}
	return out, nil
}

// healthConfigOut is skiff's health check in Docker's form.
func healthConfigOut(h *api.HealthConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	return &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// healthOut is a container's health in Docker's form.
func healthOut(h *api.Health) *container.Health {
	if h == nil {
		return nil
	}
	out := &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak, Log: []*container.HealthcheckResult{}}
	for _, r := range h.Log {
		out.Log = append(out.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
	}
	return out
}

// healthSummary is the health docker ps lists: "none" without a check.
func healthSummary(h *api.Health) *container.HealthSummary {
	if h == nil {
		return &container.HealthSummary{Status: container.NoHealthcheck}
	}
	return &container.HealthSummary{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak}
}

// healthSuffix is what docker ps adds to a running container's status.
func healthSuffix(h *api.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Status == api.HealthStarting:
		return " (health: starting)"
	}
	return " (" + h.Status + ")"
}

// matchHealth is docker's health= filter: starting, healthy, unhealthy
// or none.
func matchHealth(v string, c api.Container) bool {
	return string(healthSummary(c.State.Health).Status) == v
}
