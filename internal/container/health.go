package container

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/health"
	"skiff.dev/skiff/internal/runtime"
)

// imageHealthcheck is the image's HEALTHCHECK as the API spells it.
func imageHealthcheck(c v1.Config) *api.HealthConfig {
	h := c.Healthcheck
	if h == nil {
		return nil
	}
	return &api.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
}

// initialHealth is the health of a container with check h that starts:
// starting when it has a check, else nil.
func initialHealth(h *api.HealthConfig) *api.Health {
	if _, ok := health.SettingsOf(h); !ok {
		return nil
	}
	return health.Initial()
}

// monitorHealth starts the health monitor of run of e if its container
// has a check. The monitor ends when the run ends, the container is
// removed or the manager closes; it runs no check after it has ended.
func (m *Manager) monitorHealth(e *entry, run int) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		e.mu.Lock()
		s, ok := health.SettingsOf(e.rec.Config.Healthcheck)
		live := e.run == run && !e.gone && e.rec.State.Status == api.StatusRunning
		exited, started := e.exited, e.rec.State.StartedAt
		var h api.Health
		if e.rec.State.Health != nil {
			h = *e.rec.State.Health
		} else if ok {
			h = *health.Initial()
		}
		e.mu.Unlock()
		if !ok || !live {
			return
		}
		ctx, cancel := context.WithCancel(m.bg)
		defer cancel()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			select {
			case <-exited:
				cancel()
			case <-ctx.Done():
			}
		}()
		health.Monitor{Settings: s, StartedAt: started}.Run(ctx, &checked{m: m, e: e, run: run}, h)
	}()
}

// checked is the container run a health monitor checks.
type checked struct {
	m   *Manager
	e   *entry
	run int
}

var _ health.Container = (*checked)(nil)

func (c *checked) Exec(ctx context.Context, cmd []string, out io.Writer) (int, error) {
	return c.m.Exec(ctx, c.e.rec.ID, api.ExecRequest{Cmd: cmd}, runtime.ExecIO{Stdout: out, Stderr: out})
}

// Record keeps h in the container's state while the run it checks
// still runs.
func (c *checked) Record(h api.Health) bool {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != c.run || e.gone || e.rec.State.Status != api.StatusRunning {
		return false
	}
	prev := ""
	if e.rec.State.Health != nil {
		prev = e.rec.State.Health.Status
	}
	e.rec.State.Health = &h
	if err := c.m.persist(c.m.bg, e); err != nil {
		c.m.log.Error("record container health", "id", e.rec.ID[:12], "err", err)
	}
	if prev != h.Status {
		c.m.log.Info("container health", "id", e.rec.ID[:12], "name", e.rec.Name, "status", h.Status)
		if ev, ok := healthEvent(e.rec.Name, h); ok {
			if err := c.m.cfg.Store.AddEvent(c.m.bg, ev); err != nil && c.m.bg.Err() == nil {
				c.m.log.Warn("record health event", "id", e.rec.ID[:12], "err", err)
			}
		}
	}
	return true
}

// healthEvent is the event of a container named name turning healthy
// or unhealthy (none for starting).
func healthEvent(name string, h api.Health) (api.Event, bool) {
	ev := api.Event{Time: time.Now().UTC(), Kind: api.EventKindContainer, Name: name}
	switch h.Status {
	case api.HealthHealthy:
		ev.Type, ev.Reason, ev.Message = api.EventNormal, "Healthy", "health_status: healthy"
	case api.HealthUnhealthy:
		ev.Type, ev.Reason = api.EventWarning, "Unhealthy"
		ev.Message = fmt.Sprintf("health_status: unhealthy: the health check failed %d times in a row", h.FailingStreak)
		if n := len(h.Log); n > 0 {
			if out := strings.TrimSpace(h.Log[n-1].Output); out != "" {
				ev.Message += ": " + firstLine(out, 200)
			}
		}
	default:
		return api.Event{}, false
	}
	return ev, true
}

// firstLine is the first line of s, cut to n bytes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
