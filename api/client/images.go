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
	resp, err := c.do(ctx, "POST", "/images/build", q, contextTar, "application/x-tar")
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
