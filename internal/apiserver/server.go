package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/runtime"
)

// Containers is the container service the API serves.
type Containers interface {
	Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error)
	Get(ctx context.Context, ref string) (api.Container, error)
	List(ctx context.Context, all bool) []api.Container
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *time.Duration) error
	Restart(ctx context.Context, ref string, timeout *time.Duration) error
	Kill(ctx context.Context, ref string, sig syscall.Signal) error
	Remove(ctx context.Context, ref string, force bool) error
	Wait(ctx context.Context, ref, condition string) (api.ContainerWaitResponse, error)
	Logs(ctx context.Context, ref string, opts container.LogOptions, fn func(api.LogEntry) error) error
	Attach(ctx context.Context, ref string, start bool, stdin io.Reader, stdout, stderr io.Writer) (api.ContainerWaitResponse, error)
	Exec(ctx context.Context, ref string, req api.ExecRequest, stdio runtime.ExecIO) (int, error)
	Stats(ctx context.Context, ref string) (api.ContainerStats, error)
	Top(ctx context.Context, ref string) (api.ContainerTop, error)
	Resize(ctx context.Context, ref string, size api.ConsoleSize) error
}

// BuildOptions are the parameters of an image build.
type BuildOptions struct {
	Tags       []string
	Dockerfile string // path inside the context
	BuildArgs  map[string]string
	Target     string

	// Progress events and image labels.

	// Events, when set, receives the build's progress as events; a
	// service that sends them writes nothing to its progress writer.
	Events func(api.BuildEvent)
	Labels map[string]string // set in the image config

	// The layer cache.
	NoCache bool // no cache lookups
	Pull    bool // pull FROM images from their registries first

	// Secrets and networking of RUN steps.

	// Secrets are the values RUN --mount=type=secret reads, by ID; they
	// come in the request body, never in its URL.
	Secrets map[string][]byte
	// Network is the network of RUN steps: "default" or "none".
	Network string
}

// BuildCache is the build cache, when the image service has one.
type BuildCache interface {
	// PruneBuildCache drops the cache entries (and cache mounts) not
	// used for olderThan, every one when olderThan is 0.
	PruneBuildCache(ctx context.Context, olderThan time.Duration) (api.BuildCachePruneResponse, error)
}

// Images is the image service the API serves.
type Images interface {
	List(ctx context.Context) ([]api.Image, error)
	Inspect(ctx context.Context, ref string) (api.Image, error)
	Import(ctx context.Context, r io.Reader) ([]api.Image, error)
	Pull(ctx context.Context, req api.ImagePullRequest) (api.Image, error)
	Push(ctx context.Context, req api.ImagePullRequest) error
	Tag(ctx context.Context, src, dst string) error
	Remove(ctx context.Context, ref string, force bool) (api.ImageRemoveResponse, error)
	Prune(ctx context.Context) (api.ImagePruneResponse, error)
	Build(ctx context.Context, contextTar io.Reader, opts BuildOptions, progress io.Writer) (api.ImageBuildResponse, error)

	// ImportRootfs makes a one-layer image of a root filesystem tar.
	ImportRootfs(ctx context.Context, r io.Reader, opts api.ImageImportRootfsOptions) (api.Image, error)
}

// System answers version and info.
type System interface {
	Info(ctx context.Context) (api.Info, error)
	Version() api.VersionInfo
}

// Server is the API's http.Handler.
type Server struct {
	containers Containers
	images     Images
	apps       Apps
	events     Events
	metrics    http.Handler
	networks   Networks
	connector  NetworkConnector
	volumes    Volumes
	secrets    Secrets
	tokens     Tokens
	sources    Sources
	system     System
	log        *slog.Logger
	mux        *http.ServeMux
	// maxUpload caps image archives and build contexts (see WithMaxUpload).
	maxUpload int64

	execSessions execSessions
}

// MaxJSONBody caps JSON request bodies.
const MaxJSONBody = 1 << 20

// DefaultMaxUpload caps image archives and build contexts unless
// WithMaxUpload says otherwise; it matches the image store's default
// image size limit.
const DefaultMaxUpload int64 = 20 << 30

// Option configures New.
type Option func(*Server)

// WithMaxUpload caps the bodies of image imports and builds at n bytes
// (n <= 0 keeps DefaultMaxUpload). A larger body is refused with
// ErrInvalid once n bytes have been read, naming the limit and
// skiff daemon --max-image-size, which sets it.
func WithMaxUpload(n int64) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxUpload = n
		}
	}
}

// Services are what the API serves.
type Services struct {
	// Metrics serves GET /metrics (Prometheus text format), if set.
	Metrics    http.Handler
	Containers Containers
	Images     Images
	Apps       Apps
	Events     Events
	Networks   Networks
	// NetworkConnector, if set, serves /v1/networks/{name}/connect and
	// disconnect.
	NetworkConnector NetworkConnector
	// Volumes serves /v1/volumes, if set.
	Volumes Volumes
	// Secrets serves /v1/secrets, if set.
	Secrets Secrets
	System  System
	// Tokens, if set, serves /v1/tokens (give it on the unix socket only).
	Tokens Tokens
	// Sources, if set, serves /v1/sources and the webhooks under
	// /hooks/sources.
	Sources Sources
}

// New returns the API handler.
func New(svc Services, log *slog.Logger, opts ...Option) *Server {
	srv := &Server{containers: svc.Containers, images: svc.Images, apps: svc.Apps, events: svc.Events,
		networks: svc.Networks, connector: svc.NetworkConnector, volumes: svc.Volumes, secrets: svc.Secrets, tokens: svc.Tokens, sources: svc.Sources, metrics: svc.Metrics, system: svc.System, log: log, mux: http.NewServeMux(),
		maxUpload: DefaultMaxUpload}
	for _, o := range opts {
		o(srv)
	}
	srv.routes()
	return srv
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, err)
			}
		})
	}
	h("GET /_ping", func(w http.ResponseWriter, r *http.Request) error { w.Write([]byte("OK")); return nil })
	if s.metrics != nil {
		s.mux.Handle("GET /metrics", s.metrics)
	}
	h("GET /v1/version", s.version)
	h("GET /v1/info", s.info)

	h("GET /v1/containers", s.listContainers)
	h("POST /v1/containers", s.createContainer)
	h("GET /v1/containers/{id}", s.getContainer)
	h("DELETE /v1/containers/{id}", s.removeContainer)
	h("POST /v1/containers/{id}/start", s.startContainer)
	h("PUT /v1/containers/{id}/archive", s.putArchive)
	h("POST /v1/containers/{id}/stop", s.stopContainer)
	h("POST /v1/containers/{id}/restart", s.restartContainer)
	h("POST /v1/containers/{id}/kill", s.killContainer)
	h("POST /v1/containers/{id}/wait", s.waitContainer)
	h("GET /v1/containers/{id}/logs", s.logs)
	h("POST /v1/containers/{id}/attach", s.attach)
	h("POST /v1/containers/{id}/exec", s.exec)
	h("POST /v1/exec/{session}/resize", s.resizeExec)
	h("POST /v1/containers/{id}/resize", s.resizeContainer)
	h("GET /v1/containers/{id}/stats", s.stats)
	h("GET /v1/containers/{id}/top", s.top)

	h("GET /v1/images", s.listImages)
	h("GET /v1/images/inspect", s.inspectImage)
	h("POST /v1/images/import", s.importImage)
	h("POST /v1/images/pull", s.pullImage)
	h("POST /v1/images/push", s.pushImage)
	h("POST /v1/images/tag", s.tagImage)
	h("DELETE /v1/images", s.removeImage)
	h("POST /v1/images/prune", s.pruneImages)
	h("POST /v1/images/build", s.buildImage)
	h("POST /v1/build/prune", s.pruneBuildCache)

	if s.apps != nil {
		s.appRoutes(h)
	}
	if s.networks != nil {
		networkRoutes(s.networks, s.connector, h)
	}
	if s.volumes != nil {
		volumeRoutes(s.volumes, h)
	}
	if s.secrets != nil {
		secretRoutes(s.secrets, h)
	}
	if s.tokens != nil {
		tokenRoutes(s.tokens, h)
	}
	if s.sources != nil {
		sourceRoutes(s.sources, h)
	}

	h("/", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotFound("no API endpoint %s %s: see docs/api.md", r.Method, r.URL.Path)
	})
}

// statusOf maps an error category to an HTTP status and kind.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented, "not_implemented"
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// APIError converts err to its wire form.
func APIError(err error) api.Error {
	_, kind := statusOf(err)
	return api.Error{Message: err.Error(), Kind: kind}
}

func writeError(w http.ResponseWriter, err error) {
	code, kind := statusOf(err)
	writeJSON(w, code, api.Error{Message: err.Error(), Kind: kind})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// decode reads a JSON body strictly into v.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errdefs.Invalid("request body must be application/json, not %s", ct)
	}
	body := http.MaxBytesReader(nil, r.Body, MaxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return errdefs.Invalid("request body is larger than %d bytes", MaxJSONBody)
		case errors.Is(err, io.EOF):
			return errdefs.Invalid("request body is empty: send a JSON object")
		case errors.As(err, &se):
			return errdefs.Invalid("request body is not valid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return errdefs.Invalid("request field %q must be %s, not %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errdefs.Invalid("request has unknown field %s: see docs/api.md", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return errdefs.Invalid("bad request body: %v", err)
	}
	if dec.More() {
		return errdefs.Invalid("request body has data after the JSON object")
	}
	return nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errdefs.Invalid("query parameter %s=%q must be true or false", name, v)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, 200, s.system.Version())
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	info, err := s.system.Info(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, info)
}

func durationParam(r *http.Request, name string) (*time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != v {
		return nil, errdefs.Invalid("query parameter %s=%q must be a whole number of seconds", name, v)
	}
	d := time.Duration(n) * time.Second
	return &d, nil
}
