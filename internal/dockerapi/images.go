package dockerapi

import (
	"context"
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// ImageSource gives a stored image as a go-containerregistry image, for
// what skiff's own API does not serve: the history and docker-archive
// exports. image.Store satisfies it.
type ImageSource interface {
	Image(ctx context.Context, ref string) (v1.Image, error)
}

// imageAPI serves /images and /build over skiff's image service.
type imageAPI struct {
	images apiserver.Images
	source ImageSource // nil: history and save answer 501
	// maxUpload caps image archives and build contexts.
	maxUpload int64
}

func init() {
	addRoutes(func(s *Server) {
		if s.svc.Images == nil {
			return
		}
		a := &imageAPI{images: s.svc.Images, source: s.svc.ImageSource, maxUpload: s.svc.MaxUpload}
		if a.maxUpload <= 0 {
			a.maxUpload = apiserver.DefaultMaxUpload
		}
		a.routes(s.handle)
	})
}

// routes registers the image endpoints. Names hold slashes, so the
// endpoints under /images/{name}/ are told apart by their last element.
func (a *imageAPI) routes(h func(method, pattern string, fn handlerFunc)) {
	h("GET", "/images/json", a.list)
	h("GET", "/images/get", a.save)
	h("POST", "/images/create", a.create)
	h("POST", "/images/load", a.load)
	h("POST", "/images/prune", a.prune)
	h("GET", "/images/{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		name, op := splitOp(r.PathValue("rest"))
		switch op {
		case "json":
			return a.inspect(w, r, name)
		case "history":
			return a.history(w, r, name)
		case "get":
			return a.saveRefs(w, r, []string{name})
		}
		return unserved(r)
	})
	h("POST", "/images/{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		name, op := splitOp(r.PathValue("rest"))
		switch op {
		case "tag":
			return a.tag(w, r, name)
		case "push":
			return a.push(w, r, name)
		}
		return unserved(r)
	})
	h("DELETE", "/images/{rest...}", a.remove)
	h("POST", "/build", a.build)
	h("POST", "/build/prune", a.pruneBuildCache)
}

// splitOp splits "localhost/app:1/json" into the name and "json".
func splitOp(rest string) (name, op string) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

// familiar shortens a stored reference the way docker prints it:
// "docker.io/library/busybox:1" is "busybox:1".
func familiar(ref string) string {
	if s, ok := strings.CutPrefix(ref, "docker.io/library/"); ok {
		return s
	}
	if s, ok := strings.CutPrefix(ref, "docker.io/"); ok {
		return s
	}
	return ref
}

// splitTag splits "host:5000/app:1" into "host:5000/app" and "1".
func splitTag(ref string) (repo, tag string) {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func repoTags(img api.Image) []string {
	out := make([]string, 0, len(img.Tags))
	for _, t := range img.Tags {
		out = append(out, familiar(t))
	}
	return out
}

// repoDigests are NAME@DIGEST for each repository that holds the image.
func repoDigests(img api.Image) []string {
	out := []string{}
	if img.Digest == "" {
		return out
	}
	for _, t := range img.Tags {
		repo, _ := splitTag(familiar(t))
		if d := repo + "@" + img.Digest; !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// imageSummary is an image as GET /images/json lists it.
func imageSummary(img api.Image) image.Summary {
	labels := img.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return image.Summary{
		ID: img.ID, Created: img.Created.Unix(), Labels: labels, Size: img.Size,
		RepoTags: repoTags(img), RepoDigests: repoDigests(img), Containers: -1, SharedSize: -1,
	}
}

func (a *imageAPI) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("reference", "dangling", "label", "label!"); err != nil {
		return err
	}
	dangling, err := filterBool(f, "dangling", false)
	if err != nil {
		return err
	}
	imgs, err := a.images.List(r.Context())
	if err != nil {
		return err
	}
	out := []image.Summary{}
	for _, img := range imgs {
		if f.has("dangling") && dangling != (len(img.Tags) == 0) {
			continue
		}
		if !f.matchLabels("label", img.Config.Labels) || !f.matchLabels("label!", img.Config.Labels) || !f.matchAny("reference", func(p string) bool { return referenceMatch(p, img.Tags) }) {
			continue
		}
		out = append(out, imageSummary(img))
	}
	return writeJSON(w, http.StatusOK, out)
}

// referenceMatch reports whether one of tags matches the reference
// filter p, a shell pattern over NAME or NAME:TAG as docker prints them
// (or as stored).
func referenceMatch(p string, tags []string) bool {
	for _, t := range tags {
		for _, ref := range []string{familiar(t), t, strings.TrimPrefix(t, "localhost/")} {
			repo, _ := splitTag(ref)
			if globMatch(p, ref) || globMatch(p, repo) {
				return true
			}
		}
	}
	return false
}

// noSuchImage words a missing image as docker does: clients match on
// "No such image" (docker-compose builds an image it is told is missing).
func noSuchImage(err error, name string) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("No such image: %s", name)
	}
	return err
}

func (a *imageAPI) inspect(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := a.images.Inspect(r.Context(), name)
	if err != nil {
		return noSuchImage(err, name)
	}
	return writeJSON(w, http.StatusOK, imageInspect(img))
}

// imageInspect is an image as GET /images/{name}/json shows it.
func imageInspect(img api.Image) image.InspectResponse {
	c := img.Config
	cfg := &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
	}}
	if len(c.ExposedPorts) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	if hc := c.Healthcheck; hc != nil {
		cfg.Healthcheck = &dockerspec.HealthcheckConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	res := image.InspectResponse{
		ID: img.ID, RepoTags: repoTags(img), RepoDigests: repoDigests(img), Config: cfg,
		Architecture: img.Architecture, Os: img.OS, Size: img.Size,
		RootFS: image.RootFS{Type: "layers", Layers: img.Layers},
	}
	if !img.Created.IsZero() {
		res.Created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	return res
}

func (a *imageAPI) history(w http.ResponseWriter, r *http.Request, name string) error {
	if a.source == nil {
		return errdefs.NotImplemented("this daemon does not serve image history")
	}
	img, err := a.images.Inspect(r.Context(), name)
	if err != nil {
		return noSuchImage(err, name)
	}
	v1img, err := a.source.Image(r.Context(), img.ID)
	if err != nil {
		return err
	}
	items, err := historyOf(v1img)
	if err != nil {
		return err
	}
	if len(items) > 0 {
		items[0].ID, items[0].Tags = img.ID, repoTags(img)
	}
	return writeJSON(w, http.StatusOK, items)
}

// historyOf lists img's history, newest first, each non-empty entry with
// the size of its layer; only the newest carries an ID.
func historyOf(img v1.Image) ([]image.HistoryResponseItem, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	items := make([]image.HistoryResponseItem, 0, len(cf.History))
	li := 0
	for _, h := range cf.History {
		it := image.HistoryResponseItem{ID: "<missing>", Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if !h.EmptyLayer && li < len(layers) {
			if n, err := layers[li].Size(); err == nil {
				it.Size = n
			}
			li++
		}
		items = append(items, it)
	}
	slices.Reverse(items)
	return items, nil
}

func (a *imageAPI) tag(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return errdefs.Invalid("image tag needs the repo parameter: name the new reference")
	}
	if tag == "" {
		tag = "latest"
	}
	if err := a.images.Tag(r.Context(), name, repo+":"+tag); err != nil {
		return noSuchImage(err, name)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *imageAPI) remove(w http.ResponseWriter, r *http.Request) error {
	res, err := a.images.Remove(r.Context(), r.PathValue("rest"), boolQuery(r, "force"))
	if err != nil {
		return noSuchImage(err, r.PathValue("rest"))
	}
	return writeJSON(w, http.StatusOK, deleteResponses(res))
}

func deleteResponses(res api.ImageRemoveResponse) []image.DeleteResponse {
	out := []image.DeleteResponse{}
	for _, u := range res.Untagged {
		out = append(out, image.DeleteResponse{Untagged: familiar(u)})
	}
	for _, d := range res.Deleted {
		out = append(out, image.DeleteResponse{Deleted: d})
	}
	return out
}

// prune removes the dangling (untagged) images no container uses, or with
// dangling=false every image no container uses, then the blobs and
// layers nothing holds.
func (a *imageAPI) prune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("dangling", "label", "label!"); err != nil {
		return err
	}
	danglingOnly, err := filterBool(f, "dangling", true)
	if err != nil {
		return err
	}
	imgs, err := a.images.List(r.Context())
	if err != nil {
		return err
	}
	report := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	for _, img := range imgs {
		if (danglingOnly && len(img.Tags) > 0) || !f.matchLabels("label", img.Config.Labels) || !f.matchLabels("label!", img.Config.Labels) {
			continue
		}
		res, err := a.images.Remove(r.Context(), img.ID, false)
		if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
			continue // in use, or gone meanwhile
		}
		if err != nil {
			return err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, deleteResponses(res)...)
	}
	gc, err := a.images.Prune(r.Context())
	if err != nil {
		return err
	}
	report.SpaceReclaimed = uint64(max(gc.BytesFreed, 0))
	return writeJSON(w, http.StatusOK, report)
}

// filterBool reads a true/false filter (dangling, all): def when not
// given, the last value when given several times.
func filterBool(f filters, key string, def bool) (bool, error) {
	vs := f[key]
	if len(vs) == 0 {
		return def, nil
	}
	switch v := vs[len(vs)-1]; strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, errdefs.Invalid("filter %s=%q must be true or false", key, v)
	}
}

// globMatch reports whether s matches the shell pattern p, as the
// reference filter matches; a bad pattern matches nothing.
func globMatch(p, s string) bool {
	ok, err := path.Match(p, s)
	return err == nil && ok
}
