package dockerapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	skcontainer "skiff.dev/skiff/internal/container"
)

func init() { addRoutes((*Server).containerRoutes) }

// containerRoutes serves the container lifecycle: create, list,
// inspect, start, stop, restart, kill, wait, remove, prune, resize.
// Streams (logs, attach), exec, stats, top and archives have files of
// their own.
func (s *Server) containerRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("GET", "/containers/json", s.listContainers)
	s.handle("POST", "/containers/create", s.createContainer)
	s.handle("GET", "/containers/{id}/json", s.inspectContainer)
	s.handle("POST", "/containers/{id}/start", s.startContainer)
	s.handle("POST", "/containers/{id}/stop", s.stopContainer)
	s.handle("POST", "/containers/{id}/restart", s.restartContainer)
	s.handle("POST", "/containers/{id}/kill", s.killContainer)
	s.handle("POST", "/containers/{id}/wait", s.waitContainer)
	s.handle("DELETE", "/containers/{id}", s.removeContainer)
	s.handle("POST", "/containers/prune", s.pruneContainers)
	s.handle("POST", "/containers/{id}/resize", s.resizeContainer)
}

// ref is the container named in the path; Docker's clients may give a
// name with its leading slash.
func ref(r *http.Request) string { return strings.TrimPrefix(r.PathValue("id"), "/") }

// noSuch rewords a not-found error in Docker's words, which clients
// match on ("No such container: ID").
func noSuch(ref string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("No such container: %s", ref)
	}
	return err
}

// container looks the container up by name, ID or ID prefix.
func (s *Server) container(ctx context.Context, ref string) (api.Container, error) {
	c, err := s.svc.Containers.Get(ctx, ref)
	return c, noSuch(ref, err)
}

// nameRE is Docker's rule for container names.
var nameRE = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" && !nameRE.MatchString(name) {
		return errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	var req container.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if p := r.URL.Query().Get("platform"); p != "" && p != "linux" && !strings.HasPrefix(p, "linux/") {
		return errdefs.Invalid("platform %q: skiff runs linux containers only", p)
	}
	cfg, err := createConfig(req)
	if err != nil {
		return err
	}
	c, err := s.svc.Containers.Create(r.Context(), api.ContainerCreateRequest{Name: strings.TrimPrefix(name, "/"), Config: cfg})
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) && strings.Contains(err.Error(), "image") {
			return errdefs.NotFound("No such image: %s", cfg.Image)
		}
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: []string{}})
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inspectResponse(c))
}

// listContainers serves docker ps: all, limit, and the filters id,
// name, label, status, ancestor, exited, network and volume.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("id", "name", "label", "label!", "status", "ancestor", "exited", "network", "volume", "health", "before", "since"); err != nil {
		return err
	}
	limit, err := intQuery(r, "limit", -1)
	if err != nil {
		return err
	}
	all := boolQuery(r, "all") || f.has("status") || f.has("exited")
	list := s.svc.Containers.List(r.Context(), all)
	slices.SortFunc(list, func(a, b api.Container) int { return b.Created.Compare(a.Created) })
	now := time.Now()
	out := []container.Summary{}
	for _, c := range list {
		if !matchContainer(f, c) {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, summary(c, now))
	}
	return writeJSON(w, http.StatusOK, out)
}

// matchContainer reports whether c passes every filter of f.
func matchContainer(f filters, c api.Container) bool {
	state := string(dockerState(c.State.Status))
	return f.matchAny("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		f.matchAny("name", func(v string) bool {
			re, err := regexp.Compile(strings.TrimPrefix(v, "/"))
			return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) || err == nil && re.MatchString(c.Name)
		}) &&
		f.matchLabels("label", c.Config.Labels) && f.matchLabels("label!", c.Config.Labels) &&
		f.matchAny("status", func(v string) bool { return v == state }) &&
		f.matchAny("exited", func(v string) bool {
			return state == string(container.StateExited) && v == strconv.Itoa(c.State.ExitCode)
		}) &&
		f.matchAny("ancestor", func(v string) bool { return matchImage(v, c) }) &&
		f.matchAny("network", func(v string) bool { return v == networkName(c) }) &&
		f.matchAny("health", func(v string) bool { return matchHealth(v, c) }) &&
		f.matchAny("volume", func(v string) bool {
			return slices.ContainsFunc(c.Config.Mounts, func(m api.Mount) bool { return m.Source == v || m.Target == v })
		})
}

// matchImage reports whether image (a reference or an ID prefix) names
// the image c runs.
func matchImage(image string, c api.Container) bool {
	id := strings.TrimPrefix(c.ImageID, "sha256:")
	if v := strings.TrimPrefix(image, "sha256:"); len(v) >= 4 && strings.HasPrefix(id, v) {
		return true
	}
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/library/")
		s = strings.TrimPrefix(s, "localhost/")
		if !strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") && !strings.Contains(s, "@") {
			s += ":latest"
		}
		return s
	}
	return norm(image) == norm(c.Config.Image) || c.ImageRef != "" && norm(image) == norm(c.ImageRef)
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("checkpoint") != "" {
		return errdefs.Invalid("checkpoint: restoring checkpoints is not supported by skiff")
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if c.State.Status == api.StatusRunning {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if p := s.attaches.take(c.ID); p != nil {
		if err := s.startAttached(r.Context(), c, p); err != nil {
			return err
		}
	} else if err := s.svc.Containers.Start(r.Context(), c.ID); err != nil {
		return noSuch(ref(r), err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopTimeout reads Docker's ?t= (seconds; -1 waits for ever).
func stopTimeout(r *http.Request) (*time.Duration, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.Invalid("query parameter t=%q must be a whole number of seconds", v)
	}
	if n < 0 {
		n = 1 << 30
	}
	d := time.Duration(n) * time.Second
	return &d, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	t, err := stopTimeout(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("signal") != "" {
		return errdefs.Invalid("signal: stopping with another signal is not supported; set the container's StopSignal, or kill it with that signal")
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if st := dockerState(c.State.Status); st != container.StateRunning && st != container.StateRestarting {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.svc.Containers.Stop(r.Context(), c.ID, t); err != nil {
		return noSuch(ref(r), err)
	}
	s.emit(c, events.ActionStop, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	t, err := stopTimeout(r)
	if err != nil {
		return err
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if err := s.svc.Containers.Restart(r.Context(), c.ID, t); err != nil {
		return noSuch(ref(r), err)
	}
	s.emit(c, events.ActionRestart, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("signal")
	if name == "" {
		name = "SIGKILL"
	}
	sig, err := skcontainer.ParseSignal(name)
	if err != nil {
		return err
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if dockerState(c.State.Status) != container.StateRunning {
		return errdefs.Conflict("Cannot kill container: %s: container %s is not running", ref(r), c.ID)
	}
	if err := s.svc.Containers.Kill(r.Context(), c.ID, sig); err != nil {
		return noSuch(ref(r), err)
	}
	s.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	if boolQuery(r, "link") {
		return errdefs.Invalid("link: skiff has no container links to remove")
	}
	if err := s.svc.Containers.Remove(r.Context(), ref(r), boolQuery(r, "force")); err != nil {
		if c, gerr := s.svc.Containers.Get(r.Context(), ref(r)); gerr == nil && errors.Is(err, errdefs.ErrConflict) && dockerState(c.State.Status) == container.StateRunning {
			return errdefs.Conflict("cannot remove container %s: container is running: stop the container before removing or force remove", ref(r))
		}
		return noSuch(ref(r), err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneContainers removes the stopped containers that pass the filters
// (label, until).
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("label", "label!", "until"); err != nil {
		return err
	}
	var until time.Time
	if v := f["until"]; len(v) > 0 {
		if until, err = parseUntil(v[0]); err != nil {
			return err
		}
	}
	rep := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range s.svc.Containers.List(r.Context(), true) {
		if st := dockerState(c.State.Status); st != container.StateExited && st != container.StateCreated {
			continue
		}
		if !f.matchLabels("label", c.Config.Labels) || !f.matchLabels("label!", c.Config.Labels) || !until.IsZero() && !c.Created.Before(until) {
			continue
		}
		if err := s.svc.Containers.Remove(r.Context(), c.ID, false); err != nil {
			s.log.Debug("prune: keep container", "id", c.ID, "err", err)
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
	}
	return writeJSON(w, http.StatusOK, rep)
}

// parseUntil reads a time as Docker's filters give it: Unix seconds
// (with a fraction), RFC 3339, or a duration before now.
func parseUntil(v string) (time.Time, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, errdefs.Invalid("time %q: give Unix seconds, an RFC 3339 time or a duration like 10m", v)
}

// resizeContainer sets the terminal size (?h=&w=) of a container with a tty.
func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) error {
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
	if err := s.svc.Containers.Resize(r.Context(), ref(r), api.ConsoleSize{Height: uint(h), Width: uint(wd)}); err != nil {
		return noSuch(ref(r), err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
