package container

import (
	"context"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/errdefs"
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
// auto-removed container stays until its output was streamed; without,
// the container must be running, and its output from now on is streamed.
// A non-nil stdin feeds the process's stdin (the container must have
// OpenStdin); its end closes that.
func (m *Manager) Attach(ctx context.Context, ref string, start bool, stdin io.Reader, fn func(api.LogEntry) error) (api.ContainerWaitResponse, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.ContainerWaitResponse{}, err
	}
	e.attach()
	defer e.detach()
	e.mu.Lock()
	openStdin, status := e.rec.Config.OpenStdin, e.rec.State.Status
	e.mu.Unlock()
	if !start && status != api.StatusRunning {
		return api.ContainerWaitResponse{}, errdefs.Conflict("container %s is %s: attach needs a running container; start it attached instead (skiff start -a %s)", ref, status, ref)
	}
	if stdin != nil && !openStdin {
		return api.ContainerWaitResponse{}, errdefs.Conflict("container %s was created without -i: its stdin is closed; create it with -i (openStdin) to attach stdin", ref)
	}
	fed := false
	feed := func(id string) error {
		fed = true
		w, err := m.cfg.Runtime.AttachStdin(ctx, id)
		if err != nil {
			return err
		}
		go func() {
			io.Copy(w, stdin)
			w.Close()
		}()
		return nil
	}
	since := time.Now()
	if start {
		var beforeStart func(string) error
		if stdin != nil {
			beforeStart = feed
		}
		if err := m.start(ctx, e.rec.ID, beforeStart); err != nil {
			return api.ContainerWaitResponse{}, err
		}
	}
	if stdin != nil && !fed { // attached to a running container
		if err := feed(e.rec.ID); err != nil {
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

// Resize sets the terminal size of a running container created with Tty.
func (m *Manager) Resize(ctx context.Context, ref string, size api.ConsoleSize) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.mu.Lock()
	id, tty, status := e.rec.ID, e.rec.Config.Tty, e.rec.State.Status
	e.mu.Unlock()
	if !tty {
		return errdefs.Conflict("container %s has no terminal: create it with -t to resize it", ref)
	}
	if status != api.StatusRunning {
		return errdefs.Conflict("container %s is %s: only a running container's terminal can be resized", ref, status)
	}
	return m.cfg.Runtime.Resize(ctx, id, specs.Box{Height: size.Height, Width: size.Width})
}
