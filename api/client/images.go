package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"sort"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Images lists the images in the store.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out []api.Image
	return out, c.doJSON(ctx, "GET", "/images", nil, nil, &out)
}

// Image inspects one image by reference or ID.
func (c *Client) Image(ctx context.Context, ref string) (api.Image, error) {
	var out api.Image
	return out, c.doJSON(ctx, "GET", "/images/inspect", url.Values{"ref": {ref}}, nil, &out)
}

// ImportImage uploads an image archive (OCI archive or docker save tar).
func (c *Client) ImportImage(ctx context.Context, archive io.Reader) ([]api.Image, error) {
	resp, err := c.do(ctx, "POST", "/images/import", nil, archive, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []api.Image
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ImportRootfs uploads a root filesystem tar (plain, gzip or zstd) that
// becomes a one-layer image, as docker import makes one.
func (c *Client) ImportRootfs(ctx context.Context, tarball io.Reader, opts api.ImageImportRootfsOptions) (api.Image, error) {
	q := url.Values{"rootfs": {opts.Ref}, "change": opts.Changes}
	if opts.Message != "" {
		q.Set("message", opts.Message)
	}
	resp, err := c.do(ctx, "POST", "/images/import", q, tarball, "application/x-tar")
	if err != nil {
		return api.Image{}, err
	}
	defer resp.Body.Close()
	var out []api.Image
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return api.Image{}, err
	}
	if len(out) != 1 {
		return api.Image{}, fmt.Errorf("import: the daemon answered with %d images, want 1", len(out))
	}
	return out[0], nil
}

// PullImage pulls an image from its registry.
func (c *Client) PullImage(ctx context.Context, req api.ImagePullRequest) (api.Image, error) {
	var out api.Image
	return out, c.doJSON(ctx, "POST", "/images/pull", nil, req, &out)
}

// PushImage pushes an image to its registry.
func (c *Client) PushImage(ctx context.Context, req api.ImagePullRequest) error {
	return c.doJSON(ctx, "POST", "/images/push", nil, req, nil)
}

// TagImage gives the image src the additional name dst.
func (c *Client) TagImage(ctx context.Context, src, dst string) error {
	return c.doJSON(ctx, "POST", "/images/tag", nil, api.ImageTagRequest{Source: src, Target: dst}, nil)
}

// RemoveImage untags ref and deletes the image when no tag is left.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool) (api.ImageRemoveResponse, error) {
	var out api.ImageRemoveResponse
	q := url.Values{"ref": {ref}}
	if force {
		q.Set("force", "1")
	}
	return out, c.doJSON(ctx, "DELETE", "/images", q, nil, &out)
}

// PruneImages deletes unused images, blobs and unpacked layers.
func (c *Client) PruneImages(ctx context.Context) (api.ImagePruneResponse, error) {
	var out api.ImagePruneResponse
	return out, c.doJSON(ctx, "POST", "/images/prune", nil, nil, &out)
}

// BuildOptions are the parameters of BuildImage.
type BuildOptions struct {
	Tags       []string
	Dockerfile string // path inside the context
	BuildArgs  map[string]string
	Target     string
	// Progress receives the build's step lines.
	Progress func(line string)

	// Progress events and image labels.

	// Events, when set, receives the build's progress as events instead
	// of Progress receiving lines.
	Events func(api.BuildEvent)
	Labels map[string]string // set in the image config, over the Dockerfile's

	// The layer cache.
	NoCache bool // build every step, looking nothing up in the cache
	Pull    bool // pull FROM images from their registries first

	// Secrets and networking of RUN steps.

	// Secrets are the values RUN --mount=type=secret reads, by ID: sent
	// in the request body (multipart, before the context), never in the
	// URL.
	Secrets map[string][]byte
	// Network is the network of RUN steps: "default" (the daemon's
	// default) or "none".
	Network string
}

// PruneBuildCache empties the build cache (layers and cache mounts), or
// with olderThan > 0 drops what was not used for that long.
func (c *Client) PruneBuildCache(ctx context.Context, olderThan time.Duration) (api.BuildCachePruneResponse, error) {
	var out api.BuildCachePruneResponse
	q := url.Values{}
	if olderThan > 0 {
		q.Set("olderThan", olderThan.String())
	}
	return out, c.doJSON(ctx, "POST", "/build/prune", q, nil, &out)
}

// writeBuildBody writes the multipart body of a build with secrets: the
// secret parts, then the context (see api.BuildSecretPart).
func writeBuildBody(mw *multipart.Writer, secrets map[string][]byte, contextTar io.Reader) error {
	ids := make([]string, 0, len(secrets))
	for id := range secrets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		w, err := mw.CreateFormField(api.BuildSecretPart + id)
		if err != nil {
			return err
		}
		if _, err := w.Write(secrets[id]); err != nil {
			return err
		}
	}
	w, err := mw.CreateFormField(api.BuildContextPart)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, contextTar); err != nil {
		return err
	}
	return mw.Close()
}

// BuildImage builds an image from a context tar.
func (c *Client) BuildImage(ctx context.Context, contextTar io.Reader, opts BuildOptions) (api.ImageBuildResponse, error) {
	q := url.Values{}
	for _, t := range opts.Tags {
		q.Add("t", t)
	}
	if opts.Dockerfile != "" {
		q.Set("dockerfile", opts.Dockerfile)
	}
	if opts.Target != "" {
		q.Set("target", opts.Target)
	}
	for k, v := range opts.BuildArgs {
		q.Add("buildarg", k+"="+v)
	}
	for k, v := range opts.Labels {
		q.Add("label", k+"="+v)
	}
	// The layer cache.
	if opts.NoCache {
		q.Set("nocache", "1")
	}
	if opts.Pull {
		q.Set("pull", "1")
	}
	if opts.Network != "" {
		q.Set("network", opts.Network)
	}
	body, contentType := contextTar, "application/x-tar"
	if len(opts.Secrets) > 0 {
		for id, v := range opts.Secrets {
			if err := api.CheckBuildSecretID(id); err != nil {
				return api.ImageBuildResponse{}, err
			}
			if len(v) > api.MaxBuildSecretSize {
				return api.ImageBuildResponse{}, errdefs.Invalid("secret %s is larger than %d bytes", id, api.MaxBuildSecretSize)
			}
		}
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() { pw.CloseWithError(writeBuildBody(mw, opts.Secrets, contextTar)) }()
		defer pr.Close()
		body, contentType = pr, mw.FormDataContentType()
	}
	resp, err := c.do(ctx, "POST", "/images/build", q, body, contentType)
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	defer resp.Body.Close()
	var res *api.ImageBuildResponse
	err = readLines(resp.Body, func(line []byte) error {
		var msg struct {
			Stream string                  `json:"stream"`
			Event  *api.BuildEvent         `json:"event"`
			Result *api.ImageBuildResponse `json:"result"`
			Error  *api.Error              `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("decode build progress: %w", err)
		}
		switch {
		case msg.Error != nil:
			return &Error{Status: 400, API: *msg.Error}
		case msg.Result != nil:
			res = msg.Result
		case msg.Event != nil && opts.Events != nil:
			opts.Events(*msg.Event)
		case msg.Stream != "" && opts.Events != nil: // a daemon without events
			opts.Events(api.BuildEvent{Kind: api.BuildMessage, Text: msg.Stream})
		case msg.Stream != "" && opts.Progress != nil:
			opts.Progress(msg.Stream)
		}
		return nil
	})
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	if res == nil {
		return api.ImageBuildResponse{}, fmt.Errorf("build ended without a result: the daemon may have stopped")
	}
	return *res, nil
}
