package dockerapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	skcontainer "skiff.dev/skiff/internal/container"
)

func init() { addRoutes((*Server).streamRoutes) }

// streamRoutes serves the container streams: logs and attach.
func (s *Server) streamRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("GET", "/containers/{id}/logs", s.logs)
	s.handle("POST", "/containers/{id}/attach", s.attach)
}

// waitContainer answers once the container meets the condition:
// not-running (at once for a container never started), next-exit (the
// end of its next run) or removed. The header goes out at once, so a
// client knows the wait is in place before it starts the container, as
// docker run does.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return errdefs.Invalid("condition %q: use not-running, next-exit or removed", cond)
	}
	ctx := r.Context()
	c, err := s.container(ctx, ref(r))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	var res api.ContainerWaitResponse
	switch {
	case cond == container.WaitConditionRemoved:
		res, err = s.svc.Containers.Wait(ctx, c.ID, skcontainer.WaitRemoved)
	case cond == container.WaitConditionNextExit:
		res, err = s.waitNextExit(ctx, c)
	case c.State.Status == api.StatusCreated:
		res = api.ContainerWaitResponse{ExitCode: c.State.ExitCode}
	default:
		res, err = s.svc.Containers.Wait(ctx, c.ID, skcontainer.WaitNotRunning)
	}
	out := container.WaitResponse{StatusCode: int64(res.ExitCode)}
	if err != nil {
		out.Error = &container.WaitExitError{Message: noSuch(ref(r), err).Error()}
	}
	return json.NewEncoder(w).Encode(out)
}

// waitNextExit waits for the end of c's next run: the current one if it
// runs, else the one a start begins.
func (s *Server) waitNextExit(ctx context.Context, c api.Container) (api.ContainerWaitResponse, error) {
	if st := dockerState(c.State.Status); st == container.StateRunning || st == container.StateRestarting {
		return s.svc.Containers.Wait(ctx, c.ID, skcontainer.WaitNotRunning)
	}
	started := c.State.StartedAt
	for i := 0; ; i++ {
		delay := 2 * time.Millisecond
		if i > 500 {
			delay = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return api.ContainerWaitResponse{}, ctx.Err()
		case <-time.After(delay):
		}
		cur, err := s.svc.Containers.Get(ctx, c.ID)
		if err != nil {
			return api.ContainerWaitResponse{ExitCode: c.State.ExitCode}, err
		}
		if !cur.State.StartedAt.Equal(started) {
			return s.svc.Containers.Wait(ctx, c.ID, skcontainer.WaitNotRunning)
		}
	}
}

// logs serves a container's log: the stdout and stderr lines
// multiplexed (Docker's stdcopy frames), or raw for a container with a
// tty; follow, tail, since, until and timestamps as docker logs has them.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	wantOut, wantErr := boolQuery(r, "stdout"), boolQuery(r, "stderr")
	if !wantOut && !wantErr {
		return errdefs.Invalid("Bad parameters: you must choose at least one stream")
	}
	opts := skcontainer.LogOptions{Follow: boolQuery(r, "follow"), Tail: -1}
	if v := q.Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errdefs.Invalid("tail=%q: give a number of lines or all", v)
		}
		opts.Tail = n
	}
	var err error
	if v := q.Get("since"); v != "" && v != "0" {
		if opts.Since, err = parseUntil(v); err != nil {
			return err
		}
	}
	if v := q.Get("until"); v != "" && v != "0" {
		if opts.Until, err = parseUntil(v); err != nil {
			return err
		}
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	timestamps := boolQuery(r, "timestamps")
	w.Header().Set("Content-Type", streamType(r, c.Config.Tty))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	bw := bufio.NewWriterSize(w, 32<<10)
	stdout, stderr := outputWriters(bw, c.Config.Tty)
	opts.Idle = func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	buf := make([]byte, 0, 4096)
	err = s.svc.Containers.Logs(r.Context(), c.ID, opts, func(e api.LogEntry) error {
		dst := stdout
		if e.Stream == "stderr" {
			if !wantErr {
				return nil
			}
			dst = stderr
		} else if !wantOut {
			return nil
		}
		buf = buf[:0]
		if timestamps {
			buf = append(e.Time.UTC().AppendFormat(buf, time.RFC3339Nano), ' ')
		}
		buf = append(buf, e.Line...)
		if !e.Partial {
			buf = append(buf, '\n')
		}
		_, err := dst.Write(buf)
		return err
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("docker logs ended", "container", c.ID, "err", err)
	}
	return errors.Join(bw.Flush(), nil)
}

// streamType is the media type of a container's output stream.
func streamType(r *http.Request, tty bool) string {
	if tty || versionBefore(r, "1.42") {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}

// outputWriters are the writers of stdout and stderr on w: w itself for
// a tty, else stdcopy frames.
func outputWriters(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	if tty {
		return w, w
	}
	return &frameWriter{w: w, stream: stdcopy.Stdout}, &frameWriter{w: w, stream: stdcopy.Stderr}
}

// frameWriter writes each Write as one frame of Docker's multiplexed
// stream: a header of the stream's number, three zero bytes and the
// length (big-endian uint32), then the bytes.
type frameWriter struct {
	w      io.Writer
	stream stdcopy.StdType
	buf    []byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), 1<<20)
		f.buf = append(f.buf[:0], byte(f.stream), 0, 0, 0)
		f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(n))
		f.buf = append(f.buf, p[:n]...)
		if _, err := f.w.Write(f.buf); err != nil {
			return 0, err
		}
		p = p[n:]
	}
	return total, nil
}

// hijack takes the connection over for a raw duplex stream: 101
// UPGRADED when the client asked for an upgrade, else 200 OK. The
// returned reader holds the client's bytes after the request.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over for a stream")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if r.Header.Get("Upgrade") != "" {
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n")
	}
	buf.WriteString("Api-Version: " + APIVersion + "\r\n\r\n")
	if err := buf.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, buf.Reader, nil
}

// attachment is one client attached to a container's streams.
type attachment struct {
	stdin          io.Reader // nil without stdin
	stdout, stderr io.Writer
	done           chan struct{} // closed when the streams end
}

// attachTable holds the attachments to containers not yet running, by
// container ID, for the start that follows (docker run and start -a
// attach first, then start).
type attachTable struct {
	mu sync.Mutex
	m  map[string][]*attachment
}

func (t *attachTable) add(id string, a *attachment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string][]*attachment{}
	}
	t.m[id] = append(t.m[id], a)
}

// remove drops a from the attachments waiting on id.
func (t *attachTable) remove(id string, a *attachment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.m[id] {
		if x == a {
			t.m[id] = append(t.m[id][:i], t.m[id][i+1:]...)
			break
		}
	}
	if len(t.m[id]) == 0 {
		delete(t.m, id)
	}
}

// take removes and returns the attachments waiting on id.
func (t *attachTable) take(id string) []*attachment {
	t.mu.Lock()
	defer t.mu.Unlock()
	as := t.m[id]
	delete(t.m, id)
	return as
}

// attach serves POST /containers/{id}/attach over a hijacked
// connection. A running container's streams are attached at once; for
// one not running the attachment waits for its start.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) error {
	if !boolQuery(r, "stream") {
		if boolQuery(r, "logs") {
			return errdefs.Invalid("attach with logs and no stream: read the log with GET /containers/{id}/logs")
		}
		return errdefs.Invalid("attach needs stream=1")
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	withStdin := boolQuery(r, "stdin") && c.Config.OpenStdin
	conn, in, err := hijack(w, r, streamType(r, c.Config.Tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	a := &attachment{done: make(chan struct{})}
	a.stdout, a.stderr = outputWriters(conn, c.Config.Tty)
	if !boolQuery(r, "stdout") {
		a.stdout = io.Discard
	}
	if !boolQuery(r, "stderr") {
		a.stderr = io.Discard
	}
	if withStdin {
		a.stdin = in
	}
	ctx := context.WithoutCancel(r.Context())
	if c.State.Status == api.StatusRunning {
		if _, err := s.svc.Containers.Attach(ctx, c.ID, false, a.stdin, a.stdout, a.stderr); err != nil {
			s.log.Debug("attach ended", "container", c.ID, "err", err)
		}
		return nil
	}
	s.attaches.add(c.ID, a)
	defer s.attaches.remove(c.ID, a)
	// The client half-closes its side at once when it sends no stdin,
	// so its reads say nothing: the attachment lasts until the streams
	// end, or the container is removed without having started.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			return nil
		case <-tick.C:
			if _, err := s.svc.Containers.Get(ctx, c.ID); errors.Is(err, errdefs.ErrNotFound) {
				return nil
			}
		}
	}
}

// startAttached starts c with the first of its waiting attachments
// connected before its process runs (so no output is missed), attaches
// the others once it runs, and returns once it has started.
func (s *Server) startAttached(ctx context.Context, c api.Container, as []*attachment) error {
	first := as[0]
	started := make(chan error, 1)
	go func() {
		defer close(first.done)
		_, err := s.svc.Containers.Attach(context.WithoutCancel(ctx), c.ID, true, first.stdin, first.stdout, first.stderr)
		select {
		case started <- err:
		default:
		}
	}()
	if err := s.awaitStart(ctx, c, started); err != nil {
		return err
	}
	for _, a := range as[1:] {
		go func() {
			defer close(a.done)
			s.svc.Containers.Attach(context.WithoutCancel(ctx), c.ID, false, a.stdin, a.stdout, a.stderr)
		}()
	}
	return nil
}

// awaitStart returns once c has started since it was looked up, or the
// error of the attachment starting it.
func (s *Server) awaitStart(ctx context.Context, c api.Container, started <-chan error) error {
	for i := 0; ; i++ {
		select {
		case err := <-started:
			return noSuch(c.ID, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		cur, err := s.svc.Containers.Get(ctx, c.ID)
		if err == nil && !cur.State.StartedAt.Equal(c.State.StartedAt) {
			return nil
		}
		if err != nil && i > 10 {
			return noSuch(c.ID, err)
		}
	}
}
