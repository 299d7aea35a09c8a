package dockerapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

func init() { addRoutes((*Server).execRoutes) }

// execRoutes serves exec create, start, resize and inspect.
func (s *Server) execRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("POST", "/containers/{id}/exec", s.createExec)
	s.handle("POST", "/exec/{id}/start", s.startExec)
	s.handle("POST", "/exec/{id}/resize", s.resizeExec)
	s.handle("GET", "/exec/{id}/json", s.inspectExec)
}

// execInstance is a command made by exec create, run by exec start.
type execInstance struct {
	id          string
	containerID string
	req         container.ExecCreateRequest
	resize      chan specs.Box

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	ended    time.Time
}

// execTable holds the exec instances; those ended more than
// execKeepFor ago go when a new one is made.
type execTable struct {
	mu sync.Mutex
	m  map[string]*execInstance
}

const execKeepFor = 10 * time.Minute

func (t *execTable) add(e *execInstance) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*execInstance{}
	}
	now := time.Now()
	for id, old := range t.m {
		old.mu.Lock()
		stale := old.exitCode != nil && now.Sub(old.ended) > execKeepFor
		old.mu.Unlock()
		if stale {
			delete(t.m, id)
		}
	}
	t.m[e.id] = e
}

func (t *execTable) get(id string) (*execInstance, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[id]; ok {
		return e, nil
	}
	return nil, errdefs.NotFound("No such exec instance: %s", id)
}

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return errdefs.Invalid("No exec command specified")
	}
	if req.Privileged {
		return errdefs.Invalid("Privileged (docker exec --privileged) is not supported by skiff: an exec gets the container's own privileges")
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if c.State.Status != api.StatusRunning {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	b := make([]byte, 32)
	rand.Read(b)
	e := &execInstance{id: hex.EncodeToString(b), containerID: c.ID, req: req, resize: make(chan specs.Box, 1)}
	s.execs.add(e)
	s.emit(c, events.Action(string(events.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: e.id})
}

// startExec runs the exec instance: detached, or streaming its output
// (and taking its stdin) over the hijacked connection until it exits.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errdefs.Conflict("exec instance %s has already been started", e.id)
	}
	e.started, e.running = true, true
	e.mu.Unlock()
	cr := e.req
	tty := cr.Tty || req.Tty
	xreq := api.ExecRequest{Cmd: cr.Cmd, Env: cr.Env, WorkingDir: cr.WorkingDir, User: cr.User, Tty: tty}
	size := cr.ConsoleSize
	if req.ConsoleSize != nil {
		size = req.ConsoleSize
	}
	if tty && size != nil && size[0] > 0 && size[1] > 0 {
		xreq.ConsoleSize = &api.ConsoleSize{Height: size[0], Width: size[1]}
	}
	if req.Detach {
		go s.runExec(context.Background(), e, xreq, runtime.ExecIO{Stdout: io.Discard, Stderr: io.Discard, Resize: e.resize})
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, in, err := hijack(w, r, streamType(r, tty))
	if err != nil {
		s.finishExec(e, -1)
		return err
	}
	defer conn.Close()
	stdout, stderr := outputWriters(conn, tty)
	io := runtime.ExecIO{Stdout: stdout, Stderr: stderr, Resize: e.resize}
	if cr.AttachStdin {
		xreq.Stdin, io.Stdin = true, in
	}
	s.runExec(context.WithoutCancel(r.Context()), e, xreq, io)
	return nil
}

// runExec runs e and records its exit code.
func (s *Server) runExec(ctx context.Context, e *execInstance, req api.ExecRequest, stdio runtime.ExecIO) {
	c, _ := s.svc.Containers.Get(ctx, e.containerID)
	s.emit(c, events.Action(string(events.ActionExecStart)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	code, err := s.svc.Containers.Exec(ctx, e.containerID, req, stdio)
	if err != nil {
		s.log.Debug("exec failed", "container", e.containerID, "err", err)
		if stdio.Stderr != nil {
			stdio.Stderr.Write([]byte(err.Error() + "\n"))
		}
		if code == 0 {
			code = 126
		}
	}
	s.finishExec(e, code)
	s.emit(c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
}

func (s *Server) finishExec(e *execInstance, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running, e.exitCode, e.ended = false, &code, time.Now()
}

// resizeExec sizes a running exec's terminal (?h=&w=).
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) error {
	h, err := intQuery(r, "h", 0)
	if err != nil {
		return err
	}
	wd, err := intQuery(r, "w", 0)
	if err != nil {
		return err
	}
	if h <= 0 || wd <= 0 || h > 0xffff || wd > 0xffff {
		return errdefs.Invalid("terminal size %dx%d: h and w must be 1..65535", h, wd)
	}
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	select { // the newest size replaces one not yet taken
	case <-e.resize:
	default:
	}
	e.resize <- specs.Box{Height: uint(h), Width: uint(wd)}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) error {
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cr := e.req
	ep, args := "", []string(nil)
	if len(cr.Cmd) > 0 {
		ep, args = cr.Cmd[0], cr.Cmd[1:]
	}
	return writeJSON(w, http.StatusOK, container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID,
		OpenStdin: cr.AttachStdin, OpenStdout: cr.AttachStdout, OpenStderr: cr.AttachStderr, CanRemove: e.exitCode != nil,
		ProcessConfig: &container.ExecProcessConfig{Tty: cr.Tty, Entrypoint: ep, Arguments: args, User: cr.User},
	})
}
