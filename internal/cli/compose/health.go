package compose

import (
	"context"
	"fmt"
	"io"
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

// waitHealthy returns once every container of s passes its healthcheck,
// run as docker does (interval, timeout, retries, start_period,
// start_interval), or fails naming the service. The checks run from the
// client through exec while it waits.
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
		if err := e.containerHealthy(ctx, s.Name, h, c); err != nil {
			return err
		}
	}
	return nil
}

// containerHealthy returns once container c of service passes the
// healthcheck h (which has a test), or fails naming the service.
func (e *Engine) containerHealthy(ctx context.Context, service string, h *types.HealthCheckConfig, c api.Container) error {
	test := healthTest(h)
	interval := durationOr(h.Interval, 30*time.Second)
	timeout := durationOr(h.Timeout, 30*time.Second)
	startPeriod := durationOr(h.StartPeriod, 0)
	startInterval := durationOr(h.StartInterval, 5*time.Second)
	retries := 3
	if h.Retries != nil && *h.Retries > 0 {
		retries = int(*h.Retries)
	}
	began, fails := time.Now(), 0
	for {
		st, err := e.C.Container(ctx, c.ID)
		if err != nil {
			return err
		}
		if st.State.Status == api.StatusExited {
			return fmt.Errorf("service %s is not healthy: container %s exited with code %d", service, c.Name, st.State.ExitCode)
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		code, err := e.C.Exec(tctx, c.ID, api.ExecRequest{Cmd: test}, nil, io.Discard, io.Discard)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("service %s is not healthy yet: %w", service, ctx.Err())
		}
		if err == nil && code == 0 {
			return nil
		}
		inStart := time.Since(began) < startPeriod
		if !inStart {
			fails++
			if fails >= retries {
				return fmt.Errorf("service %s is unhealthy: its healthcheck failed %d times (container %s)", service, fails, c.Name)
			}
		}
		// The first checks come sooner, as docker's start interval
		// makes them; afterwards every interval.
		step := interval
		if inStart || time.Since(began) < interval {
			step = min(startInterval, interval)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s is not healthy yet: %w", service, ctx.Err())
		case <-time.After(step):
		}
	}
}

// serviceContainers are the project's containers of the service.
func (e *Engine) serviceContainers(ctx context.Context, project, service string) ([]api.Container, error) {
	all, err := e.Containers(ctx, project, false)
	if err != nil {
		return nil, err
	}
	return byService(all)[service], nil
}
