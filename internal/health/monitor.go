package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"skiff.dev/skiff/api"
)

// Container is what a Monitor needs of the container it checks.
type Container interface {
	// Exec runs cmd in the container, its stdout and stderr written to
	// out, and returns its exit code. It must end, killing the process,
	// when ctx ends.
	Exec(ctx context.Context, cmd []string, out io.Writer) (int, error)
	// Record keeps h as the container's health. It returns false when
	// the run being checked is over: the Monitor then stops.
	Record(h api.Health) bool
}

// Monitor runs a container's check at its intervals.
type Monitor struct {
	Settings Settings
	// StartedAt is when the container's run started.
	StartedAt time.Time
	// Now returns the time (time.Now when nil).
	Now func() time.Time
}

// Run checks c, starting from health h, until ctx ends or c.Record
// returns false. A check running past the timeout is cancelled and
// recorded as failed (exit code -1). Run returns only once no check it
// started runs any more.
func (m Monitor) Run(ctx context.Context, c Container, h api.Health) {
	now := m.Now
	if now == nil {
		now = time.Now
	}
	t := time.NewTimer(Next(m.Settings, h.Status, m.StartedAt, now()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := m.probe(ctx, c, now)
		if ctx.Err() != nil {
			return
		}
		h = Record(m.Settings, h, m.StartedAt, r)
		if !c.Record(h) {
			return
		}
		t.Reset(Next(m.Settings, h.Status, m.StartedAt, now()))
	}
}

// probe runs the check once.
func (m Monitor) probe(ctx context.Context, c Container, now func() time.Time) api.HealthResult {
	r := api.HealthResult{Start: now().UTC()}
	pctx, cancel := context.WithTimeout(ctx, m.Settings.Timeout)
	defer cancel()
	out := &capped{max: api.HealthOutputMax}
	code, err := c.Exec(pctx, m.Settings.Cmd, out)
	r.End = now().UTC()
	switch {
	case errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		r.ExitCode, r.Output = -1, fmt.Sprintf("Health check exceeded timeout (%s)", m.Settings.Timeout)
	case err != nil:
		r.ExitCode, r.Output = -1, err.Error()
	default:
		out.mu.Lock()
		r.ExitCode, r.Output = code, string(out.b)
		out.mu.Unlock()
	}
	return r
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (w *capped) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
