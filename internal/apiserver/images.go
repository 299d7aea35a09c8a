package apiserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/units"
)

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.images.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, imgs)
}

func refParam(r *http.Request) (string, error) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		return "", errdefs.Invalid("query parameter ref is required: name the image")
	}
	return ref, nil
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := refParam(r)
	if err != nil {
		return err
	}
	img, err := s.images.Inspect(r.Context(), ref)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, img)
}

// importImage takes an image archive (OCI archive or docker save tar,
// optionally compressed) as the request body; with the rootfs parameter
// (NAME[:TAG]), a root filesystem tar that becomes a one-layer image,
// with the change and message parameters of docker import.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Has("rootfs") {
		body, err := s.upload(w, r, "the root filesystem")
		if err != nil {
			return err
		}
		img, err := s.images.ImportRootfs(r.Context(), body, api.ImageImportRootfsOptions{
			Ref: q.Get("rootfs"), Changes: q["change"], Message: q.Get("message"),
		})
		if err != nil {
			return err
		}
		return writeJSON(w, 200, []api.Image{img})
	}
	body, err := s.upload(w, r, "the image archive")
	if err != nil {
		return err
	}
	imgs, err := s.images.Import(r.Context(), body)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, imgs)
}

func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) error {
	var req api.ImagePullRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	img, err := s.images.Pull(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, img)
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request) error {
	var req api.ImagePullRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.images.Push(r.Context(), req); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request) error {
	var req api.ImageTagRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.images.Tag(r.Context(), req.Source, req.Target); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := refParam(r)
	if err != nil {
		return err
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	res, err := s.images.Remove(r.Context(), ref, force)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	res, err := s.images.Prune(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

// pruneBuildCache empties the build cache, or with ?olderThan=DURATION
// drops what was not used for that long.
func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	bc, ok := s.images.(BuildCache)
	if !ok {
		return errdefs.NotImplemented("this daemon has no build cache")
	}
	var olderThan time.Duration
	if v := r.URL.Query().Get("olderThan"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errdefs.Invalid("olderThan %q is not a duration such as 24h or 90m", v)
		}
		olderThan = d
	}
	res, err := bc.PruneBuildCache(r.Context(), olderThan)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

// buildImage takes the build context as a tar body and streams progress
// as JSON lines: {"stream": "...", "event": {...}} (an api.BuildEvent
// and its line of text, for clients that only print lines; either may be
// missing), then {"result": ...} or {"error": ...}.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := BuildOptions{Tags: q["t"], Dockerfile: q.Get("dockerfile"), Target: q.Get("target"), BuildArgs: map[string]string{}}
	// The layer cache.
	opts.NoCache, opts.Pull = q.Get("nocache") == "1", q.Get("pull") == "1"
	for _, kv := range q["buildarg"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return errdefs.Invalid("build arg %q must be KEY=VALUE", kv)
		}
		opts.BuildArgs[k] = v
	}
	for _, kv := range q["label"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return errdefs.Invalid("label %q must be KEY=VALUE", kv)
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	opts.Network = q.Get("network")
	body, err := s.upload(w, r, "the build context")
	if err != nil {
		return err
	}
	if body, err = buildBody(r, body, &opts); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var mu sync.Mutex
	send := func(msg buildMessage) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(msg)
		bw.Flush()
		if flusher != nil {
			flusher.Flush()
		}
	}
	progress := lineWriter(func(line string) { send(buildMessage{Stream: line}) })
	opts.Events = func(ev api.BuildEvent) { send(buildMessage{Stream: ev.Line(), Event: &ev}) }
	res, err := s.images.Build(r.Context(), body, opts, progress)
	if err != nil {
		enc.Encode(map[string]api.Error{"error": APIError(err)})
	} else {
		enc.Encode(map[string]api.ImageBuildResponse{"result": res})
	}
	return bw.Flush()
}

// buildBody returns the context tar of a build request body: the body
// itself, or the context part of a multipart body after the secret
// parts, whose values go into opts.Secrets (see api.BuildSecretPart).
func buildBody(r *http.Request, body io.Reader, opts *BuildOptions) (io.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return body, nil
	}
	mr := multipart.NewReader(body, params["boundary"])
	opts.Secrets = map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, errdefs.Invalid("the build request has no %q part with the context", api.BuildContextPart)
		}
		if err != nil {
			if errdefs.Category(err) == nil {
				err = errdefs.Invalid("reading the build request: %w", err)
			}
			return nil, err
		}
		name := p.FormName()
		if name == api.BuildContextPart {
			return p, nil
		}
		id, ok := strings.CutPrefix(name, api.BuildSecretPart)
		if !ok {
			return nil, errdefs.Invalid("unexpected part %q in the build request: send secrets first, then the context", name)
		}
		if err := api.CheckBuildSecretID(id); err != nil {
			return nil, err
		}
		val, err := io.ReadAll(io.LimitReader(p, api.MaxBuildSecretSize+1))
		if err != nil {
			return nil, errdefs.Invalid("reading secret %s: %w", id, err)
		}
		if len(val) > api.MaxBuildSecretSize {
			return nil, errdefs.Invalid("secret %s is larger than %d bytes", id, api.MaxBuildSecretSize)
		}
		opts.Secrets[id] = val
	}
}

// buildMessage is a progress line of POST /images/build.
type buildMessage struct {
	Stream string          `json:"stream,omitempty"`
	Event  *api.BuildEvent `json:"event,omitempty"`
}

// lineWriter calls fn for each complete line written to it.
type lineWriter func(string)

func (f lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l = strings.TrimRight(l, "\n"); l != "" {
			f(l)
		}
	}
	return len(p), nil
}

// upload returns r's body capped at s.maxUpload: reading past it fails
// with an ErrInvalid error that names what (the subject of a sentence),
// the limit, and the flag that raises it. A body announced larger fails
// at once.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, what string) (io.Reader, error) {
	over := errdefs.Invalid("%s exceeds the upload limit of %s: raise it with skiff daemon --max-image-size", what, units.Bytes(s.maxUpload))
	if r.ContentLength > s.maxUpload {
		return nil, over
	}
	return &uploadReader{r: http.MaxBytesReader(w, r.Body, s.maxUpload), over: over}, nil
}

// uploadReader turns http.MaxBytesReader's error into over.
type uploadReader struct {
	r    io.Reader
	over error
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = u.over
	}
	return n, err
}
