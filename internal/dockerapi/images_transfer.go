package dockerapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// streamMessage is one line of a JSON progress stream. Error is the old
// plain-text error field that docker-compose 1.29 and older SDKs read
// beside errorDetail.
type streamMessage struct {
	jsonstream.Message
	Error string `json:"error,omitempty"`
}

// jsonStream writes a 200 answer of JSON progress messages, flushed one
// by one; it is safe for concurrent use.
type jsonStream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return &jsonStream{w: w, enc: json.NewEncoder(w)}
}

func (s *jsonStream) send(m jsonstream.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.Encode(streamMessage{Message: m})
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *jsonStream) status(format string, args ...any) {
	s.send(jsonstream.Message{Status: fmt.Sprintf(format, args...)})
}

func (s *jsonStream) line(text string) {
	s.send(jsonstream.Message{Stream: text})
}

// fail ends the stream with err, which clients print and exit non-zero on.
func (s *jsonStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := statusOf(err)
	msg := err.Error()
	s.enc.Encode(streamMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Code: code, Message: msg}}, Error: msg})
}

// AuthImages is an image service that takes the registry credentials of
// one pull or push (the X-Registry-Auth header); without it, pulls and
// pushes use the daemon's own credentials.
type AuthImages interface {
	PullAuth(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) (api.Image, error)
	PushAuth(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) error
}

// pull pulls req with auth when the service takes credentials.
func (a *imageAPI) pull(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) (api.Image, error) {
	if ai, ok := a.images.(AuthImages); ok && auth != (registry.AuthConfig{}) {
		return ai.PullAuth(ctx, req, auth)
	}
	return a.images.Pull(ctx, req)
}

// pushRef pushes req with auth when the service takes credentials.
func (a *imageAPI) pushRef(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) error {
	if ai, ok := a.images.(AuthImages); ok && auth != (registry.AuthConfig{}) {
		return ai.PushAuth(ctx, req, auth)
	}
	return a.images.Push(ctx, req)
}

// registryAuth decodes the X-Registry-Auth header (base64url JSON, as
// every client sends it); an absent or empty one is anonymous.
func registryAuth(r *http.Request) (registry.AuthConfig, error) {
	var ac registry.AuthConfig
	h := r.Header.Get(registry.AuthHeader)
	if h == "" || h == "e30" || h == "{}" { // "e30" is "{}"
		return ac, nil
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(h); err != nil {
			return ac, errdefs.Invalid("the %s header is not base64url-encoded JSON: %v", registry.AuthHeader, err)
		}
	}
	if err := json.Unmarshal(b, &ac); err != nil {
		return ac, errdefs.Invalid("the %s header does not hold a JSON auth config: %v", registry.AuthHeader, err)
	}
	return ac, nil
}

// create is POST /images/create: a pull (fromImage, tag) or, with
// fromSrc=-, an import of the root filesystem tar in the body.
func (a *imageAPI) create(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "" {
		if src != "-" {
			return errdefs.NotImplemented("skiff imports from the request body only (fromSrc=-), not from %s: download the archive and pipe it to docker import", src)
		}
		return a.importRootfs(w, r)
	}
	from := q.Get("fromImage")
	if from == "" {
		return errdefs.Invalid("POST /images/create needs fromImage (a pull) or fromSrc=- (an import)")
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ref := joinTag(from, q.Get("tag"))
	repo, tag := splitTag(ref)
	st := newJSONStream(w)
	st.send(jsonstream.Message{ID: tag, Status: "Pulling from " + familiar(repo)})
	img, err := a.pull(r.Context(), api.ImagePullRequest{Ref: ref, Platform: q.Get("platform")}, auth)
	if err != nil {
		st.fail(err)
		return nil
	}
	if img.Digest != "" {
		st.status("Digest: %s", img.Digest)
	}
	st.status("Status: Downloaded newer image for %s", familiar(ref))
	return nil
}

// joinTag joins a name and the tag parameter of a pull or push, which may
// also be a digest.
func joinTag(name, tag string) string {
	switch {
	case tag == "":
		return name
	case strings.HasPrefix(tag, "sha256:"):
		return name + "@" + tag
	}
	return name + ":" + tag
}

func (a *imageAPI) importRootfs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := q.Get("repo")
	if ref == "" {
		return errdefs.Invalid("docker import needs a name for the image: give REPOSITORY[:TAG]")
	}
	ref = joinTag(ref, q.Get("tag"))
	body := http.MaxBytesReader(w, r.Body, a.maxUpload)
	img, err := a.images.ImportRootfs(r.Context(), body, api.ImageImportRootfsOptions{Ref: ref, Changes: q["changes"], Message: q.Get("message")})
	if err != nil {
		return err
	}
	st := newJSONStream(w)
	st.status("%s", img.ID)
	return nil
}

// push is POST /images/{name}/push: skiff pushes NAME[:tag] and reports
// the pushed digest as docker does.
func (a *imageAPI) push(w http.ResponseWriter, r *http.Request, name string) error {
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	tag := r.URL.Query().Get("tag")
	ref := joinTag(name, tag)
	if tag == "" {
		ref = joinTag(name, "latest")
	}
	st := newJSONStream(w)
	st.status("The push refers to repository [%s]", name)
	if err := a.pushRef(r.Context(), api.ImagePullRequest{Ref: ref}, auth); err != nil {
		st.fail(err)
		return nil
	}
	img, err := a.images.Inspect(r.Context(), ref)
	if err != nil {
		st.fail(err)
		return nil
	}
	_, t := splitTag(ref)
	st.status("%s: digest: %s", t, img.Digest)
	return nil
}

// load is POST /images/load: a docker-archive (docker save) or OCI
// archive tar in the body; the answer names the images loaded.
func (a *imageAPI) load(w http.ResponseWriter, r *http.Request) error {
	body := http.MaxBytesReader(w, r.Body, a.maxUpload)
	imgs, err := a.images.Import(r.Context(), body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errdefs.Invalid("the image archive exceeds the upload limit of %d bytes: raise it with skiff daemon --max-image-size", a.maxUpload)
		}
		return err
	}
	// quiet only hides layer progress, which skiff does not send: the
	// names loaded are always told, as docker does.
	st := newJSONStream(w)
	for _, img := range imgs {
		if len(img.Tags) == 0 {
			st.line("Loaded image ID: " + img.ID + "\n")
		}
		for _, t := range img.Tags {
			st.line("Loaded image: " + familiar(t) + "\n")
		}
	}
	return nil
}

// save is GET /images/get?names=...: a docker-archive of the images.
func (a *imageAPI) save(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errdefs.Invalid("GET /images/get needs at least one names parameter: name the images to save")
	}
	return a.saveRefs(w, r, names)
}

// saveRefs writes a docker-archive tar (manifest.json, configs, layer
// tars) of refs, which docker load and podman load read back. Each
// reference names its image by tag; an ID saves every tag the image has.
func (a *imageAPI) saveRefs(w http.ResponseWriter, r *http.Request, refs []string) error {
	if a.source == nil {
		return errdefs.NotImplemented("this daemon does not serve image archives")
	}
	tagged := map[name.Tag]v1.Image{}
	var untagged []v1.Image
	for _, ref := range refs {
		img, err := a.images.Inspect(r.Context(), ref)
		if err != nil {
			return noSuchImage(err, ref)
		}
		v1img, err := a.source.Image(r.Context(), img.ID)
		if err != nil {
			return err
		}
		tags := img.Tags
		if tg := storedTag(img, ref); tg != "" {
			tags = []string{tg} // as docker save: the name given, not every tag
		}
		if len(tags) == 0 {
			untagged = append(untagged, v1img)
		}
		for _, tg := range tags {
			t, err := name.NewTag(tg)
			if err != nil {
				return errdefs.Invalid("image %s: tag %q cannot go in an archive: %v", ref, tg, err)
			}
			tagged[t] = v1img
		}
	}
	if len(untagged) > 0 && len(tagged) == 0 {
		return errdefs.Invalid("image %s has no tag: tag it before saving (docker tag)", refs[0])
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	refsMap := make(map[name.Reference]v1.Image, len(tagged))
	for t, img := range tagged {
		refsMap[t] = img
	}
	// The header is sent: a failure now can only cut the archive short,
	// which docker load reports.
	return tarball.MultiRefWrite(refsMap, w)
}

// storedTag returns the stored tag of img that ref names ("app:1" is
// stored as "localhost/app:1"), or "" when ref is an ID or names none.
func storedTag(img api.Image, ref string) string {
	if _, tag := splitTag(ref); tag == "" {
		ref += ":latest"
	}
	for _, tg := range img.Tags {
		if tg == ref || familiar(tg) == ref || strings.TrimPrefix(tg, "localhost/") == ref {
			return tg
		}
	}
	return ""
}
