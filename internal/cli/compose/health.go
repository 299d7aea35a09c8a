package compose

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// healthWait is the one health wait of a service shared by everything
// that waits for it during an Up.
type healthWait struct {
	once sync.Once
	err  error
}

// healthTest is the command a healthcheck runs, or nil without one.
func healthTest(h *types.HealthCheckConfig) []string {
	if h == nil || h.Disable || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", h.Test[1]}
	}
	return []string{"/bin/sh", "-c", h.Test[0]}
}

func durationOr(d *types.Duration, def time.Duration) time.Duration {
	if d == nil || *d <= 0 {
		return def
	}
	return time.Duration(*d)
}

// healthConfig is the health check the daemon runs for a service with
// healthcheck h: nil (the image's HEALTHCHECK) when h says nothing, NONE
// when it disables checks, otherwise its test and settings (the image's
// test when h gives only settings).
func healthConfig(h *types.HealthCheckConfig) *api.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disable {
		return &api.HealthConfig{Test: []string{"NONE"}}
	}
	out := &api.HealthConfig{Test: []string(h.Test)}
	if len(out.Test) > 0 {
		switch out.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			out.Test = []string{"CMD-SHELL", strings.Join(out.Test, " ")}
		}
	}
	dur := func(d *types.Duration) time.Duration {
		if d == nil || *d < 0 {
			return 0
		}
		return time.Duration(*d)
	}
	out.Interval, out.Timeout = dur(h.Interval), dur(h.Timeout)
	out.StartPeriod, out.StartInterval = dur(h.StartPeriod), dur(h.StartInterval)
	if h.Retries != nil {
		out.Retries = int(min(*h.Retries, 1<<20))
	}
	if out.Test == nil && out.Interval == 0 && out.Timeout == 0 && out.StartPeriod == 0 && out.StartInterval == 0 && out.Retries == 0 {
		return nil
	}
	return out
}

// waitHealthy returns once the daemon reports every container of s
// healthy, or fails naming the service.
func (e *Engine) waitHealthy(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	e.mu.Lock()
	if e.health == nil {
		e.health = map[string]*healthWait{}
	}
	w := e.health[s.Name]
	if w == nil {
		w = &healthWait{}
		e.health[s.Name] = w
	}
	e.mu.Unlock()
	w.once.Do(func() { w.err = e.checkHealth(ctx, p, s) })
	return w.err
}

// healthcheck is the healthcheck of s: its own, completed by its image's
// HEALTHCHECK (the test, and timings the service leaves out), or nil.
func (e *Engine) healthcheck(ctx context.Context, p *types.Project, s types.ServiceConfig) (*types.HealthCheckConfig, error) {
	h := s.HealthCheck
	if h != nil && (h.Disable || len(h.Test) > 0) {
		return h, nil
	}
	img, err := e.C.Image(ctx, ImageName(p, s))
	if err != nil {
		return nil, err
	}
	ih := img.Config.Healthcheck
	if ih == nil {
		return h, nil
	}
	out := types.HealthCheckConfig{}
	if h != nil {
		out = *h
	}
	out.Test = types.HealthCheckTest(ih.Test)
	dur := func(d **types.Duration, v time.Duration) {
		if *d == nil && v > 0 {
			td := types.Duration(v)
			*d = &td
		}
	}
	dur(&out.Interval, ih.Interval)
	dur(&out.Timeout, ih.Timeout)
	dur(&out.StartPeriod, ih.StartPeriod)
	if out.Retries == nil && ih.Retries > 0 {
		r := uint64(ih.Retries)
		out.Retries = &r
	}
	return &out, nil
}

func (e *Engine) checkHealth(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	h, err := e.healthcheck(ctx, p, s)
	if err != nil {
		return err
	}
	if healthTest(h) == nil {
		return errdefs.Invalid("service %s has no healthcheck to wait for: add one, or depend on it with condition service_started", s.Name)
	}
	ctrs, err := e.serviceContainers(ctx, p.Name, s.Name)
	if err != nil {
		return err
	}
	for _, c := range ctrs {
		if err := e.containerHealthy(ctx, s.Name, c); err != nil {
			return err
		}
	}
	return nil
}

// healthPoll is how often a wait for health asks the daemon.
const healthPoll = 100 * time.Millisecond

// containerHealthy returns once the daemon reports container c of
// service healthy; it fails naming the service once c is unhealthy or
// exited, or has no health check running.
func (e *Engine) containerHealthy(ctx context.Context, service string, c api.Container) error {
	for {
		st, err := e.C.Container(ctx, c.ID)
		if err != nil {
			return err
		}
		hs := st.State.Health
		switch {
		case st.State.Status == api.StatusExited:
			return fmt.Errorf("service %s is not healthy: container %s exited with code %d", service, c.Name, st.State.ExitCode)
		case st.State.Status == api.StatusRunning && hs == nil:
			return errdefs.Conflict("service %s has a healthcheck that container %s does not run (it was created without it): recreate it with up --force-recreate", service, c.Name)
		case hs != nil && hs.Status == api.HealthHealthy:
			return nil
		case hs != nil && hs.Status == api.HealthUnhealthy && st.State.Status == api.StatusRunning:
			msg := ""
			if n := len(hs.Log); n > 0 {
				if out := strings.TrimSpace(hs.Log[n-1].Output); out != "" {
					msg = ": " + truncate(out, 200)
				}
			}
			return fmt.Errorf("service %s is unhealthy: its healthcheck failed %d times (container %s)%s", service, hs.FailingStreak, c.Name, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s is not healthy yet: %w", service, ctx.Err())
		case <-time.After(healthPoll):
		}
	}
}

// truncate cuts s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// serviceContainers are the project's containers of the service.
func (e *Engine) serviceContainers(ctx context.Context, project, service string) ([]api.Container, error) {
	all, err := e.Containers(ctx, project, false)
	if err != nil {
		return nil, err
	}
	return byService(all)[service], nil
}
