package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// API versions served. A client asking for a version in
// [MinAPIVersion, APIVersion] (in the /vX.Y/ path prefix) gets it; a
// request without a prefix gets APIVersion.
const (
	// APIVersion is the newest Docker Engine API version served: the
	// one docker CLI 28 speaks.
	APIVersion = "1.51"
	// MinAPIVersion is the oldest version accepted.
	MinAPIVersion = "1.24"
)

// Services are the skiff services the Docker API maps onto: the same
// ones the skiff API serves, so both see one state. Nil services leave
// their endpoints unserved (they answer 501).
type Services struct {
	System     System
	Containers Containers
	// Hub makes the events of GET /events; the daemon feeds it every
	// container change.
	Hub *EventHub
	// Images, Networks, Volumes serve the image, network and volume
	// endpoints (images*.go, build.go, networks.go, volumes.go).
	Images   apiserver.Images
	Networks apiserver.Networks
	Volumes  apiserver.Volumes
	// Connector, if set, joins containers to further networks and takes
	// them off (POST /networks/{id}/connect and disconnect).
	Connector apiserver.NetworkConnector

	// ImageSource, if set, serves image history and docker save.
	ImageSource ImageSource
	// MaxUpload caps image archives and build contexts
	// (apiserver.DefaultMaxUpload when 0).
	MaxUpload int64
}

// System answers version and info.
type System interface {
	Info(ctx context.Context) (api.Info, error)
	Version() api.VersionInfo
}

// Containers is the container service (apiserver.Containers, with the
// daemon's admission policy in front of Create).
type Containers = apiserver.Containers

// Server is an http.Handler serving the Docker Engine API over skiff's
// services. Create it with New.
type Server struct {
	svc Services
	log *slog.Logger
	mux *http.ServeMux

	// attaches are the attachments waiting for their container's start.
	attaches attachTable
	// execs are the exec instances, by ID.
	execs execTable
}

// handlerFunc is an endpoint: an error it returns is written as
// Docker's error body with the status of its category (see writeError),
// unless the response has begun.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// routeSets are the functions registering each file's endpoints; a file
// adds its own from an init function with addRoutes, so files serving
// different endpoints never edit a shared list.
var routeSets []func(*Server)

// addRoutes registers fn to add endpoints to every new Server.
func addRoutes(fn func(*Server)) { routeSets = append(routeSets, fn) }

// New returns the Docker API handler over svc.
func New(svc Services, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{svc: svc, log: log, mux: http.NewServeMux()}
	for _, fn := range routeSets {
		fn(s)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, unserved(r))
	})
	return s
}

// handle registers h for method and pattern, pattern being the path
// without the /vX.Y prefix in http.ServeMux syntax ("/containers/{id}/json").
// A GET handler serves HEAD too.
func (s *Server) handle(method, pattern string, h handlerFunc) {
	s.mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

// ServeHTTP strips the version prefix, refuses versions out of range
// and serves the request, with Docker's headers on every answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Api-Version", APIVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "skiff (linux)")
	version, path, err := splitVersion(r.URL.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	r2 := r.Clone(context.WithValue(r.Context(), versionKey{}, version))
	r2.URL.Path, r2.URL.RawPath = path, ""
	s.log.Debug("docker api", "method", r.Method, "path", r.URL.Path)
	s.mux.ServeHTTP(w, r2)
}

type versionKey struct{}

// requestVersion is the API version the client asked for.
func requestVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// splitVersion cuts "/v1.43" off path and checks the version.
func splitVersion(path string) (version, rest string, err error) {
	if !strings.HasPrefix(path, "/v") {
		return APIVersion, path, nil
	}
	seg, rest, _ := strings.Cut(path[2:], "/")
	rest = "/" + rest
	if _, _, ok := parseVersion(seg); !ok {
		// Not a version: a path of its own (none starts with /v but /volumes).
		return APIVersion, path, nil
	}
	if compareVersions(seg, MinAPIVersion) < 0 {
		return "", "", errdefs.Invalid("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", seg, MinAPIVersion)
	}
	if compareVersions(seg, APIVersion) > 0 {
		return "", "", errdefs.Invalid("client version %s is too new. Maximum supported API version is %s", seg, APIVersion)
	}
	return seg, rest, nil
}

// parseVersion reads "MAJOR.MINOR".
func parseVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	return ma, mi, err1 == nil && err2 == nil && ma >= 0 && mi >= 0
}

// compareVersions compares two "MAJOR.MINOR" versions like strings.Compare.
func compareVersions(a, b string) int {
	am, an, _ := parseVersion(a)
	bm, bn, _ := parseVersion(b)
	switch {
	case am != bm:
		return cmpInt(am, bm)
	default:
		return cmpInt(an, bn)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionBefore reports whether the request's API version is older than v.
func versionBefore(r *http.Request, v string) bool {
	return compareVersions(requestVersion(r), v) < 0
}

// unserved is the error of an endpoint skiff does not serve.
func unserved(r *http.Request) error {
	return errdefs.NotImplemented("skiff does not serve the Docker API endpoint %s %s: see docs/docker-api.md for those it does", r.Method, r.URL.Path)
}

// errorBody is Docker's error response.
type errorBody struct {
	Message string `json:"message"`
}

// statusOf maps an error category to the status Docker answers with.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}

// writeError writes err as {"message": "..."} with its category's status.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), errorBody{Message: err.Error()})
}

// writeJSON writes v as the JSON body with status code.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// maxJSONBody caps JSON request bodies.
const maxJSONBody = apiserver.MaxJSONBody

// decodeJSON reads a JSON request body into v. Unknown fields are
// ignored, as Docker does: clients send fields of newer versions.
func decodeJSON(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxJSONBody)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return errdefs.Invalid("request body is larger than %d bytes", maxJSONBody)
		case errors.As(err, &te):
			return errdefs.Invalid("request field %q must be %s, not %s", te.Field, te.Type, te.Value)
		}
		return errdefs.Invalid("bad request body: %v", err)
	}
	return nil
}

// boolQuery reads a boolean query parameter as Docker does: "", "0",
// "false" and "no" are false, anything else true.
func boolQuery(r *http.Request, name string) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// intQuery reads an integer query parameter, def when absent.
func intQuery(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errdefs.Invalid("query parameter %s=%q must be a whole number", name, v)
	}
	return n, nil
}

// needService refuses a request whose service skiff was not given.
func needService(ok bool, what string) error {
	if !ok {
		return errdefs.NotImplemented("this skiff daemon serves no %s through the Docker API", what)
	}
	return nil
}

var _ http.Handler = (*Server)(nil)
