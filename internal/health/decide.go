package health

import (
	"time"

	"skiff.dev/skiff/api"
)

// Initial is the health of a container with a check that has just
// started: starting, with no failures and no log.
func Initial() *api.Health {
	return &api.Health{Status: api.HealthStarting}
}

// Record returns h after the check result r of a container started at
// startedAt: a pass makes it healthy and clears the streak; a failure
// adds to the streak, unless the container is still starting within
// the start period, and makes it unhealthy once the streak reaches
// Retries. r joins the log (the last api.HealthLogKept kept), its
// output cut to api.HealthOutputMax bytes. h is not modified.
func Record(s Settings, h api.Health, startedAt time.Time, r api.HealthResult) api.Health {
	if len(r.Output) > api.HealthOutputMax {
		r.Output = r.Output[:api.HealthOutputMax]
	}
	out := api.Health{Status: h.Status, FailingStreak: h.FailingStreak}
	if out.Status == "" {
		out.Status = api.HealthStarting
	}
	keep := h.Log
	if len(keep) >= api.HealthLogKept {
		keep = keep[len(keep)-api.HealthLogKept+1:]
	}
	out.Log = append(append(make([]api.HealthResult, 0, len(keep)+1), keep...), r)
	if r.ExitCode == 0 {
		out.Status, out.FailingStreak = api.HealthHealthy, 0
		return out
	}
	if out.Status == api.HealthStarting && r.Start.Sub(startedAt) < s.StartPeriod {
		return out
	}
	out.FailingStreak++
	if out.FailingStreak >= s.Retries {
		out.Status = api.HealthUnhealthy
	}
	return out
}

// RampFirst is the delay of the first check of a starting container
// whose start interval is the default (Settings.RampUp).
const RampFirst = 100 * time.Millisecond

// Next is how long after a check (or the start) the next one runs: the
// start interval while the container is starting within its start
// period, the interval otherwise. With RampUp the start interval is
// reached gradually: half the time since the start, at least RampFirst,
// so a service ready in its first second is seen healthy within about
// half again that time, for a handful of extra checks.
func Next(s Settings, status string, startedAt, now time.Time) time.Duration {
	since := now.Sub(startedAt)
	if status != api.HealthStarting || since >= s.StartPeriod {
		return s.Interval
	}
	if s.RampUp {
		return min(s.StartInterval, max(RampFirst, since/2))
	}
	return s.StartInterval
}
