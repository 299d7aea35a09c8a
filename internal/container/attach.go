package container

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/logs"
	"skiff.dev/skiff/internal/runtime"
)

// LogOptions select the log entries Logs returns.
type LogOptions struct {
	Tail   int // <0: all
	Since  time.Time
	Until  time.Time
	Follow bool
	// Idle, with Follow, is called whenever all output written so far
	// was passed on (see logs.Options.Idle).
	Idle func() error
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
	return logs.Read(ctx, path, logs.Options{Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow, Done: done, Idle: opts.Idle}, fn)
}

// Attach streams the output of the container's next (start) or current
// run to stdout and stderr until the run ends, then returns its exit
// status. With start, it starts the container itself, so no output is
// missed and an auto-removed container stays until its output was
// streamed; without, the container must be running, and its output from
// now on is streamed. A non-nil stdin feeds the process's stdin (the
// container must have OpenStdin); its end closes that, and the output
// goes on independently.
//
// The output comes from the container's monitor, not from its log, so
// it is whole and in order whatever the log's rotation: the container
// writes at the pace the writers take it (see runtime.Attachment). When
// the container is stopped with SIGKILL or removed, output a writer has
// not taken is dropped, so that no client can keep a container from
// ending.
func (m *Manager) Attach(ctx context.Context, ref string, start bool, stdin io.Reader, stdout, stderr io.Writer) (api.ContainerWaitResponse, error) {
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
	var att runtime.Attachment
	connect := func(id string) error {
		att, err = m.cfg.Runtime.Attach(ctx, id, stdin != nil)
		return err
	}
	if start {
		// Connected before the process starts, so no output is missed.
		if err := m.start(ctx, e.rec.ID, connect); err != nil {
			if att != nil {
				att.Close()
			}
			return api.ContainerWaitResponse{}, err
		}
	}
	e.mu.Lock()
	done, release := e.exited, e.attachRelease()
	e.mu.Unlock()
	if att == nil { // attached to a running container
		if err := connect(e.rec.ID); err != nil {
			if !errors.Is(err, errdefs.ErrConflict) {
				return api.ContainerWaitResponse{}, err
			}
			// It exited meanwhile: there is no output left to stream.
		}
	}
	if att != nil {
		defer att.Close()
		if stdin != nil {
			go func() {
				io.Copy(att, stdin)
				att.CloseStdin()
			}()
		}
		if err := copyOutput(ctx, att, release, stdout, stderr); err != nil {
			return api.ContainerWaitResponse{}, err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return api.ContainerWaitResponse{}, ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return api.ContainerWaitResponse{ExitCode: e.rec.State.ExitCode, OOMKilled: e.rec.State.OOMKilled}, nil
}

// outputQueue is how many pieces of output (each at most one read of the
// container's pipe, 8 KiB with conmon) copyOutput holds for a writer
// that is momentarily slower than the container.
const outputQueue = 64

// copyOutput copies a's output to stdout and stderr until it ends, ctx is
// done or a writer fails. The monitor's socket is read on a goroutine of
// its own into a bounded queue: while the writers keep up, the monitor
// never waits; once release is closed, what the writers have not taken is
// dropped and the socket is still read to its end.
func copyOutput(ctx context.Context, a runtime.Attachment, release <-chan struct{}, stdout, stderr io.Writer) error {
	type chunk struct {
		s runtime.Stream
		p []byte
	}
	q := make(chan chunk, outputQueue)
	readErr := make(chan error, 1)
	go func() {
		defer close(q)
		dropping := false
		for {
			s, p, err := a.ReadOutput()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr <- err
				}
				return
			}
			if dropping {
				continue
			}
			select {
			case q <- chunk{s, bytes.Clone(p)}:
			case <-release:
				dropping = true
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { a.Close() })
	defer stop()
	for c := range q {
		w := stdout
		if c.s == runtime.Stderr {
			w = stderr
		}
		if _, err := w.Write(c.p); err != nil {
			a.Close()
			go func() {
				for range q {
				}
			}()
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case err := <-readErr:
		return errdefs.Unavailable("read the container's output: %w", err)
	default:
		return nil
	}
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
