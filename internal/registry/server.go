package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image"
)

// Store is what the registry needs of the image store; *image.Store is
// one.
type Store interface {
	OpenBlob(h v1.Hash) (*os.File, error)
	BlobSize(h v1.Hash) (int64, bool)
	UploadDir() (string, error)
	CommitUpload(path string, h v1.Hash) error
	LeaseBlob(h v1.Hash)
	DeleteBlob(ctx context.Context, h v1.Hash) error
	ReadManifest(h v1.Hash) ([]byte, error)
	ResolveManifest(repo, reference string) (v1.Descriptor, error)
	PutManifest(ctx context.Context, repo, tag string, desc v1.Descriptor, raw []byte, needs []v1.Hash) error
	DeleteManifest(ctx context.Context, repo string, h v1.Hash, inUse func(id string) bool) error
	DeleteTag(ctx context.Context, repo, tag string) error
	RepoTags(repo string) ([]string, bool, error)
	RepoManifests(repo string) ([]v1.Descriptor, error)
	Repositories() ([]string, error)
}

var _ Store = (*image.Store)(nil)

// Defaults.
const (
	// DefaultMaxManifestSize bounds a pushed manifest (the spec's
	// recommended minimum limit).
	DefaultMaxManifestSize = 4 << 20
	// DefaultMaxBlobSize bounds one pushed blob.
	DefaultMaxBlobSize = image.DefaultMaxImageSize
)

// Config configures a Registry.
type Config struct {
	Store Store
	// Access decides who may read and write; nil lets nobody in.
	Access *Access
	// AllowDelete enables deleting manifests, tags and blobs.
	AllowDelete bool
	// Strict refuses manifests of media types other than the OCI and
	// Docker image manifest and index types (artifacts use the OCI image
	// manifest type, so they are still accepted).
	Strict bool
	// InUse reports whether a container uses an image (by ID); a deleted
	// manifest such an image needs stays in the store untagged. May be nil.
	InUse func(id string) bool
	// MaxManifestSize and MaxBlobSize bound what one push sends (defaults
	// DefaultMaxManifestSize, DefaultMaxBlobSize).
	MaxManifestSize int64
	MaxBlobSize     int64
	// UploadMaxAge is how long an idle upload session is kept (default
	// image.DefaultUploadMaxAge).
	UploadMaxAge time.Duration
	Logger       *slog.Logger
}

// Registry is an http.Handler serving the distribution API at /v2/.
type Registry struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	uploads map[string]*upload

	refMu     sync.Mutex
	refCache  map[v1.Hash]*manifestSummary
	startTime time.Time
}

// New returns a Registry serving cfg.Store.
func New(cfg Config) *Registry {
	if cfg.MaxManifestSize <= 0 {
		cfg.MaxManifestSize = DefaultMaxManifestSize
	}
	if cfg.MaxBlobSize <= 0 {
		cfg.MaxBlobSize = DefaultMaxBlobSize
	}
	if cfg.UploadMaxAge <= 0 {
		cfg.UploadMaxAge = image.DefaultUploadMaxAge
	}
	if cfg.Access == nil {
		cfg.Access = &Access{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registry{cfg: cfg, log: cfg.Logger, uploads: map[string]*upload{},
		refCache: map[v1.Hash]*manifestSummary{}, startTime: time.Now()}
}

var _ http.Handler = (*Registry)(nil)

// Names, as the distribution spec defines them.
var (
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	nameExpr      = nameComponent + `(?:/` + nameComponent + `)*`
	routeRE       = regexp.MustCompile(`^/v2/(` + nameExpr + `)/(blobs/uploads/?|blobs/uploads/([^/]+)|blobs/([^/]+)|manifests/([^/]+)|tags/list|referrers/([^/]+))$`)
	nameRE        = regexp.MustCompile(`^` + nameExpr + `$`)
	tagRE         = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// maxNameLength bounds a repository name.
const maxNameLength = 255

// StoreName returns the store's name for repository name: a name whose
// first component contains a "." or is "localhost" as it is, any other
// under "localhost/".
func StoreName(name string) string {
	first, _, _ := strings.Cut(name, "/")
	if strings.Contains(first, ".") || first == image.LocalDomain {
		return name
	}
	return image.LocalDomain + "/" + name
}

// RepoName returns the repository name a store name is served under, and
// false for a store name the registry cannot serve (a registry part with
// a port).
func RepoName(storeName string) (string, bool) {
	if rest, ok := strings.CutPrefix(storeName, image.LocalDomain+"/"); ok {
		return rest, nameRE.MatchString(rest)
	}
	return storeName, nameRE.MatchString(storeName)
}

// route is a parsed request path.
type route struct {
	name  string // repository name as the client wrote it
	repo  string // the store's name for it
	kind  string // "uploads", "upload", "blob", "manifest", "tags", "referrers"
	arg   string // upload ID, digest or reference
	write bool
}

// ServeHTTP serves the distribution API.
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := r.URL.Path
	if p == "/v2" || p == "/v2/" {
		if _, ok := g.authenticate(w, r, "", false); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{}"))
		}
		return
	}
	if p == "/v2/_catalog" {
		g.catalog(w, r)
		return
	}
	rt, ok := parseRoute(p)
	if !ok {
		if strings.HasPrefix(p, "/v2/") {
			writeError(w, http.StatusNotFound, "NAME_INVALID", "invalid repository name or path %q: names are lowercase letters, digits and separators (. _ __ -) in components joined by /", p)
			return
		}
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "no such endpoint: %s", p)
		return
	}
	rt.write = r.Method != http.MethodGet && r.Method != http.MethodHead
	if _, ok := g.authenticate(w, r, rt.name, rt.write); !ok {
		return
	}
	switch rt.kind {
	case "uploads":
		g.startUpload(w, r, rt)
	case "upload":
		g.serveUpload(w, r, rt)
	case "blob":
		g.serveBlob(w, r, rt)
	case "manifest":
		g.serveManifest(w, r, rt)
	case "tags":
		g.tagsList(w, r, rt)
	case "referrers":
		g.referrers(w, r, rt)
	}
}

func parseRoute(p string) (route, bool) {
	m := routeRE.FindStringSubmatch(p)
	if m == nil || len(m[1]) > maxNameLength {
		return route{}, false
	}
	rt := route{name: m[1], repo: StoreName(m[1])}
	switch {
	case strings.HasPrefix(m[2], "blobs/uploads") && m[3] == "":
		rt.kind = "uploads"
	case m[3] != "":
		rt.kind, rt.arg = "upload", m[3]
	case m[4] != "":
		rt.kind, rt.arg = "blob", m[4]
	case m[5] != "":
		rt.kind, rt.arg = "manifest", m[5]
	case m[2] == "tags/list":
		rt.kind = "tags"
	default:
		rt.kind, rt.arg = "referrers", m[6]
	}
	return rt, true
}

// errorBody is the spec's error response.
type errorBody struct {
	Errors []errorItem `json:"errors"`
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Errors: []errorItem{{Code: code, Message: fmt.Sprintf(format, args...)}}})
}

// writeStoreError answers with the status and code an error of the store
// stands for; notFoundCode is the code for ErrNotFound.
func (g *Registry) writeStoreError(w http.ResponseWriter, err error, notFoundCode string) {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		writeError(w, http.StatusNotFound, notFoundCode, "%s", err.Error())
	case errors.Is(err, errdefs.ErrInvalid):
		writeError(w, http.StatusBadRequest, "UNSUPPORTED", "%s", err.Error())
	case errors.Is(err, errdefs.ErrConflict):
		writeError(w, http.StatusConflict, "DENIED", "%s", err.Error())
	default:
		g.log.Error("registry request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "%s", err.Error())
	}
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "encode response: %v", err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.Write(b)
}
