package container

import (
	"context"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/logs"
)

// LogOptions select the log entries Logs returns.
type LogOptions struct {
	Tail   int // <0: all
	Since  time.Time
	Until  time.Time
	Follow bool
}

// Logs calls fn for the container's log entries. With Follow it returns
// when the container's current run has ended and its output was read, or
// when ctx is done.
func (m *Manager) Logs(ctx context.Context, ref string, opts LogOptions, fn func(api.LogEntry) error) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.attach()
	defer e.detach()
	e.mu.Lock()
	path, done := e.rec.LogPath, e.exited
	e.mu.Unlock()
	return logs.Read(ctx, path, logs.Options{Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow, Done: done}, fn)
}

// Attach streams the output of the container's next (start) or current
// run to fn until the run ends, then returns its exit status. With start,
// it starts the container itself, so no output is missed and an
// auto-removed container stays until its output was streamed.
func (m *Manager) Attach(ctx context.Context, ref string, start bool, fn func(api.LogEntry) error) (api.ContainerWaitResponse, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.ContainerWaitResponse{}, err
	}
	e.attach()
	defer e.detach()
	var since time.Time
	if start {
		since = time.Now()
		if err := m.Start(ctx, e.rec.ID); err != nil {
			return api.ContainerWaitResponse{}, err
		}
	}
	e.mu.Lock()
	path, done := e.rec.LogPath, e.exited
	e.mu.Unlock()
	if err := logs.Read(ctx, path, logs.Options{Tail: -1, Since: since, Follow: true, Done: done}, fn); err != nil {
		return api.ContainerWaitResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return api.ContainerWaitResponse{ExitCode: e.rec.State.ExitCode, OOMKilled: e.rec.State.OOMKilled}, nil
}
