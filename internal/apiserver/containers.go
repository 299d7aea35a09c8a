package apiserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/api/stream"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/ctrfiles"
	"skiff.dev/skiff/internal/runtime"
)

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	all, err := boolParam(r, "all")
	if err != nil {
		return err
	}
	return writeJSON(w, 200, s.containers.List(r.Context(), all))
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	var req api.ContainerCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c, err := s.containers.Create(r.Context(), req)
	if err != nil {
		if c.ID != "" {
			// Created, but it failed to start: say both.
			return writeJSON(w, statusFor(err), struct {
				api.Error
				Container api.Container `json:"container"`
			}{APIError(err), c})
		}
		return err
	}
	return writeJSON(w, 201, c)
}

func statusFor(err error) int { c, _ := statusOf(err); return c }

func (s *Server) getContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, c)
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	if err := s.containers.Remove(r.Context(), r.PathValue("id"), force); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.containers.Start(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

// putArchive extracts the tar in the body into the directory ?path= of
// the container (see ctrfiles.Extract): compose puts its configs into a
// created container this way before starting it.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) error {
	dir := r.URL.Query().Get("path")
	if !path.IsAbs(dir) {
		return errdefs.Invalid("path %q: give an absolute directory inside the container", dir)
	}
	c, err := s.containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	body, err := s.upload(w, r, "the archive")
	if err != nil {
		return err
	}
	if err := ctrfiles.Extract(c, dir, body); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	t, err := durationParam(r, "t")
	if err != nil {
		return err
	}
	if err := s.containers.Stop(r.Context(), r.PathValue("id"), t); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	t, err := durationParam(r, "t")
	if err != nil {
		return err
	}
	if err := s.containers.Restart(r.Context(), r.PathValue("id"), t); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("signal")
	if name == "" {
		name = "SIGKILL"
	}
	sig, err := container.ParseSignal(name)
	if err != nil {
		return err
	}
	if err := s.containers.Kill(r.Context(), r.PathValue("id"), sig); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	res, err := s.containers.Wait(r.Context(), r.PathValue("id"), r.URL.Query().Get("condition"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errdefs.Invalid("query parameter %s=%q must be an RFC 3339 time, a duration like 10m, or a Unix time", name, v)
}

// logs streams log entries as JSON lines (application/x-ndjson).
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var opts container.LogOptions
	var err error
	if opts.Follow, err = boolParam(r, "follow"); err != nil {
		return err
	}
	opts.Tail = -1
	if v := q.Get("tail"); v != "" && v != "all" {
		if opts.Tail, err = strconv.Atoi(v); err != nil || opts.Tail < 0 {
			return errdefs.Invalid("query parameter tail=%q must be a number of lines or all", v)
		}
	}
	if opts.Since, err = parseTime("since", q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseTime("until", q.Get("until")); err != nil {
		return err
	}
	if _, err := s.containers.Get(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	// Following, entries are sent whenever the reader has caught up with
	// the log (and whenever the buffer fills), not one write per entry.
	opts.Idle = func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	err = s.containers.Logs(r.Context(), r.PathValue("id"), opts, func(e api.LogEntry) error { return enc.Encode(e) })
	if err != nil && r.Context().Err() == nil {
		enc.Encode(struct {
			Error api.Error `json:"error"`
		}{APIError(err)})
	}
	bw.Flush()
	return nil
}

// attach streams a container's output as frames (package api/stream),
// optionally starting it, and ends with its exit status.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) error {
	start, err := boolParam(r, "start")
	if err != nil {
		return err
	}
	withStdin, err := boolParam(r, "stdin")
	if err != nil {
		return err
	}
	c, err := s.containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if withStdin && !c.Config.OpenStdin {
		return errdefs.Conflict("container %s was created without -i: its stdin is closed; create it with -i (openStdin) to attach stdin", c.Name)
	}
	ctx, sw, stdin, end, err := openStream(w, r, withStdin, "attach", nil)
	if err != nil {
		return err
	}
	defer end()
	res, err := s.containers.Attach(ctx, r.PathValue("id"), start, stdin, sw.Stream(stream.Stdout), sw.Stream(stream.Stderr))
	if err != nil {
		return sw.WriteError(APIError(err))
	}
	return sw.WriteExit(res)
}

// exec runs a command in a container. Without stdin the response is a
// frame stream; with stdin the connection is upgraded (101) and the
// client's bytes after the request body become the process's stdin.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	var req api.ExecRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return errdefs.Invalid("exec needs a command: give cmd")
	}
	c, err := s.containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.State.Status != api.StatusRunning {
		return errdefs.Conflict("container %s is not running: start it first (skiff start %s)", c.Name, c.Name)
	}
	var (
		resize chan specs.Box
		header http.Header
	)
	if req.Tty && req.Stdin {
		// The client resizes the terminal through this session.
		var session string
		session, resize = s.execSessions.add()
		defer s.execSessions.remove(session)
		header = http.Header{api.ExecSessionHeader: {session}}
	}
	ctx, sw, stdin, end, err := openStream(w, r, req.Stdin, "exec", header)
	if err != nil {
		return err
	}
	defer end()
	code, err := s.containers.Exec(ctx, c.ID, req, runtime.ExecIO{
		Stdin: stdin, Stdout: sw.Stream(stream.Stdout), Stderr: sw.Stream(stream.Stderr), Resize: resize,
	})
	if err != nil {
		return sw.WriteError(APIError(err))
	}
	return sw.WriteExit(api.ContainerWaitResponse{ExitCode: code})
}

// openStream answers r with a frame stream: with stdin, on the
// connection upgraded to a raw duplex stream (101, with header), whose
// further bytes from the client are returned as stdin; otherwise as a 200
// response. ctx outlives a hijacked request, whose own context ends at
// once. end closes what openStream opened.
func openStream(w http.ResponseWriter, r *http.Request, withStdin bool, what string, header http.Header) (ctx context.Context, sw *stream.Writer, stdin io.Reader, end func(), err error) {
	if !withStdin {
		w.Header().Set("Content-Type", "application/vnd.skiff.stream")
		w.WriteHeader(200)
		flusher, _ := w.(http.Flusher)
		sw = stream.NewWriter(w, func() {
			if flusher != nil {
				flusher.Flush()
			}
		})
		return r.Context(), sw, nil, func() {}, nil
	}
	if r.Header.Get("Upgrade") != "skiff-stream" {
		return nil, nil, nil, nil, errdefs.Invalid("%s with stdin needs the connection upgraded: send Connection: Upgrade and Upgrade: skiff-stream", what)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, nil, nil, errors.New("connection cannot be upgraded")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: skiff-stream\r\n")
	header.Write(buf)
	buf.WriteString("\r\n")
	buf.Flush()
	return context.WithoutCancel(r.Context()), stream.NewWriter(conn, nil), buf.Reader, func() { conn.Close() }, nil
}

// resizeContainer sets the terminal size of a container created with tty.
func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) error {
	var size api.ConsoleSize
	if err := decode(r, &size); err != nil {
		return err
	}
	if err := s.containers.Resize(r.Context(), r.PathValue("id"), size); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resizeExec sets the terminal size of an exec session (exec with tty
// and stdin).
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) error {
	var size api.ConsoleSize
	if err := decode(r, &size); err != nil {
		return err
	}
	if size.Height == 0 || size.Width == 0 || size.Height > 0xffff || size.Width > 0xffff {
		return errdefs.Invalid("terminal size %dx%d: height and width must be 1..65535", size.Height, size.Width)
	}
	if !s.execSessions.send(r.PathValue("session"), specs.Box{Height: size.Height, Width: size.Width}) {
		return errdefs.NotFound("no exec session %q with a terminal: it ended, or was started without tty and stdin", r.PathValue("session"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// execSessions are the running execs with a terminal, by session ID.
type execSessions struct {
	mu sync.Mutex
	m  map[string]chan specs.Box
}

func (e *execSessions) add() (string, chan specs.Box) {
	b := make([]byte, 16)
	rand.Read(b)
	id, ch := hex.EncodeToString(b), make(chan specs.Box, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]chan specs.Box{}
	}
	e.m[id] = ch
	return id, ch
}

func (e *execSessions) remove(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, id)
}

// send passes size to the session, replacing a size not yet taken.
func (e *execSessions) send(id string, size specs.Box) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.m[id]
	if !ok {
		return false
	}
	select {
	case <-ch:
	default:
	}
	ch <- size
	return true
}

func (s *Server) top(w http.ResponseWriter, r *http.Request) error {
	t, err := s.containers.Top(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, t)
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	st, err := s.containers.Stats(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, st)
}
