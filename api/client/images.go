package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"skiff.dev/skiff/api"
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
	resp, err := c.do(ctx, "POST", "/images/build", q, contextTar, "application/x-tar")
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	defer resp.Body.Close()
	var res *api.ImageBuildResponse
	err = readLines(resp.Body, func(line []byte) error {
		var msg struct {
			Stream string                  `json:"stream"`
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
